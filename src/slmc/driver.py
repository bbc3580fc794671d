"""The pipeline as plain function calls: load -> build graphs -> bind kernels -> plan -> emit -> write."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from slmc.codegen.emit_c import LlmInfo, emit_model, prototypes
from slmc.codegen.project import write_project
from slmc.codegen.weights import layout_weights
from slmc.errors import SlmcError
from slmc.frontend.build import build_step_graph
from slmc.frontend.decoder import DecoderModel
from slmc.ir import Graph
from slmc.kernels.registry import KernelSpec, select
from slmc.plan.plan import MemoryPlan, plan_memory
from slmc.targets import Target, get_target

Progress = Callable[[str], None]


@dataclass(frozen=True)
class CompileOptions:
    model: Path
    target: str = "host"
    numerics: str = "fp32"
    out: Path = Path("out")
    prefill_chunk: int | None = None    # None: the target's default
    tokenizer: Path | None = None


def load_model(path: Path) -> "DecoderModel | Graph":
    path = Path(path)
    if not path.exists():
        raise SlmcError(f"model '{path}' does not exist", "check the path")
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
        arena_bytes=plan.arena_bytes, lower_bound_bytes=plan.lower_bound_bytes, weights_bytes=weights_bytes,
        kv_cache_bytes=plan.kv_cache_bytes, macs_per_token=sum(o["macs"] for o in ops if o["op"] != "attention"),
        planner=plan.planner, graphs=[g.name for g in graphs], ops=ops,
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
                  model: "DecoderModel | Graph | None" = None) -> dict:
    """Compile `opts.model` (or an already loaded `model`) into the folder `opts.out`."""
    target = get_target(opts.target)
    progress("loading model")
    if model is None:
        model = load_model(opts.model)
    tok_path = None
    if isinstance(model, DecoderModel):
        from slmc.frontend.tokenizer import check_vocab, find_tokenizer, load_tokenizer

        tok_path = opts.tokenizer or (find_tokenizer(opts.model) if Path(opts.model).exists() else None)
        if tok_path is not None:
            check_vocab(load_tokenizer(tok_path), model.config.vocab_size)
        chunk = target.prefill_chunk if opts.prefill_chunk is None else opts.prefill_chunk
        chunk = max(0, min(chunk, model.config.seq_len))
        progress("building graphs")
        graphs = [build_step_graph(model, 1, opts.numerics)]
        if chunk > 1:
            graphs.append(build_step_graph(model, chunk, opts.numerics))
        c = model.config
        llm = LlmInfo(c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len,
                      chunk if chunk > 1 else 0)
        main = "main_llm.c"
    else:
        if opts.numerics not in ("fp32", "int8"):
            raise SlmcError(f"-q {opts.numerics} applies to language models only", "omit -q for ONNX graphs")
        graphs, llm, main = [model], None, "main_graph.c"
    progress("selecting kernels")
    binding = bind(graphs, target)
    progress("planning memory")
    scratch = {id(n): binding[id(n)].scratch(n) for g in graphs for n in g.nodes if id(n) in binding}
    plan = plan_memory(graphs, scratch)
    weights = layout_weights(graphs)
    progress("emitting C")
    files: list[str] = []
    for spec in binding.values():
        for f in (spec.c_file, *spec.deps):
            if f not in files:
                files.append(f)
    if llm is not None:
        files.append("sample.c")
    sources = {f: (Path(__file__).parent / "kernels" / "c" / f).read_text() for f in files}
    banner = f"generated by slmc from {Path(opts.model).name}: {opts.numerics}, target {target.name}"
    model_h, model_c = emit_model(graphs, plan, weights, binding, prototypes(files, sources), banner, llm)
    report = _report(model, graphs, binding, plan, weights.nbytes, opts, target)
    report["prefill_chunk"] = llm.prefill_chunk if llm else 0
    out = Path(opts.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        write_project(tmp, target, model_h, model_c, weights.blob, files, main)
        if tok_path is not None:
            shutil.copyfile(tok_path, tmp / ("tokenizer" + Path(tok_path).suffix))
            report["tokenizer"] = "tokenizer" + Path(tok_path).suffix
        (tmp / "report.json").write_text(json.dumps(report, indent=1) + "\n")
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return report


def _replace_dir(new: Path, out: Path) -> None:
    """Swap the finished project in, so `out` never holds a half-written one."""
    if out.exists():
        if not (out / "report.json").exists() and any(out.iterdir()):
            raise SlmcError(f"output folder '{out}' exists and was not written by slmc", "choose another -o or remove it")
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
        os.rename(out, old / "x")
        os.rename(new, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(new, out)
