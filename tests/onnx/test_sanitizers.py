"""Every ONNX graph slmc compiles builds and runs clean under AddressSanitizer and UBSan (issue 15).

A seeded sample of the fuzz corpus (tests/onnx/onnx_fuzz.py: valid graphs of the operators slmc supports,
and the same graphs broken the ways issue 15 lists) goes through `slmc.driver.compile_model`:
- a broken graph must be refused with one SlmcError (any other exception, or a compiled project, fails);
- a valid graph must compile; its project is built with the host Makefile and
  `-fsanitize=address,undefined -fno-sanitize-recover=all -g` added to the Makefile's own CFLAGS on the
  make command line (the default build is unchanged), run on random inputs, and must exit 0 with no
  sanitizer report and outputs matching onnxruntime's.
What ASan cannot see: an overrun that stays inside model.c's one static arena (buffers are packed in it);
the planner's independent checker (plan/check.py) covers that, and the outputs would differ.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

SEED = 15           # the sample is the same in every run
CASES = 80          # about half valid; well under a second of gcc each with the sanitizers
SANITIZE = "-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all"
RTOL, ATOL = 1e-4, 1e-5


@lru_cache(maxsize=1)
def fuzz():
    # loaded by path, as tests/fuzz does (tests/onnx is not a package: `onnx` is the onnx package's name)
    spec = importlib.util.spec_from_file_location("onnx_fuzz", Path(__file__).parent / "onnx_fuzz.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


@lru_cache(maxsize=1)
def sanitizers_work() -> str:
    """'' when host gcc builds and runs a sanitized program here, else why not."""
    import tempfile

    if shutil.which("gcc") is None or shutil.which("make") is None:
        return "no host gcc/make"
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "t.c").write_text("int main(void) { return 0; }\n")
        r = subprocess.run(["gcc", *SANITIZE.split(), "-o", f"{d}/t", f"{d}/t.c"], capture_output=True, text=True)
        if r.returncode != 0:
            return f"gcc cannot build with the sanitizers: {r.stderr.strip()[-200:]}"
        if subprocess.run([f"{d}/t"], capture_output=True).returncode != 0:
            return "a sanitized program does not run here"
    return ""


def sanitized_build(project: Path) -> Path:
    """The project's host binary, built with its own CFLAGS plus the sanitizers (a fresh build)."""
    makefile = (project / "Makefile").read_text()
    base = re.search(r"^CFLAGS\s*=\s*(.*)$", makefile, re.M)
    binary = re.search(r"^BIN\s*=\s*(\S+)", makefile, re.M)
    assert base and binary, "the host Makefile no longer names CFLAGS and BIN"
    r = subprocess.run(["make", "-s", "-B", "-C", str(project), f"CFLAGS={base.group(1)} {SANITIZE}"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"the sanitized build failed:\n{r.stdout[-1500:]}{r.stderr[-1500:]}"
    return project / binary.group(1)


def _feeds(io: dict, rng: np.random.Generator) -> dict[str, np.ndarray]:
    dtypes = {"f32": np.float32, "f64": np.float64, "i32": np.int32, "i64": np.int64, "bool": np.bool_}
    out = {}
    for i, row in enumerate(io["inputs"]):
        dt = dtypes[row["dtype"]]
        x = rng.standard_normal(row["shape"]) * 2 if np.dtype(dt).kind == "f" else rng.integers(-3, 4, row["shape"])
        out[f"input_{i}"] = np.asarray(x).astype(dt)
    return out


def run_case(seed: int, work: Path) -> str:
    """'' when the case behaves, else what went wrong."""
    from slmc.driver import CompileOptions, compile_model
    from slmc.errors import SlmcError
    from slmc.toolchain.graph_run import pack_inputs

    rng = np.random.default_rng([SEED, seed])
    data, valid = fuzz().random_onnx_case(rng)
    work.mkdir(parents=True, exist_ok=True)
    (work / "m.onnx").write_bytes(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rep = compile_model(CompileOptions(model=work / "m.onnx", target="host", out=work / "out"))
    except SlmcError as e:
        if "\n" in str(e):
            return f"a multi-line error: {e!r}"
        return f"a valid graph was refused: {e}" if valid else ""
    except Exception as e:  # noqa: BLE001 - any other exception is the finding
        return f"{type(e).__name__} instead of an SlmcError: {e}"
    if not valid:
        return "a broken graph compiled"
    io = rep["graph_io"]
    feeds = _feeds(io, rng)
    (work / "in.bin").write_bytes(pack_inputs(io, feeds))
    exe = sanitized_build(work / "out")
    r = subprocess.run([str(exe), str(work / "in.bin"), str(work / "out.bin")], capture_output=True, text=True,
                       timeout=60, env={"ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0", "UBSAN_OPTIONS": "print_stacktrace=1"})
    if r.returncode != 0 or "runtime error" in r.stderr or "Sanitizer" in r.stderr:
        return f"the sanitized program failed (exit {r.returncode}):\n{r.stderr[-3000:]}"
    return compare(data, io, feeds, (work / "out.bin").read_bytes())


def compare(model: bytes, io: dict, feeds: dict[str, np.ndarray], raw: bytes) -> str:
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    want = sess.run(None, {n: feeds[f"input_{i}"] for i, n in enumerate(names)})
    for row, w in zip(io["outputs"], want):
        got = np.frombuffer(raw[row["offset"]:row["offset"] + row["nbytes"]], dtype=w.dtype).reshape(row["shape"])
        if got.shape != w.shape:
            return f"output '{row['name']}': shape {got.shape}, onnxruntime {w.shape}"
        ok = (np.allclose(got, w, rtol=RTOL, atol=ATOL, equal_nan=True) if w.dtype.kind == "f"
              else np.array_equal(got, w))
        if not ok:
            return f"output '{row['name']}' differs from onnxruntime:\n{got}\n{w}"
    return ""


@pytest.mark.parametrize("seed", range(CASES))
def test_fuzz_case_compiles_clean_or_is_refused(seed: int, tmp_path: Path) -> None:
    why = sanitizers_work()
    if why:
        pytest.skip(why)
    problem = run_case(seed, tmp_path)
    assert not problem, f"fuzz case {seed} (rng seed [{SEED}, {seed}]): {problem}"


def test_sample_holds_both_kinds() -> None:
    """The sample exercises both paths: valid graphs built under the sanitizers, and refusals."""
    kinds = [fuzz().random_onnx_case(np.random.default_rng([SEED, s]))[1] for s in range(CASES)]
    assert 0.3 * CASES <= sum(kinds) <= 0.7 * CASES
