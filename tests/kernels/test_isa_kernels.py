"""The ISA-specific q8 matrix-vector kernels (linear_q8_dsp.c on the Cortex-M33, linear_q8_rv32.c on
RV32) give the same logits, bit for bit, as the host build of the portable kernel on a seeded random
model whose shapes take every path (group 64, group 4 as in stories260K's w2, rows left over after the
4-row blocks, a bias); and their instructions per MAC on stories260K, printed, not asserted."""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import shared_path
from slmc.driver import CompileOptions, compile_model
from slmc.frontend.decoder import DecoderConfig
from slmc.frontend.random_model import random_decoder
from slmc.ir import DType, Graph
from slmc.kernels import registry
from slmc.kernels.llm import q8_layout
from slmc.kernels.registry import select
from slmc.targets import get_target

pytestmark = pytest.mark.slow
SLMC = [sys.executable, "-m", "slmc.cli"]
# dim 64: group 64; hidden 172: w2 in groups of 4; vocab 70 and kv dim 32 + 2 rows: a 2-row remainder
CFG = DecoderConfig(dim=64, hidden_dim=172, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=70, seq_len=32)
KERNEL = {"cortex-m33": "linear_q8_dsp.c", "rv32imac": "linear_q8_rv32.c"}
STEPS = 8


def need_toolchain(target: str) -> None:
    import os
    import shutil

    tools = {"cortex-m33": ("arm-none-eabi-gcc", "qemu-system-arm"),
             "rv32imac": ("riscv64-unknown-elf-gcc", "qemu-system-riscv32")}[target]
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        msg = f"{', '.join(missing)} not installed (`make toolchains` installs them)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)


def _logits(project: Path, tmp: Path, *extra: str) -> tuple[list[int], np.ndarray]:
    f = tmp / f"{project.name}.f32"
    r = subprocess.run([*SLMC, "run", str(project), "--steps", str(STEPS), "--ids", "--dump-logits", str(f), *extra],
                       capture_output=True, text=True, check=True)
    return [int(x) for x in r.stdout.split()], np.fromfile(f, np.float32)


def _compile(out: Path, target: str, bias: bool, portable: bool = False) -> Path:
    """portable: with the ISA kernels taken out of the registry, so the target gets linear_q8.c."""
    removed = [k for k in registry.REGISTRY if k.c_file in KERNEL.values()] if portable else []
    for k in removed:
        registry.REGISTRY.remove(k)
    try:
        compile_model(CompileOptions(Path("random-isa"), target, "q8", out, None),
                      model=random_decoder(CFG, seed=7, bias=bias))
    finally:
        registry.REGISTRY.extend(removed)
    return out


def test_the_isa_kernels_are_selected_where_the_feature_is():
    g = Graph("g")
    x = g.add_input("x", (1, 64), DType.I8)
    xs = g.add_input("xs", (1, 1), DType.F32)
    w = g.add_input("w", (8, 64), DType.I8)
    ws = g.add_input("ws", (8, 1), DType.F32)
    g.op("linear_q8", [x, xs, w, ws], g.add_input("y", (1, 8), DType.F32).type, name="y", group=64)
    g.op("linear_q8", [x, xs, w, ws], g.add_input("y4", (1, 8), DType.F32).type, name="y4", group=64, layout="rows4")
    node, rows4 = g.nodes
    for t in ("cortex-m33", "rp2350-arm"):
        assert q8_layout(get_target(t).features) == "rows4"
        assert select(rows4, get_target(t).features).c_file == "linear_q8_dsp.c"
    for t in ("rv32imac", "rp2350-riscv"):
        assert q8_layout(get_target(t).features) == ""
        assert select(node, get_target(t).features).c_file == "linear_q8_rv32.c"
    assert select(node, get_target("cortex-m33").features).c_file == "linear_q8.c"   # row-major weights


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("target", ["cortex-m33", "rv32imac"])
def test_the_isa_kernel_is_bit_identical_to_the_portable_kernel(tmp_path, target, bias):
    """Same target, same libm: only the linear_q8 kernel differs, and the logits agree bit for bit (the
    host build, with glibc's expf/sqrtf, agrees to float rounding)."""
    need_toolchain(target)
    isa = _compile(tmp_path / f"{target}-isa", target, bias)
    plain = _compile(tmp_path / f"{target}-plain", target, bias, portable=True)
    host = _compile(tmp_path / "host", "host", bias)
    assert (isa / "kernels" / KERNEL[target]).exists() and not (isa / "kernels" / "linear_q8.c").exists()
    assert (plain / "kernels" / "linear_q8.c").exists() and not (plain / "kernels" / KERNEL[target]).exists()
    ids_i, li = _logits(isa, tmp_path)
    ids_p, lp = _logits(plain, tmp_path)
    ids_h, lh = _logits(host, tmp_path)
    assert ids_i == ids_p == ids_h
    assert li.shape == lp.shape == (STEPS * CFG.vocab_size,)
    assert np.array_equal(li.view(np.uint32), lp.view(np.uint32))
    assert np.abs(li - lh).max() <= 1e-4 * max(1.0, float(np.abs(lh).max()))


def _per_mac(project: Path) -> tuple[dict[str, float], float, float]:
    r = subprocess.run([*SLMC, "run", str(project), "--steps", "8", "--json"], capture_output=True, text=True, check=True)
    p = json.loads(r.stdout)
    agg: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0])
    for o in p["ops"]:
        if o["op"] == "linear_q8":
            a = agg[o["name"].split(".")[-1]]
            a[0] += o["instructions"]
            a[1] += o["macs"]
    return {k: i / m for k, (i, m) in agg.items()}, p["linear_instructions_per_mac"], p["instructions_per_token"]


@pytest.mark.parametrize("target", ["cortex-m33", "rv32imac"])
def test_instructions_per_mac_on_stories260k(tmp_path, target):
    need_toolchain(target)
    out = tmp_path / target
    subprocess.run([*SLMC, "compile", str(shared_path("models/stories260K/stories260K.bin")), "-t", target, "-q", "q8",
                    "-o", str(out)], check=True, capture_output=True)
    assert (out / "kernels" / KERNEL[target]).exists()
    per_op, per_mac, per_token = _per_mac(out)
    print(f"\n{target}: linear_q8 instructions/MAC {per_mac:.3f}, instructions/token {per_token:,.0f}, per op "
          + ", ".join(f"{k} {v:.2f}" for k, v in per_op.items()))
