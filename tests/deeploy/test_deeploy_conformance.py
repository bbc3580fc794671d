"""Deeploy's kernel tests (../shared/conformance/deeploy/Kernels/{Integer,FP32}): every case compiled with
`slmc compile network.onnx -t TARGET`, run with `slmc run DIR --inputs inputs.npz --save out.npz`, and
compared with outputs.npz: integer outputs identical, float outputs within 1e-4 (Deeploy's own check).
The numpy twins are checked against the same files without a compiler (fast tier); the compiled C on
the host, the Cortex-M33 and RV32IMAC (QEMU) needs compilers and is in the slow tier."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import SHARED, shared_path

KERNELS = "conformance/deeploy/Kernels"
SLMC = [sys.executable, "-m", "slmc.cli"]
TOOLS = {"cortex-m33": ("arm-none-eabi-gcc", "qemu-system-arm"),
         "rv32imac": ("riscv64-unknown-elf-gcc", "qemu-system-riscv32")}


def _case_names() -> list[str]:
    root = SHARED / KERNELS
    names = sorted(str(p.parent.relative_to(root)) for p in root.glob("**/network.onnx")) if root.exists() else []
    return names or ["<absent>"]  # one placeholder: the test skips (fails under CI=true) naming the path


CASES = _case_names()


def case_dir(name: str) -> Path:
    d = shared_path(KERNELS)  # skips (or fails under CI) when ../shared is absent
    assert name != "<absent>", f"no Deeploy cases under {d}"
    return d / name


def need_toolchain(target: str) -> None:
    missing = [t for t in TOOLS.get(target, ("gcc",)) if shutil.which(t) is None]
    if missing:
        msg = f"{', '.join(missing)} not installed (`make toolchains` installs the cross toolchains and QEMU)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)


def expected(d: Path) -> list[np.ndarray]:
    with np.load(d / "outputs.npz") as f:
        return [f[k] for k in f.files]


def float_samples(name: str) -> bool:
    with np.load(case_dir(name) / "inputs.npz") as f:
        return all(f[k].dtype.kind == "f" for k in f.files)


def assert_matches(name: str, got: list[np.ndarray], want: list[np.ndarray]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape, f"{name}: shape {g.shape}, expected {w.shape}"
        if name.startswith("FP32"):
            np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), rtol=0, atol=1e-4, err_msg=name)
        else:
            assert np.all(w == np.rint(w)), f"{name}: the expected outputs are not integers"
            # a graph declared float throughout with float test vectors keeps ONNX float semantics (exact here)
            assert g.dtype.kind in "iu" or float_samples(name), f"{name}: an integer case computed {g.dtype}"
            np.testing.assert_array_equal(g.astype(np.int64), w.astype(np.int64), err_msg=name)


def compile_and_run(name: str, target: str, tmp: Path) -> list[np.ndarray]:
    d = case_dir(name)
    out = tmp / "build"
    r = subprocess.run([*SLMC, "compile", str(d / "network.onnx"), "-t", target, "-o", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([*SLMC, "run", str(out), "--inputs", str(d / "inputs.npz"), "--save", str(tmp / "out.npz")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    with np.load(tmp / "out.npz") as f:
        return [f[f"output_{i}"] for i in range(len(f.files))]


@pytest.mark.parametrize("name", CASES)
def test_numpy_twins_match_expected_outputs(name: str) -> None:
    """The oracle first: the imported graph run by the numpy twins gives the expected outputs, in the
    C types the importer proved (the twins' own types agree with the IR's)."""
    from slmc.frontend import onnx_import
    from slmc.frontend.onnx_deeploy import bind_feed
    from slmc.reference.interp import run

    d = case_dir(name)
    g = onnx_import.load(d / "network.onnx")
    with np.load(d / "inputs.npz") as f:
        feeds = {k: f[k] for k in f.files}
    env = run(g, {v.name: np.asarray(bind_feed(feeds, i, v.name)).astype(v.dtype.np) for i, v in enumerate(g.inputs)},
              keep=True)
    for n in g.nodes:
        for o in n.outputs:
            got = env[o.name].dtype
            assert got == o.dtype.np, f"{n.op} node '{n.name}': twin gives {got}, IR {o.dtype}"
    assert_matches(name, [env[v.name] for v in g.outputs], expected(d))


@pytest.mark.slow
@pytest.mark.parametrize("name", CASES)
def test_compiled_c_on_host(name: str, tmp_path: Path) -> None:
    assert_matches(name, compile_and_run(name, "host", tmp_path), expected(case_dir(name)))


@pytest.mark.slow
@pytest.mark.parametrize("target", ["cortex-m33", "rv32imac"])
@pytest.mark.parametrize("name", CASES)
def test_compiled_c_on_emulated_cores(name: str, target: str, tmp_path: Path) -> None:
    need_toolchain(target)
    assert_matches(name, compile_and_run(name, target, tmp_path), expected(case_dir(name)))
