"""`slmc compile MODEL --chips N`: one ordinary C project per chip plus a manifest, written atomically.

Each DIR/chip<k> is what `slmc compile` writes for one chip (model.h/model.c from the same code
generator, weights, kernels, Makefile, report.json) with the chip's step graphs
(frontend/build_chips.py), main_chip.c as its main, and chip.h naming the chip. The link
collectives call kernels/c/link_runtime.c, the only new dependency of the generated C.
DIR/manifest.json holds the partition plan (plan/partition.py) and what `slmc run DIR` needs.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from slmc.codegen.emit_c import LlmInfo, emit_model, prototypes
from slmc.codegen.project import TEMPLATES, write_project
from slmc.errors import SlmcError
from slmc.frontend.build_chips import build_chip_graph
from slmc.frontend.decoder import DecoderModel
from slmc.ir import Graph
from slmc.plan.partition import PartitionPlan, partition_model
from slmc.targets import get_target

MANIFEST = "manifest.json"
MAX_CHIPS = 64


def chip_graphs(model: DecoderModel, plan: PartitionPlan, chip: int, chunk: int, kv_cache: str = "fp32") -> list[Graph]:
    graphs = [build_chip_graph(model, plan, chip, 1, kv_cache)]
    if chunk > 1:
        graphs.append(build_chip_graph(model, plan, chip, chunk, kv_cache))
    return graphs


def _chip_h(plan: PartitionPlan, chip: int) -> str:
    c = plan.chips[chip]
    return (f"/* chip {chip} of {plan.n_chips} (plan/partition.py): query heads [{c.heads[0]}, {c.heads[1]}), "
            f"KV heads [{c.kv_heads[0]}, {c.kv_heads[1]}), FFN units [{c.ffn[0]}, {c.ffn[1]}); "
            f"parent {c.parent}, children {list(c.children)} */\n"
            f"#define SLMC_CHIP {chip}\n#define SLMC_N_CHIPS {plan.n_chips}\n#define SLMC_FAN_IN {plan.fan_in}\n")


def compile_chips(opts, progress=lambda s: None, model: "DecoderModel | None" = None) -> dict:
    """Compile `opts.model` split over `opts.chips` chips into `opts.out` (driver.CompileOptions)."""
    from slmc.driver import _bind_and_plan, _report, _sharing, load_model, with_context, write_report_json
    from slmc.output import check_folder, output_folder

    check_folder(opts.out)  # refuse an output folder before the work, not after it
    if opts.chips > MAX_CHIPS:  # each chip is a C project and, when run, a process of its own
        raise SlmcError(f"--chips {opts.chips} is more than the {MAX_CHIPS} chips a partitioned build supports",
                        f"use --chips 2..{MAX_CHIPS} (`slmc simulate` models larger systems)")
    target = get_target(opts.target)
    if target.emulated:
        raise SlmcError(f"a partitioned model runs on the host only for now, not on '{target.name}'",
                        "compile with -t host (`slmc simulate` models the chips' speed and energy)")
    progress("loading model")
    if model is None:
        model = load_model(opts.model)
    if not isinstance(model, DecoderModel):
        raise SlmcError("--chips partitions language models only", "omit --chips for ONNX graphs")
    if opts.numerics not in ("fp32", "q8", "int8"):
        raise SlmcError(f"--chips supports -q fp32, q8 and int8, not {opts.numerics}", "use one of those")
    from slmc.frontend.tokenizer import check_vocab, find_tokenizer, load_tokenizer

    tok_path = opts.tokenizer or (find_tokenizer(opts.model) if Path(opts.model).exists() else None)
    if tok_path is not None:
        check_vocab(load_tokenizer(tok_path), model.config.vocab_size)
    if opts.context is not None:
        model = with_context(model, opts.context)
    plan = partition_model(model, opts.chips, opts.fan_in, opts.numerics)
    chunk = target.prefill_chunk if opts.prefill_chunk is None else opts.prefill_chunk
    chunk = max(0, min(chunk, model.config.seq_len)) if opts.numerics != "int8" else 0
    c = model.config
    formats = None
    if opts.numerics == "int8":
        from slmc.quant.int8 import formats_for

        formats = formats_for(model)
    llm = LlmInfo(c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len,
                  chunk if chunk > 1 else 0, formats.logits if formats else -1)
    out = Path(opts.out)
    reports = []
    with output_folder(out) as tmp:  # one marker for all chips (output.py); swapped in when complete
        for chip in range(plan.n_chips):
            progress(f"chip {chip}: building graphs")
            if formats is not None:
                from slmc.frontend.build_int8_chips import build_int8_chip_graph

                graphs = [build_int8_chip_graph(model, formats, plan, chip)]
            else:
                graphs = chip_graphs(model, plan, chip, chunk, getattr(opts, "kv_cache", None) or "fp32")
            binding, mem, weights = _bind_and_plan(graphs, target, progress, None, _sharing(opts, target))
            files: list[str] = []
            for spec in binding.values():
                for f in (spec.c_file, *spec.deps):
                    if f not in files:
                        files.append(f)
            if chip == 0:
                files.append("sample.c")
            sources = {f: (Path(__file__).parents[1] / "kernels" / "c" / f).read_text() for f in files}
            banner = (f"generated by slmc from {Path(opts.model).name}: {opts.numerics}, target {target.name}, "
                      f"chip {chip} of {plan.n_chips}")
            model_h, model_c = emit_model(graphs, mem, weights, binding, prototypes(files, sources), banner, llm)
            rep = _report(model, graphs, binding, mem, weights.nbytes, replace(opts, out=out / f"chip{chip}"), target)
            rep["prefill_chunk"] = llm.prefill_chunk
            rep["chip"] = chip
            rep["share"] = plan.to_dict()["chips"][chip]
            d = tmp / f"chip{chip}"
            # main_chip.c includes main_llm.c's generation loop (chip 0) with the link hooks
            write_project(d, target, model_h, model_c, weights.blob, files, "main_chip.c",
                          {"main_llm.c": (TEMPLATES / "main_llm.c").read_text()})
            (d / "chip.h").write_text(_chip_h(plan, chip))
            write_report_json(d / "report.json", rep)
            reports.append(rep)
        manifest = _manifest(opts, target.name, model, plan, reports, llm)
        if tok_path is not None:
            shutil.copyfile(tok_path, tmp / ("tokenizer" + Path(tok_path).suffix))
            manifest["tokenizer"] = "tokenizer" + Path(tok_path).suffix
        write_report_json(tmp / MANIFEST, manifest)
    return manifest


def _manifest(opts, target: str, model: DecoderModel, plan: PartitionPlan, reports: list[dict], llm: LlmInfo) -> dict:
    c = model.config
    return dict(
        model=str(opts.model), target=target, numerics=opts.numerics, n_chips=plan.n_chips, fan_in=plan.fan_in,
        chips=[f"chip{i}" for i in range(plan.n_chips)], prefill_chunk=llm.prefill_chunk,
        kv_cache="int16" if opts.numerics == "int8" else getattr(opts, "kv_cache", None) or "fp32",
        config={k: getattr(c, k) for k in c.__dataclass_fields__ if not k.endswith("_")} | {"head_dim": c.head_dim},
        partition=plan.to_dict(),
        per_chip=[dict(chip=r["chip"], weights_bytes=r["weights_bytes"], arena_bytes=r["arena_bytes"],
                       kv_cache_bytes=r["kv_cache_bytes"], macs_per_token=r["macs_per_token"]) for r in reports],
        weights_bytes=sum(r["weights_bytes"] for r in reports), notes=list(plan.notes),
    )
