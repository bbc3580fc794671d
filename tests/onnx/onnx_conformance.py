"""The onnx package's own operator conformance cases (`onnx.backend.test.loader.load_model_tests(kind="node")`)
through slmc: import, fold, compile to C with host gcc, run, compare with the expected outputs.

Every case whose operators slmc accepts goes through the real pipeline (`slmc.driver.compile_model` writes
the project). To keep ~900 compilations fast, the projects are built in chunks: each case's model.c is
compiled as its own translation unit with its public symbols renamed, the kernels once per chunk, and one
harness program runs the whole chunk. A case either matches its expected outputs or is rejected with an
SlmcError; a crash or a wrong number is a failure.

Many cases feed a shape-deciding argument (Reshape's shape, Reduce axes, Pad pads, ...) as a graph input.
slmc compiles static shapes, so such an input is bound to the case's value as a constant first (the case
is still run through the compiled C); the coverage table says how many cases needed it.

Run as a script to rewrite docs/ONNX_COVERAGE.md:  .venv/bin/python tests/onnx/onnx_conformance.py
"""

from __future__ import annotations

import fcntl
import json
import re
import shutil
import subprocess
import sys
import warnings
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from slmc.errors import SlmcError
from slmc.frontend.onnx_canon import STATIC_INPUTS, SUPPORTED

CHUNK = 64
KERNEL_CFLAGS = ["-O2", "-std=c99", "-ffp-contract=off", "-w"]
# float cases whose expected values come from float64 math with large cancellation: looser tolerance
TOLERANCE = {"default": (1e-4, 1e-5),
             # its expected values are stored rounded to 4 decimals (onnxruntime agrees with slmc to 1e-7)
             "test_averagepool_2d_ceil_last_window_starts_on_pad": (1e-3, 1e-4)}
# what a clean rejection may say: everything else is a bug
REJECTIONS = {
    "unsupported element type": r"has element type \w+, which slmc does not support",
    "not a tensor (sequence/optional)": r"is not a tensor",
    "training mode (random dropout, batch statistics)": r"training mode",
    "no C kernel for this element type": r"no C kernel for operator '\w+' on \w+ data",
    "variant not supported by the C kernels": r"is not supported by the C kernels",
}
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Outcome:
    name: str
    ops: list[str]
    status: str                  # "passed" | "rejected" | "failed"
    detail: str = ""
    bound: list[str] = field(default_factory=list)


def _arr(x: object) -> np.ndarray:
    return numpy_helper.to_array(x) if isinstance(x, onnx.TensorProto) else np.asarray(x)


@lru_cache(maxsize=1)
def all_cases() -> dict:
    from onnx.backend.test.loader import load_model_tests

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {t.name: t for t in load_model_tests(kind="node")}


def case_ops(case: object) -> list[str]:
    return sorted({n.op_type for n in case.model.graph.node})  # type: ignore[attr-defined]


def accepted_names() -> list[str]:
    return sorted(n for n, c in all_cases().items() if set(case_ops(c)) <= SUPPORTED)


def specialise(model: onnx.ModelProto, ins: list[np.ndarray]) -> tuple[onnx.ModelProto, list[np.ndarray], list[str]]:
    """Bind the graph inputs that decide shapes (directly or through other nodes) to the case's values."""
    g = model.graph
    names = [i.name for i in g.input if i.name not in {t.name for t in g.initializer}]
    producer = {o: n for n in g.node for o in n.output}
    need: set[str] = set()
    stack = [n.input[i] for n in g.node for i in STATIC_INPUTS.get(n.op_type, ()) if i < len(n.input) and n.input[i]]
    while stack:
        v = stack.pop()
        if v not in need:
            need.add(v)
            if v in producer:
                stack.extend(i for i in producer[v].input if i)
    bind = [k for k, nm in enumerate(names) if nm in need]
    if not bind:
        return model, ins, []
    m = onnx.ModelProto()
    m.CopyFrom(model)
    bound = {names[k] for k in bind}
    keep = [vi for vi in m.graph.input if vi.name not in bound]
    del m.graph.input[:]
    m.graph.input.extend(keep)
    m.graph.initializer.extend(numpy_helper.from_array(ins[k], names[k]) for k in bind)
    return m, [x for k, x in enumerate(ins) if k not in bind], sorted(bound)


def rejection_kind(message: str) -> str | None:
    return next((k for k, pat in REJECTIONS.items() if re.search(pat, message)), None)


def _prepare(name: str, d: Path) -> tuple[Outcome, dict | None]:
    """Compile one case into d/out with the real pipeline; write its packed inputs. (outcome, graph_io)."""
    from slmc.driver import CompileOptions, compile_model

    case = all_cases()[name]
    ops = case_ops(case)
    ins, _ = case.data_sets[0]
    model, ins, bound = specialise(case.model, [_arr(x) for x in ins])
    d.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(d / "model.onnx"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rep = compile_model(CompileOptions(model=d / "model.onnx", target="host", out=d / "out"))
    except SlmcError as e:
        return Outcome(name, ops, "rejected", str(e), bound), None
    except Exception as e:  # noqa: BLE001 - a crash is a finding, reported as a failure
        return Outcome(name, ops, "failed", f"crashed while compiling: {type(e).__name__}: {e}", bound), None
    io = rep["graph_io"]
    if len(io["inputs"]) != len(ins):
        return Outcome(name, ops, "failed", f"graph takes {len(io['inputs'])} inputs, case gives {len(ins)}", bound), None
    packed = bytearray(io["inputs_bytes"])
    for row, x in zip(io["inputs"], ins):
        packed[row["offset"]:row["offset"] + row["nbytes"]] = np.ascontiguousarray(x).tobytes()
    (d / "in.bin").write_bytes(bytes(packed))
    return Outcome(name, ops, "passed", "", bound), io


def _harness(cases: list[tuple[int, Path, dict]]) -> str:
    decl = "\n".join(f"void case_{i}_run_packed(const uint8_t *, uint8_t *);" for i, _, _ in cases)
    fns = ", ".join(f"case_{i}_run_packed" for i, _, _ in cases)
    dirs = ", ".join(json.dumps(str(d)) for _, d, _ in cases)
    ib = ", ".join(str(io["inputs_bytes"]) for _, _, io in cases)
    ob = ", ".join(str(io["outputs_bytes"]) for _, _, io in cases)
    mi = max(io["inputs_bytes"] for _, _, io in cases) + 16
    mo = max(io["outputs_bytes"] for _, _, io in cases) + 16
    return f"""#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
{decl}
typedef void (*run_fn)(const uint8_t *, uint8_t *);
static const run_fn fns[] = {{{fns}}};
static const char *const dirs[] = {{{dirs}}};
static const long ib[] = {{{ib}}}, ob[] = {{{ob}}};
static uint8_t in[{mi}] __attribute__((aligned(16))), out[{mo}] __attribute__((aligned(16)));
int main(int argc, char **argv) {{
    char path[4096];
    for (int i = argc > 1 ? atoi(argv[1]) : 0; i < (int)(sizeof fns / sizeof fns[0]); i++) {{
        snprintf(path, sizeof path, "%s/in.bin", dirs[i]);
        FILE *f = fopen(path, "rb");
        if (!f || fread(in, 1, ib[i], f) != (size_t)ib[i]) return 3;
        fclose(f);
        fns[i](in, out);
        snprintf(path, sizeof path, "%s/out.bin", dirs[i]);
        f = fopen(path, "wb");
        if (!f || fwrite(out, 1, ob[i], f) != (size_t)ob[i]) return 4;
        fclose(f);
        printf("done %d\\n", i);
        fflush(stdout);
    }}
    return 0;
}}
"""


def _wrapper(i: int, d: Path) -> tuple[str, str]:
    """Case i's model.c with its public symbols renamed, and its weights blob under a name of its own."""
    c = (f"#define slmc_run case_{i}_run\n#define slmc_run_packed case_{i}_run_packed\n"
         f"#define slmc_weights case_{i}_weights\n#include {json.dumps(str(d / 'out' / 'model.c'))}\n")
    s = (f'    .section .rodata.case_{i},"a"\n    .balign 16\n    .global case_{i}_weights\ncase_{i}_weights:\n'
         f'    .incbin {json.dumps(str(d / "out" / "weights.bin"))}\n')
    return c, s


def kernel_objects(root: Path) -> list[Path]:
    """Every kernel C file the host can use, compiled once (for all chunks and pytest workers) with the
    host flags; kernels for other ISAs (DSP or RV32 assembly) do not build here."""
    from slmc.kernels.registry import C_DIR, REGISTRY
    from slmc.targets import get_target

    host = get_target("host").features

    out = root / "kernels"
    out.mkdir(parents=True, exist_ok=True)
    with open(root / "kernels.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        srcs = sorted({C_DIR / f for k in REGISTRY if k.isa == "any" or k.isa in host for f in (k.c_file, *k.deps)})
        objs = [out / (src.stem + ".o") for src in srcs]
        if not (out / "done").exists():
            subprocess.run(["gcc", *KERNEL_CFLAGS, "-c", *map(str, srcs)], check=True, cwd=out)
            (out / "done").write_text("")
    return objs


def _build(work: Path, cases: list[tuple[int, Path, dict]], objs: list[Path], tag: str) -> tuple[Path | None, str]:
    from slmc.kernels.registry import C_DIR

    srcs, asm = [], []
    for i, d, _ in cases:
        c, s = _wrapper(i, d)
        (work / f"w{i}.c").write_text(c)
        srcs.append(str(work / f"w{i}.c"))
        asm.append(s)
    (work / f"weights_{tag}.S").write_text("".join(asm) + '    .section .note.GNU-stack,"",%progbits\n')
    srcs.append(str(work / f"weights_{tag}.S"))
    (work / f"harness_{tag}.c").write_text(_harness(cases))
    exe = work / f"harness_{tag}"
    r = subprocess.run(["gcc", "-O0", "-std=c99", "-w", f"-I{C_DIR}", "-o", str(exe), str(work / f"harness_{tag}.c"),
                        *srcs, *map(str, objs), "-lm"], capture_output=True, text=True)
    return (exe if r.returncode == 0 else None), r.stderr[-2000:]


def _compare(case: object, d: Path, io: dict) -> str:
    """'' when every output matches, else what differs."""
    _, want = case.data_sets[0]  # type: ignore[attr-defined]
    raw = (d / "out.bin").read_bytes()
    rtol, atol = TOLERANCE.get(case.name, TOLERANCE["default"])  # type: ignore[attr-defined]
    for row, w in zip(io["outputs"], want):
        w = _arr(w)
        got = np.frombuffer(raw[row["offset"]:row["offset"] + row["nbytes"]], dtype=w.dtype if w.size else np.uint8)
        if list(w.shape) != row["shape"]:
            return f"output '{row['name']}' has shape {row['shape']}, expected {list(w.shape)}"
        got = got[:w.size].reshape(w.shape)
        if w.dtype.kind in "fc":
            ok = np.allclose(got, w, rtol=rtol, atol=atol, equal_nan=True)
            if not ok:
                return f"output '{row['name']}': max |diff| {np.nanmax(np.abs(got.astype(float) - w.astype(float))):.3g}"
        elif not np.array_equal(got, w):
            return f"output '{row['name']}' differs in {int((got != w).sum())} of {w.size} elements"
    return ""


def run_chunk(names: list[str], work: Path, objs: list[Path]) -> dict[str, Outcome]:
    """Compile, build and run these cases (kernels from `kernel_objects`); one Outcome each."""
    work.mkdir(parents=True, exist_ok=True)
    outcomes: dict[str, Outcome] = {}
    ready: list[tuple[int, Path, dict]] = []
    for i, name in enumerate(names):
        out, io = _prepare(name, work / f"case{i}")
        outcomes[name] = out
        if io is not None:
            ready.append((i, work / f"case{i}", io))
    if not ready:
        return outcomes
    exe, err = _build(work, ready, objs, "all")
    groups = [ready] if exe else [[c] for c in ready]  # a compile error: find the case by building one at a time
    for group in groups:
        if exe is None:
            exe1, err1 = _build(work, group, objs, f"c{group[0][0]}")
            if exe1 is None:
                outcomes[names[group[0][0]]].status, outcomes[names[group[0][0]]].detail = "failed", "gcc: " + err1
                continue
        else:
            exe1 = exe
        start = 0
        while start < len(group):  # a crash fails that case only; the rest run on
            r = subprocess.run([str(exe1), str(start)], capture_output=True, text=True, timeout=120)
            done = [int(ln.split()[1]) for ln in r.stdout.splitlines() if ln.startswith("done ")]
            last = done[-1] if done else start - 1
            if r.returncode != 0:
                o = outcomes[names[group[last + 1][0]]]
                o.status, o.detail = "failed", f"the compiled program died (exit {r.returncode})"
            start = last + 2 if r.returncode != 0 else len(group)
        for i, d, io in group:
            o = outcomes[names[i]]
            if o.status == "passed":
                diff = _compare(all_cases()[names[i]], d, io)
                if diff:
                    o.status, o.detail = "failed", diff
    return outcomes


def chunk_of(name: str) -> int:
    return accepted_names().index(name) // CHUNK


def outcome(name: str, root: Path) -> Outcome:
    """The outcome of one case; its chunk is run once for all pytest workers (a file lock guards it)."""
    k = chunk_of(name)
    names = accepted_names()[k * CHUNK:(k + 1) * CHUNK]
    result = root / f"chunk{k}.json"
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"chunk{k}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not result.exists():
            work = root / f"chunk{k}"
            res = run_chunk(names, work, kernel_objects(root))
            result.write_text(json.dumps({n: asdict(o) for n, o in res.items()}))
            shutil.rmtree(work, ignore_errors=True)
    return Outcome(**json.loads(result.read_text())[name])


# ---- docs/ONNX_COVERAGE.md ------------------------------------------------------------------------------

FOLD_ONLY = {
    "Constant": "becomes a constant at import",
    "Shape": "folded (shapes are static)", "Size": "folded (shapes are static)",
    "Range": "folded; its inputs must be constants", "ConstantOfShape": "folded; its shape must be constant",
    "Dropout": "the identity at inference (training mode is rejected)", "CastLike": "becomes Cast",
    "Sum": "becomes a chain of Add", "Mean": "becomes a chain of Add and a Div",
    "Identity": "a view: no code (copied when it is a graph output)", "Reshape": "a view: no code",
    "Squeeze": "a view: no code", "Unsqueeze": "a view: no code", "Flatten": "a view: no code",
    "GlobalAveragePool": "becomes ReduceMean over the spatial axes", "GlobalMaxPool": "becomes ReduceMax over the spatial axes",
    "BatchNormalization": "folded into the Conv or Gemm before it where it can be",
    "Upsample": "becomes Resize (Resize-10's semantics)",
    "QLinearConv": "becomes ConvInteger + Requantize (frontend/onnx_qlinear.py)",
    "QLinearMatMul": "becomes MatMulInteger + Requantize (frontend/onnx_qlinear.py)",
}


def _kernel_types() -> dict[str, list[str]]:
    from slmc.kernels.registry import REGISTRY

    out: dict[str, list[str]] = defaultdict(list)
    for k in REGISTRY:
        if k.op[0].isupper() and k.dtype.short not in out[k.op]:
            out[k.op].append(k.dtype.short)
    return out


def write_coverage(results: dict[str, Outcome], path: Path) -> None:
    import onnx as onnx_pkg

    per_op: dict[str, dict[str, list[Outcome]]] = defaultdict(lambda: defaultdict(list))
    for o in results.values():
        for op in o.ops:
            per_op[op][o.status].append(o)
    types = _kernel_types()
    total = len(all_cases())
    counts = {s: sum(1 for o in results.values() if o.status == s) for s in ("passed", "rejected", "failed")}
    bound = sum(1 for o in results.values() if o.bound and o.status == "passed")
    lines = [
        "# ONNX operator coverage",
        "",
        "Generated by `.venv/bin/python tests/onnx/onnx_conformance.py` (the same run as "
        "`tests/onnx/test_conformance.py`); do not edit by hand.",
        "",
        f"The onnx package ({onnx_pkg.__version__}) ships {total} node conformance cases "
        "(`onnx.backend.test.loader.load_model_tests(kind=\"node\")`). "
        f"{len(results)} of them use only operators slmc accepts; each of those is imported, folded, compiled "
        "to C by `slmc.driver.compile_model`, built with host gcc and run, and its outputs compared with the "
        "expected ones (float: rtol 1e-4, atol 1e-5; integers and bools exactly).",
        "",
        f"**{counts['passed']} pass, {counts['rejected']} are rejected with a clear error, {counts['failed']} fail.** "
        f"{bound} of the passing cases give a shape-deciding argument (Reshape's shape, Reduce axes, Pad pads, ...) "
        "as a graph input; slmc compiles static shapes, so the test binds that input to the case's value as a "
        "constant first (a model with such an input computed at run time is rejected, naming the node).",
        "",
        "An operator outside this table is still accepted where its inputs are known before run time (an "
        "exporter's mask or position helper once the shapes are fixed): the importer folds it to a constant "
        "with onnx's reference evaluator, after bounding its output size (frontend/onnx_fold.py).",
        "",
        "A case counts for every operator in its graph (the `_expanded` cases spell a function out in "
        "several operators), so a rejection in an operator's row may come from another operator of the same "
        "case; the list of rejected cases below gives each one's reason.",
        "",
        "| operator | C kernel types | cases | passed | rejected (why) |",
        "|---|---|---:|---:|---|",
    ]
    for op in sorted(SUPPORTED):
        st = per_op.get(op, {})
        rej: dict[str, list[str]] = defaultdict(list)
        for o in st.get("rejected", []):
            m = re.search(r"element type (\w+)|on (\w+) data", o.detail)
            rej[rejection_kind(o.detail) or o.detail].append((m.group(1) or m.group(2)) if m else "")
        why = "; ".join(f"{len(v)} {k}" + (f" ({', '.join(sorted(set(t for t in v if t)))})" if any(v) else "")
                        for k, v in sorted(rej.items(), key=lambda kv: -len(kv[1])))
        kt = ", ".join(types.get(op, [])) or FOLD_ONLY.get(op, "-")
        if op in FOLD_ONLY and op in types:
            kt += f" ({FOLD_ONLY[op]})"
        n = sum(len(v) for v in st.values())
        lines.append(f"| {op} | {kt} | {n} | {len(st.get('passed', []))} | {why} |")
    lines += ["", "## Rejected cases", "", "| case | reason |", "|---|---|"]
    lines += [f"| {o.name} | {o.detail.split(' — ')[0]} |" for o in sorted(results.values(), key=lambda o: o.name)
              if o.status == "rejected"]
    if counts["failed"]:
        lines += ["", "## Failing cases", "", "| case | what differs |", "|---|---|"]
        lines += [f"| {o.name} | {o.detail.splitlines()[0] if o.detail else ''} |" for o in results.values()
                  if o.status == "failed"]
    path.write_text("\n".join(lines) + "\n")


def _run_chunk_job(args: tuple[int, str]) -> int:
    k, root = args
    outcome(accepted_names()[k * CHUNK], Path(root))
    return k


def main() -> None:
    import tempfile
    from concurrent.futures import ProcessPoolExecutor

    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "ONNX_COVERAGE.md"
    names = accepted_names()
    chunks = range((len(names) + CHUNK - 1) // CHUNK)
    with tempfile.TemporaryDirectory(prefix="slmc-conformance-") as root:
        with ProcessPoolExecutor(2) as ex:
            list(ex.map(_run_chunk_job, [(k, root) for k in chunks]))
        results: dict[str, Outcome] = {}
        for k in chunks:
            results.update({n: Outcome(**o) for n, o in json.loads((Path(root) / f"chunk{k}.json").read_text()).items()})
    out.parent.mkdir(parents=True, exist_ok=True)
    write_coverage(results, out)
    print(f"wrote {out}: " + ", ".join(f"{s} {sum(1 for o in results.values() if o.status == s)}"
                                       for s in ("passed", "rejected", "failed")))


if __name__ == "__main__":
    main()
