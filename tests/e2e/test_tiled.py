"""Tiled and untiled programs compute the same logits, bit for bit (issue 5).

stories260K fp32, prompt steps of S = 16 and 64 tokens, compiled with the siracusa-like memory
hierarchy and L1 = 64, 16 and 8 KiB: the matrix products run on L1 tiles moved by the DMA API
(memcpy here), and so do the norms and element-wise operators (row tiles); embedding, RoPE,
KV writes and attention read L2 in place. The same model compiled without --mem/-m (one
arena, no tiles) is the reference. Run on the host and on the Cortex-M33 emulator: the hierarchy
is siracusa-like's, the compiler and the machine are the host's or the M33's (a derived target).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import shared_path
from slmc.driver import CompileOptions, compile_model
from slmc.targets import TARGETS, get_target
from slmc.toolchain.build import build
from slmc.toolchain.run import llm_args, run_program

pytestmark = pytest.mark.slow
PROMPT = [1, 403, 407, 261, 378, 425, 260, 261, 263, 378, 395, 261, 322, 432, 258, 404, 342, 403, 407, 262,
          284, 302, 411, 271, 304, 274, 466, 305, 417, 265, 408, 275, 370, 393, 273, 281, 440, 260, 330, 371] * 10


def _levels_target(base: str, monkeypatch) -> str:
    """`base`'s compiler and machine with siracusa-like's memory hierarchy, registered for this test only."""
    name = f"{base}+siracusa-levels"
    monkeypatch.setitem(TARGETS, name, dataclasses.replace(get_target(base), name=name,
                                                           levels=get_target("siracusa-like").levels))
    return name


def _need(tools: tuple[str, ...]) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        msg = f"{', '.join(missing)} not installed (`make toolchains`)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)


def _logits(tmp: Path, target: str, seq: int, mem: str | None, n_prompt: int) -> tuple[bytes, dict]:
    out = tmp / f"{target}-{seq}-{mem or 'untiled'}"
    rep = compile_model(CompileOptions(shared_path("models/stories260K/stories260K.bin"), target, "fp32", out, seq,
                                       mem=mem, mode="prefill" if mem else "decode"))
    binary = build(out)
    dump = tmp / f"{out.name}.f32"
    # the prompt goes through slmc_prefill in chunks of S (the last one shorter), then 8 decode steps;
    # semihosting takes a command line of 1023 characters: long prompts use one-digit ids there
    ids = PROMPT[:n_prompt] if n_prompt <= 150 else [1 + (7 * i) % 9 for i in range(n_prompt)]
    run_program(get_target(target), binary, llm_args(n_prompt + 8, 0.0, 0.9, 1, ids, dump))
    return dump.read_bytes(), rep


HOST, M33 = ("host", ("gcc",)), ("cortex-m33", ("arm-none-eabi-gcc", "qemu-system-arm"))


@pytest.mark.parametrize("base,tools,seq", [(*HOST, 16), (*HOST, 64), (*HOST, 256), (*M33, 16), (*M33, 64), (*M33, 256)])
def test_tiled_equals_untiled(tmp_path, monkeypatch, base, tools, seq):
    _need(tools)
    target = _levels_target(base, monkeypatch)
    n_prompt = seq + seq // 2 + 3          # full chunks and a short one
    ref, ref_rep = _logits(tmp_path, target, seq, None, n_prompt)
    assert "levels" not in ref_rep
    assert len(ref) == 4 * (n_prompt + 8) * 512
    for l1 in ("64KiB", "16KiB", "8KiB"):
        got, rep = _logits(tmp_path, target, seq, f"L1={l1}", n_prompt)
        lv = rep["levels"]
        assert lv["placement"][0]["used"] <= lv["placement"][0]["capacity"]
        ops = [t["op"] for t in lv["tiles"] if t["graph"] == "prefill"]
        assert ops.count("linear") == 36 and {"rmsnorm", "add", "swiglu"} <= set(ops)
        # attention tiles by KV head where one head's cache (2 x 16 KiB) fits, else reads L2 in place
        assert ops.count("attention") == (5 if l1 == "64KiB" and seq <= 64 else 0)
        assert got == ref, f"tiled (L1={l1}, S={seq}) logits differ from the untiled build on {base}"
        model_c = (tmp_path / f"{target}-{seq}-L1={l1}" / "model.c").read_text()
        assert "slmc_dma_start(" in model_c and "slmc_l1[" in model_c


HARNESS = r"""
#include <stdio.h>
#include "model.h"
extern uint64_t slmc_dma_bytes[4][4];
static float logits[SLMC_PREFILL_CHUNK * SLMC_VOCAB_SIZE];
int main(void) {
    int32_t tokens[SLMC_PREFILL_CHUNK];
    for (int i = 0; i < SLMC_PREFILL_CHUNK; i++) tokens[i] = 1 + i;
    slmc_reset();
    if (slmc_prefill(tokens, SLMC_PREFILL_CHUNK, 0, logits) != SLMC_OK) return 1;
    for (int a = 0; a < 4; a++) for (int b = 0; b < 4; b++) printf("%d %d %llu\n", a, b, (unsigned long long)slmc_dma_bytes[a][b]);
    return 0;
}
"""


@pytest.mark.parametrize("quant,l1", [("fp32", "16KiB"), ("fp32", "64KiB"), ("q8", "16KiB"), ("q8", "8KiB")])
def test_dma_counters_equal_the_planned_traffic(tmp_path, monkeypatch, quant, l1):
    """One full prompt step moves exactly the bytes the tiling plan says, link by link (attention's
    plan counts the whole context; at position 0 a step reads only its own rows of the cache)."""
    _need(("gcc",))
    target = _levels_target("host", monkeypatch)
    out = tmp_path / "p"
    rep = compile_model(CompileOptions(shared_path("models/stories260K/stories260K.bin"), target, quant, out, 16,
                                       mem=f"L1={l1}", mode="prefill"))
    (out / "harness.c").write_text(HARNESS)
    srcs = ["harness.c", "model.c", "weights.S", *sorted(str(f.relative_to(out)) for f in (out / "kernels").glob("*.c"))]
    subprocess.run(["gcc", "-O2", "-std=c99", "-ffp-contract=off", "-Ikernels", "-I.", "-o", "h", *srcs, "-lm"],
                   cwd=out, check=True, capture_output=True)
    lines = subprocess.run(["./h"], cwd=out, check=True, capture_output=True, text=True).stdout.split("\n")
    names = [lv["name"] for lv in rep["levels"]["levels"]]
    counted = {f"{names[int(a)]}->{names[int(b)]}": int(n) for a, b, n in (ln.split() for ln in lines if ln) if int(n)}
    expected = dict(rep["levels"]["bytes_moved"]["prefill"])
    for t in rep["levels"]["tiles"]:
        if t["graph"] == "prefill" and t["op"] == "attention":
            positions, hd = t["kv_tile"]
            expected["L2->L1"] -= 2 * 4 * positions * hd * 4 - 2 * 4 * 16 * hd * 4   # 4 KV heads, fp32, K and V
    assert counted == expected


def test_siracusa_like_itself_on_rv32(tmp_path):
    """The siracusa-like target proper (rv32imac recipe, QEMU virt): tiled equals untiled."""
    _need(("riscv64-unknown-elf-gcc", "qemu-system-riscv32"))
    ref, _ = _logits(tmp_path, "siracusa-like", 16, None, 20)
    got, rep = _logits(tmp_path, "siracusa-like", 16, "L1=8KiB", 20)
    assert rep["levels"]["l1_bytes"] <= 8192
    assert got == ref


def test_siracusa_like_itself_on_rv32_q8(tmp_path):
    """siracusa-like proper in q8: the RV32IM q8 kernel (int16 scratch in L2) on L1 tiles."""
    _need(("riscv64-unknown-elf-gcc", "qemu-system-riscv32"))
    ref, _ = _q8_logits(tmp_path, "siracusa-like", 16, None, 20)
    got, rep = _q8_logits(tmp_path, "siracusa-like", 16, "L1=8KiB", 20)
    assert [t["op"] for t in rep["levels"]["tiles"] if t["graph"] == "prefill"].count("linear_q8") == 36
    assert got == ref


def test_row_wise_operators_left_in_place_still_match(tmp_path, monkeypatch):
    """L1 = 1,500 B: the matrix products tile, SwiGLU (one row needs 2,064 B) reads L2 in place."""
    _need(("gcc",))
    target = _levels_target("host", monkeypatch)
    ref, _ = _logits(tmp_path, target, 16, None, 27)
    got, rep = _logits(tmp_path, target, 16, "L1=1500", 27)
    assert any(name.endswith("ffn_act") for name in rep["levels"]["in_place"])
    assert got == ref


def _q8_logits(tmp: Path, target: str, seq: int, mem: str | None, n_prompt: int) -> tuple[bytes, dict]:
    out = tmp / f"q8-{target}-{seq}-{mem or 'untiled'}"
    rep = compile_model(CompileOptions(shared_path("models/stories260K/stories260K.bin"), target, "q8", out, seq,
                                       mem=mem, mode="prefill" if mem else "decode"))
    dump = tmp / f"{out.name}.f32"
    run_program(get_target(target), build(out), llm_args(n_prompt + 8, 0.0, 0.9, 1, PROMPT[:n_prompt], dump))
    return dump.read_bytes(), rep


@pytest.mark.parametrize("base,tools,seq,l1s", [(*HOST, 16, ("64KiB", "16KiB", "8KiB")), (*HOST, 64, ("64KiB", "16KiB", "8KiB")),
                                                (*M33, 16, ("16KiB", "8KiB"))])
def test_q8_tiled_equals_untiled(tmp_path, monkeypatch, base, tools, seq, l1s):
    """q8: the products tile like fp32 ones (token rows of xq + xs, output rows of wq + ws, K whole),
    and so do the norms and element-wise operators; quantize_q8 reads L2 in place. Same logits."""
    _need(tools)
    target = _levels_target(base, monkeypatch)
    n_prompt = seq + seq // 2 + 3
    ref, _ = _q8_logits(tmp_path, target, seq, None, n_prompt)
    for l1 in l1s:
        got, rep = _q8_logits(tmp_path, target, seq, f"L1={l1}", n_prompt)
        ops = [t["op"] for t in rep["levels"]["tiles"] if t["graph"] == "prefill"]
        assert ops.count("linear_q8") == 36 and {"rmsnorm", "add", "swiglu"} <= set(ops)
        assert rep["levels"]["placement"][0]["used"] <= rep["levels"]["placement"][0]["capacity"]
        assert got == ref, f"tiled q8 (L1={l1}, S={seq}) logits differ from the untiled build on {base}"
