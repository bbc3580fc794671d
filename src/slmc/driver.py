"""The pipeline as plain function calls: load -> build graphs -> bind kernels -> plan -> emit -> write."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from slmc.codegen.emit_c import LlmInfo, emit_model, graph_io, prototypes
from slmc.codegen.project import write_project
from slmc.codegen.weights import layout_weights
from slmc.errors import SlmcError
from slmc.frontend.build import build_step_graph
from slmc.frontend.decoder import DecoderModel
from slmc.ir import Graph
from slmc.kernels.registry import KernelSpec, select
from slmc.plan.plan import MemoryPlan, plan_memory
from slmc.targets import Target, get_target
from slmc.targets.fit import MemoryFit, check_fit, fits, main_llm_buffers, memory_fit, positions_that_fit

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
        model_seq_len = model.config.seq_len
        if opts.context is not None:
            model = with_context(model, opts.context)
        progress("building graphs")
        graphs, llm = _llm_graphs(model, opts, target)
        main = "main_llm.c"
    else:
        if opts.numerics not in ("fp32", "int8"):
            raise SlmcError(f"-q {opts.numerics} applies to language models only", "omit -q for ONNX graphs")
        graphs, llm, main = [model], None, "main_graph.c"
    binding, plan, weights = _bind_and_plan(graphs, target, progress)
    memory = _memory(target, plan, weights.nbytes, llm)
    fix = ""
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
            binding, plan, weights = _bind_and_plan(graphs, target, progress)
            memory = _memory(target, plan, weights.nbytes, llm)
            n -= 64
        model, memory = (capped, memory) if fits(memory) else (model, full)
    check_fit(f"{Path(opts.model).name} ({opts.numerics})", target, memory, fix)
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
    if llm is None:
        report["graph_io"] = graph_io(graphs[0])
    if memory:
        report["memory"] = {"weights_in": "flash", **{m.memory: m.as_dict() for m in memory}}
    if isinstance(model, DecoderModel) and model.config.seq_len != model_seq_len:
        report["model_seq_len"] = model_seq_len
        why = (f"(--context {opts.context})" if opts.context is not None
               else f"so that it fits {target.name}'s SRAM (--context sets it)")
        report["notes"].append(f"the KV cache holds {model.config.seq_len} of the model's {model_seq_len} positions {why}")
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


def with_context(model: DecoderModel, positions: int) -> DecoderModel:
    """The model with a KV cache (and RoPE/position tables) for `positions` positions."""
    if not 1 <= positions <= model.config.seq_len:
        raise SlmcError(f"--context {positions} is outside 1..{model.config.seq_len} (the model's context)",
                        f"choose at most {model.config.seq_len}")
    pos_emb = model.pos_emb[:positions] if model.pos_emb is not None else None
    return replace(model, config=replace(model.config, seq_len=positions), pos_emb=pos_emb)


def _llm_graphs(model: DecoderModel, opts: CompileOptions, target: Target) -> tuple[list[Graph], LlmInfo]:
    chunk = target.prefill_chunk if opts.prefill_chunk is None else opts.prefill_chunk
    chunk = max(0, min(chunk, model.config.seq_len))
    graphs = [build_step_graph(model, 1, opts.numerics)]
    if chunk > 1:
        graphs.append(build_step_graph(model, chunk, opts.numerics))
    c = model.config
    return graphs, LlmInfo(c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len,
                           chunk if chunk > 1 else 0)


def _bind_and_plan(graphs: list[Graph], target: Target, progress: Progress):
    progress("selecting kernels")
    binding = bind(graphs, target)
    progress("planning memory")
    scratch = {id(n): binding[id(n)].scratch(n) for g in graphs for n in g.nodes if id(n) in binding}
    return binding, plan_memory(graphs, scratch), layout_weights(graphs)


def _memory(target: Target, plan: MemoryPlan, weights_bytes: int, llm: LlmInfo | None) -> tuple[MemoryFit, ...]:
    main_bytes = main_llm_buffers(llm.vocab_size, llm.seq_len, llm.prefill_chunk) if llm else 0
    return memory_fit(target, plan.arena_bytes, plan.kv_cache_bytes, weights_bytes, main_bytes)


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


def run_graph(project: Path, feeds: dict[str, "np.ndarray"], repeats: int = 1) -> tuple[dict[str, "np.ndarray"], float]:
    """Run a compiled graph (not a language model) on its inputs: `input_0`, `input_1`, ... (or the graph
    input names). Returns `output_0`, ... and the seconds one run took (host)."""
    import subprocess

    import numpy as np

    from slmc.ir import DType
    from slmc.toolchain.build import build

    rep = json.loads((Path(project) / "report.json").read_text())
    if get_target(rep["target"]).runner != "host":
        raise SlmcError(f"running a compiled graph on {rep['target']} is not supported yet", "compile it with -t host")
    io = rep["graph_io"]
    dtypes = {d.short: d.np for d in DType}
    packed = bytearray(io["inputs_bytes"])
    for i, row in enumerate(io["inputs"]):
        key = f"input_{i}" if f"input_{i}" in feeds else row["name"]
        if key not in feeds:
            raise SlmcError(f"no value for graph input {i} ('{row['name']}' {row['dtype']}{row['shape']})",
                            f"pass it as input_{i} in the .npz file")
        arr = np.asarray(feeds[key])
        dt = dtypes[row["dtype"]]
        if list(arr.shape) != row["shape"] or not np.can_cast(arr.dtype, dt, casting="same_kind"):
            raise SlmcError(f"input_{i} is {arr.dtype}{list(arr.shape)}, the graph takes {row['dtype']}{row['shape']}",
                            "give arrays of the graph's shapes and types")
        packed[row["offset"]:row["offset"] + row["nbytes"]] = np.ascontiguousarray(arr, dtype=dt).tobytes()
    binary = build(Path(project))
    with tempfile.TemporaryDirectory(prefix="slmc-run-") as tmp:
        src, dst = Path(tmp) / "inputs.bin", Path(tmp) / "outputs.bin"
        src.write_bytes(bytes(packed))
        r = subprocess.run([str(binary.resolve()), str(src), str(dst), "-r", str(repeats)], capture_output=True, text=True)
        if r.returncode != 0:
            raise SlmcError(f"the generated program exited with code {r.returncode}: {(r.stderr or r.stdout).strip()[-300:]}",
                            "this is a bug in slmc; please report it")
        raw = dst.read_bytes()
    outs = {}
    for i, row in enumerate(io["outputs"]):
        chunk = raw[row["offset"]:row["offset"] + row["nbytes"]]
        outs[f"output_{i}"] = np.frombuffer(chunk, dtype=dtypes[row["dtype"]]).reshape(row["shape"]).copy()
    seconds = next((float(ln.split()[2]) for ln in r.stdout.splitlines() if ln.startswith("S seconds")), 0.0)
    return outs, seconds
