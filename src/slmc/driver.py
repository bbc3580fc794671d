"""The pipeline as plain function calls: load -> build graphs -> bind kernels -> plan -> emit -> write."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from slmc.codegen.emit_c import LlmInfo, emit_model, graph_io, prototypes
from slmc.codegen.pico import PLATFORMS, opp_calls, rp2350_files
from slmc.codegen.project import write_project
from slmc.codegen.weights import layout_weights
from slmc.errors import SlmcError
from slmc.frontend.build import build_step_graph
from slmc.frontend.decoder import DecoderModel
from slmc.ir import Graph
from slmc.kernels.llm import q8_layout
from slmc.kernels.registry import KernelSpec, select
from slmc.output import check_folder, output_folder
from slmc.plan.plan import MemoryPlan, plan_memory
from slmc.plan.sharing import contracts_for
from slmc.targets import Target, get_target
from slmc.targets.fit import MemoryFit, check_fit, fits, main_llm_buffers, memory_fit, positions_that_fit
from slmc.targets.levels import levels_of, tiles_above_arena

Progress = Callable[[str], None]


@dataclass(frozen=True)
class CompileOptions:
    model: Path
    target: str = "host"
    numerics: str = "fp32"
    out: Path = Path("out")
    prefill_chunk: int | None = None    # None: the target's default
    tokenizer: Path | None = None
    context: int | None = None          # positions the KV cache holds; None: the model's, or what fits
    kv_cache: str | None = None         # "fp32" | "fp16" storage; None: fp32, or fp16 where fp32 does not fit SRAM
    dvfs: tuple = ()                    # OppSteps (codegen/pico.py): an RP2350 build that calls slmc_set_opp
    weights_sram: str = "auto"          # "auto": weights streamed from flash fill the SRAM left over; "off"
    chips: int = 1                      # > 1: partition over this many chips (codegen/chips.py)
    fan_in: int = 2                     # of the chips' hierarchical all-reduce
    mem: str | None = None              # --mem L1=64KiB,L2=1MiB: resize the target's memory levels
    mode: str = "decode"                # "prefill": a prompt step over --seq tokens is the one planned for
    cores: int | None = None            # fork the kernels over N cores (codegen/parallel.py); None: the serial build
    engine: str | None = None           # --engine linear=npu|cluster: overrides of the engine assignment (plan/engines.py)
    memory_sharing: str = "on"          # "on": outputs may lie over the inputs their kernels consumed (kernels/overlap.py)


def load_model(path: Path) -> "DecoderModel | Graph":
    path = Path(path)
    if not path.exists():
        raise SlmcError(f"model '{path}' does not exist", "check the path")
    if not (path.is_dir() or path.is_file()):  # a FIFO or device would block or never end
        raise SlmcError(f"model '{path}' is not a regular file or folder", "give a model file or a HuggingFace folder")
    if path.is_dir():
        from slmc.frontend import hf_llama

        return hf_llama.load(path)
    if path.suffix == ".onnx":
        from slmc.frontend import onnx_import

        return onnx_import.load(path)
    from slmc.frontend import llama2c

    return llama2c.load(path)


def bind(graphs: list[Graph], target: Target) -> dict[int, KernelSpec]:
    from slmc.ir.ops import VIEWS

    return {id(n): select(n, target.features) for g in graphs for n in g.nodes if n.op not in VIEWS}


def _report(model: "DecoderModel | Graph", graphs: list[Graph], binding: dict[int, KernelSpec], plan: MemoryPlan,
            weights_bytes: int, opts: CompileOptions, target: Target) -> dict:
    decode = graphs[0]
    ops = [dict(name=n.name, op=n.op, kernel=binding[id(n)].c_file, macs=binding[id(n)].macs(n))
           for n in decode.nodes if id(n) in binding]
    rep: dict = dict(
        model=str(opts.model), target=target.name, numerics=opts.numerics,
        arena_bytes=plan.arena_bytes, lower_bound_bytes=plan.lower_bound_bytes,
        shared_lower_bound_bytes=plan.shared_lower_bound_bytes, activation_arena_bytes=plan.activation_arena_bytes,
        activation_lower_bound_bytes=plan.activation_lower_bound_bytes, memory_sharing=plan.sharing_rows(),
        weights_bytes=weights_bytes,
        kv_cache_bytes=plan.kv_cache_bytes, macs_per_token=sum(o["macs"] for o in ops if o["op"] != "attention"),
        planner=plan.planner, plan_optimal=plan.optimal, plan_best_bound_bytes=plan.best_bound_bytes, graphs=[g.name for g in graphs],
        graph_steps=[len(g.nodes) for g in graphs], ops=ops,
        buffers=plan.as_rows(),
    )
    if isinstance(model, DecoderModel):
        c = model.config
        rep["attention_macs_per_position"] = 2 * c.n_layers * c.n_heads * c.head_dim
        rep["config"] = {k: getattr(c, k) for k in c.__dataclass_fields__ if not k.endswith("_")} | {"head_dim": c.head_dim}
        rep["params"] = model.n_params()
        rep["source"] = model.source
        rep["notes"] = list(model.notes)
    return rep


def compile_model(opts: CompileOptions, progress: Progress = lambda s: None,
                  model: "DecoderModel | Graph | None" = None, extra_files: dict[str, str] | None = None) -> dict:
    """Compile `opts.model` (or an already loaded `model`) into the folder `opts.out`, with `extra_files`
    (name -> text) beside the project. The folder is checked before any work (output.py's rules)."""
    check_folder(opts.out)
    if opts.chips != 1 and (opts.mem is not None or opts.mode != "decode"):
        raise SlmcError("--mem and -m prefill do not apply to a partitioned build (--chips) yet", "omit them, or --chips 1")
    if opts.chips != 1 and (opts.cores is not None or opts.engine):
        raise SlmcError("--cores and --engine do not apply to a partitioned build (--chips) yet", "omit them, or --chips 1")
    if opts.chips != 1:
        from slmc.codegen.chips import compile_chips

        return compile_chips(opts, progress, model)
    target = get_target(opts.target)
    if opts.cores is not None:  # a multi-core build (codegen/parallel.py, toolchain/harts.py)
        from slmc.toolchain.harts import with_cores

        if opts.mem is not None or opts.mode != "decode":
            raise SlmcError("--cores does not combine with --mem or -m prefill yet", "omit one of them")
        target = with_cores(target, opts.cores)
    if opts.mem is not None or opts.mode != "decode":
        from slmc.codegen.tiled import check_mode
        from slmc.targets.levels import with_mem

        target = with_mem(target, opts.mem)
        check_mode(opts.mode, target.prefill_chunk if opts.prefill_chunk is None else opts.prefill_chunk)
    progress("loading model")
    if model is None:
        model = load_model(opts.model)
    tok_path = None
    if isinstance(model, DecoderModel):
        from slmc.frontend.tokenizer import check_vocab, find_tokenizer, load_tokenizer

        tok_path = opts.tokenizer or (find_tokenizer(opts.model) if Path(opts.model).exists() else None)
        if tok_path is not None:
            check_vocab(load_tokenizer(tok_path), model.config.vocab_size)
        model_seq_len = model.config.seq_len
        if opts.numerics == "int8" and opts.kv_cache is not None:
            raise SlmcError("--kv-cache chooses fp32 or fp16 storage; -q int8 keeps its KV cache in int16",
                            "omit --kv-cache with -q int8")
        if opts.context is not None:
            model = with_context(model, opts.context)
        progress("building graphs")
        graphs, llm = _llm_graphs(model, opts, target)
        main = "main_llm.c"
    else:
        if opts.numerics not in ("fp32", "int8"):
            raise SlmcError(f"-q {opts.numerics} applies to language models only", "omit -q for ONNX graphs")
        floats = [v.name for v in model.values.values() if v.dtype.np.kind == "f"]
        if opts.numerics == "int8" and floats:  # an integer graph (Deeploy's) compiles as it is; no PTQ here
            raise SlmcError(f"-q int8 quantizes language models only; this graph computes in float ('{floats[0]}')",
                            "omit -q (float graphs run in fp32), or give an integer network")
        if opts.kv_cache is not None:
            raise SlmcError("--kv-cache applies to language models only", "omit --kv-cache for ONNX graphs")
        graphs, llm, main = [model], None, "main_graph.c"
    binding, plan, weights = _bind_and_plan(graphs, target, progress, opts.engine, _sharing(opts, target), _tiling(opts, target))
    memory = _memory(target, plan, weights.nbytes, llm)
    fix, kv_note = "", ""
    if (not fits(memory) and isinstance(model, DecoderModel) and llm is not None and opts.kv_cache is None
            and opts.numerics != "int8"):
        # fp16 storage halves the KV cache: chosen before any position is cut (and it keeps more if some must be)
        fp32_kv, opts = plan.kv_cache_bytes, replace(opts, kv_cache="fp16")
        graphs, llm = _llm_graphs(model, opts, target)
        binding, plan, weights = _bind_and_plan(graphs, target, progress, opts.engine, _sharing(opts, target), _tiling(opts, target))
        memory = _memory(target, plan, weights.nbytes, llm)
        kv_note = f"the KV cache is stored as fp16 ({plan.kv_cache_bytes:,} B instead of {fp32_kv:,} B in fp32) so that "
    if not fits(memory) and isinstance(model, DecoderModel) and llm is not None:
        # the KV cache is what grows with the context: keep as many positions as SRAM holds
        per_position = plan.kv_cache_bytes // llm.seq_len + 4 * 2  # + main.c's prompt slot and a score
        n, full = positions_that_fit(memory, llm.seq_len, per_position), memory
        if opts.context is not None and n > 0:
            fix = f"--context {n} would fit (or choose a target with more memory)"
            n = 0
        while n > 0 and not fits(memory):
            capped = with_context(model, n)
            graphs, llm = _llm_graphs(capped, opts, target)
            binding, plan, weights = _bind_and_plan(graphs, target, progress, opts.engine, _sharing(opts, target), _tiling(opts, target))
            memory = _memory(target, plan, weights.nbytes, llm)
            n -= 64
        model, memory = (capped, memory) if fits(memory) else (model, full)
    levels, tiled_decls, timings = None, [], {}
    if opts.mem is not None or opts.mode != "decode":  # multi-level placement and tiling (codegen/tiled.py)
        from slmc.codegen.tiled import place_and_tile

        progress("placing across memory levels and tiling")
        lp, tiled, levels = place_and_tile(graphs, binding, plan, weights.nbytes, target, opts.mode, memory)
        timings = {"planner_seconds": {u.level.name: round(u.seconds, 4) for u in lp.uses}}
        binding, tiled_decls = tiled.binding, tiled.decls
    check_fit(f"{Path(opts.model).name} ({opts.numerics})", target, memory, fix)
    # with memory levels (--mem, -m prefill) the level plan keeps the weights in the slowest level
    if opts.weights_sram == "auto" and memory and llm is not None and levels is None:
        from slmc.codegen.pico import HAL_LOG_BYTES

        weights, memory = _weights_to_sram(graphs, weights, memory, target, plan, llm,
                                           SRAM_RESERVE + (HAL_LOG_BYTES if opts.dvfs else 0))
    progress("emitting C")
    files: list[str] = []
    for spec in binding.values():
        for f in (spec.c_file, *spec.deps):
            if f not in files:
                files.append(f)
    if llm is not None:
        files.append("sample.c")
    par_decls, par_extra, par_defines = [], {}, ()
    if target.cores:
        from slmc.codegen.parallel import build_files

        par_decls, par_extra, par_defines, more = build_files(graphs, binding, target)
        files += [f for f in more if f not in files]
    sources = {f: (Path(__file__).parent / "kernels" / "c" / f).read_text() for f in files}
    banner = f"generated by slmc from {Path(opts.model).name}: {opts.numerics}, target {target.name}"
    banner += ", KV cache fp16" if opts.kv_cache == "fp16" else ""
    banner += f", {target.cores} cores" if target.cores else ""
    hooks = _dvfs_hooks(opts, target, graphs)
    model_h, model_c = emit_model(graphs, plan, weights, binding, par_decls + prototypes(files, sources) + tiled_decls, banner, llm, hooks)
    report = _report(model, graphs, binding, plan, weights.nbytes, opts, target)
    report["prefill_chunk"] = llm.prefill_chunk if llm else 0
    if target.cores:
        from slmc.codegen.parallel import cluster_report

        report["cluster"] = cluster_report(graphs, binding, target)
    if (target.cores or opts.engine) and target.engines is not None:  # where each operator runs, and why
        import numpy as np

        from slmc.plan.engines import assign, parse_ffn_bits, parse_overrides

        report["engines"] = assign(graphs, target, parse_overrides(opts.engine)).as_dict()
        report["engines"]["note"] = ("operators on the NPU run its bit-exact functional model (npu_linear.c) on "
                                     "core 0; the NPU's cycles and energy are its cost model's (kernels/npu.py)")
        bits = parse_ffn_bits(opts.engine)
        if bits < 8 and isinstance(model, DecoderModel) and isinstance(model.layers[0].w1, np.ndarray):
            from slmc.quant.npu_bits import ffn_bits_accuracy

            progress(f"measuring the accuracy of {bits}-bit FFN weights")
            report["engines"]["accuracy"] = ffn_bits_accuracy(model, bits, graph=graphs[0])
    if levels is not None:
        report["levels"] = levels
    if timings:
        report["timings"] = timings  # CONSOLE_ONLY: returned, never written to report.json
    if llm is not None:
        report["kv_cache"] = "int16" if opts.numerics == "int8" else opts.kv_cache or "fp32"
        if kv_note:
            whole = model.config.seq_len == model_seq_len
            report["notes"].append(kv_note + (f"the full {model_seq_len}-position context fits" if whole else "more positions fit")
                                   + f" {target.name}'s SRAM (--kv-cache fp32 keeps fp32 and cuts the context instead)")
    if opts.numerics == "int8" and isinstance(model, DecoderModel):
        from slmc.quant.int8 import accuracy, formats_for

        progress("measuring int8 accuracy against fp32")
        report["int8"] = accuracy(model, graphs[0], formats_for(model))
    if opts.dvfs:
        report["dvfs"] = dict(schedule=[dict(group=s.group, voltage_mv=s.voltage_mv, khz=s.khz) for s in opts.dvfs],
                              calls_per_token=len(hooks))
    if llm is None:
        report["graph_io"] = graph_io(graphs[0])
    if memory:
        report["memory"] = {"weights_in": "flash+sram" if weights.ram_blob else "flash",
                            **{m.memory: m.as_dict() for m in memory}}
        if weights.ram_blob:  # per operator: the share of its weight bytes read from SRAM (sim/dvfs.py)
            report["weights_sram_bytes"] = weights.ram_bytes
            for o, n in zip(report["ops"], [n for n in graphs[0].nodes if id(n) in binding]):
                ents = [weights.entry(v) for v in n.inputs if v is not None and id(v) in weights.by_value]
                total = sum(e.nbytes for e in ents)
                o["weights_sram_share"] = sum(e.nbytes for e in ents if e.region == "ram") / total if total else 0.0
    if isinstance(model, DecoderModel) and model.config.seq_len != model_seq_len:
        report["model_seq_len"] = model_seq_len
        why = (f"(--context {opts.context})" if opts.context is not None
               else f"so that it fits {target.name}'s SRAM (--context sets it)")
        report["notes"].append(f"the KV cache holds {model.config.seq_len} of the model's {model_seq_len} positions {why}")
    with output_folder(opts.out) as tmp:  # staged, then swapped in (output.py): nothing half-written stays
        dvfs = bool(opts.dvfs)
        write_project(tmp, target, model_h, model_c, weights.blob, files, main,
                      {**rp2350_files(target, files, dvfs), **par_extra},
                      ("slmc_hal_log.c",) if dvfs else (), (("SLMC_DVFS",) if dvfs else ()) + par_defines,
                      weights.ram_blob)
        if tok_path is not None:
            shutil.copyfile(tok_path, tmp / ("tokenizer" + Path(tok_path).suffix))
            report["tokenizer"] = "tokenizer" + Path(tok_path).suffix
        write_report_json(tmp / "report.json", report)
        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text)
    return report


# Keys of the returned report that are not written to report.json: wall-clock times differ from run to run,
# and the same input must give byte-identical output (they reach the console: report/levels_table.py).
CONSOLE_ONLY = ("timings",)


def write_report_json(path: Path, report: dict) -> None:
    path.write_text(json.dumps({k: v for k, v in report.items() if k not in CONSOLE_ONLY}, indent=1) + "\n")


def _dvfs_hooks(opts: CompileOptions, target: Target, graphs: list[Graph]) -> dict[str, str]:
    if not opts.dvfs:
        return {}
    if target.name not in PLATFORMS:
        raise SlmcError(f"a DVFS schedule applies to the RP2350 only, not '{target.name}'",
                        f"compile for {' or '.join(PLATFORMS)}")
    return opp_calls(graphs[0], opts.dvfs)


def with_context(model: DecoderModel, positions: int) -> DecoderModel:
    """The model with a KV cache (and RoPE/position tables) for `positions` positions."""
    if not 1 <= positions <= model.config.seq_len:
        raise SlmcError(f"--context {positions} is outside 1..{model.config.seq_len} (the model's context)",
                        f"choose at most {model.config.seq_len}")
    pos_emb = model.pos_emb[:positions] if model.pos_emb is not None else None
    return replace(model, config=replace(model.config, seq_len=positions), pos_emb=pos_emb)


def _llm_graphs(model: DecoderModel, opts: CompileOptions, target: Target) -> tuple[list[Graph], LlmInfo]:
    if opts.numerics == "int8":  # integer-only: one decode graph; prompts go through it token by token
        from slmc.frontend.build_int8 import build_int8_graph
        from slmc.kernels.int_llm import int8_layout
        from slmc.quant.int8 import formats_for

        fm, c = formats_for(model), model.config
        return [build_int8_graph(model, fm, int8_layout(target.features))], LlmInfo(c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads,
                                                      c.vocab_size, c.seq_len, 0, fm.logits)
    chunk = target.prefill_chunk if opts.prefill_chunk is None else opts.prefill_chunk
    chunk = max(0, min(chunk, model.config.seq_len))
    kv, layout = opts.kv_cache or "fp32", q8_layout(target.features) if opts.numerics == "q8" else ""
    graphs = [build_step_graph(model, 1, opts.numerics, kv, layout)]
    if chunk > 1:
        graphs.append(build_step_graph(model, chunk, opts.numerics, kv, layout))
    if _sharing(opts, target) and _tiling(opts, target) is None and not opts.engine:
        from slmc.passes import fuse_gate   # the FFN pair: its gate product is written over the gate input

        graphs = [fuse_gate.run(g) for g in graphs]
    c = model.config
    return graphs, LlmInfo(c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len,
                           chunk if chunk > 1 else 0)


SRAM_RESERVE = 2048  # bytes of SRAM left free when weights fill the rest


def _weights_to_sram(graphs: list[Graph], weights, memory: tuple[MemoryFit, ...], target: Target, plan: MemoryPlan,
                     llm: LlmInfo, reserve: int):
    """Where weights stream from flash every token, copy as many as the SRAM left over (less `reserve`) holds
    into it at boot."""
    from slmc.codegen.weights import weights_for_sram

    sram = next((m for m in memory if m.memory == "sram"), None)
    if sram is None or target.flash is None or not target.flash.read_bytes_per_s:
        return weights, memory
    chosen = weights_for_sram(weights, graphs, sram.margin - reserve)
    if not chosen:
        return weights, memory
    weights = layout_weights(graphs, chosen)
    return weights, _memory(target, plan, weights.nbytes, llm, weights.ram_bytes)


def _sharing(opts: CompileOptions, target: Target) -> bool:
    """Memory sharing (kernels/overlap.py) needs the kernels' own loop order: not with --cores, whose
    wrappers run parts of a kernel at the same time on several cores."""
    if opts.memory_sharing not in ("on", "off"):
        raise SlmcError(f"unknown --memory-sharing '{opts.memory_sharing}'", "use --memory-sharing on or off")
    return opts.memory_sharing == "on" and not target.cores


def _tiling(opts: CompileOptions, target: Target) -> tuple | None:
    """The levels the build tiles across (--mem or -m prefill, a level above the arena's), else None."""
    return levels_of(target) if (opts.mem is not None or opts.mode != "decode") and tiles_above_arena(target) else None


def _bind_and_plan(graphs: list[Graph], target: Target, progress: Progress, engine: str | None = None,
                   sharing: bool = False, levels: tuple | None = None):
    progress("selecting kernels")
    binding = bind(graphs, target)
    if engine or target.cores:  # the matrix products the engine plan gives the NPU get its weight layout
        from slmc.passes import npu_weights
        from slmc.plan.engines import npu_nodes, parse_ffn_bits

        on_npu = npu_nodes(graphs, binding, target, engine)
        if on_npu:
            npu_weights.run(graphs, on_npu, parse_ffn_bits(engine))
            binding = bind(graphs, target)  # those nodes now select the NPU's kernel (kernels/npu.py)
    if target.cores:  # the splittable kernels through their parallel wrappers, with a scratch slice per core
        from slmc.codegen.parallel import parallelize

        binding, _ = parallelize(graphs, binding, target.cores)
    progress("planning memory")
    scratch = {id(n): binding[id(n)].scratch(n) for g in graphs for n in g.nodes if id(n) in binding}
    contracts = contracts_for(graphs, binding, levels) if sharing else None
    return binding, plan_memory(graphs, scratch, contracts), layout_weights(graphs)


def _memory(target: Target, plan: MemoryPlan, weights_bytes: int, llm: LlmInfo | None,
            sram_weights: int = 0) -> tuple[MemoryFit, ...]:
    main_bytes = main_llm_buffers(llm.vocab_size, llm.seq_len, llm.prefill_chunk) if llm else 0
    return memory_fit(target, plan.arena_bytes, plan.kv_cache_bytes, weights_bytes, main_bytes, sram_weights=sram_weights)


def run_graph(project: Path, feeds: dict[str, "np.ndarray"], repeats: int = 1) -> tuple[dict[str, "np.ndarray"], float]:
    """Run a compiled graph (not a language model) on its inputs, on the host or the target's emulator
    (toolchain/graph_run.py). Returns `output_0`, ... and the seconds one run took (host)."""
    from slmc.toolchain.graph_run import run_graph as run

    return run(project, feeds, repeats)
