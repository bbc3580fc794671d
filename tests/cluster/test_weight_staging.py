"""Issue 21: DMA staging of the flash-resident weights on the RP2350 (codegen/stage_plan.py, codegen/staging.py).

The staged build (--weights-sram auto) must compute what the build that reads its weights in place through XIP
(--weights-sram boot) computes, bit for bit (the same kernel on the same bytes, from an SRAM copy); the host's
q8 build with the portable kernels gives the same greedy ids. The copies come from weights.bin (flash), never
from the boot copy; a model whose weights all fit SRAM stages nothing; the emulated copy's instructions are
counted apart from the cores'; the estimate's replay lies between max(compute, flash) and their sum.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from conftest import run_slmc, shared_path
from slmc.toolchain.staged_estimate import replay, staged_estimate

MODEL = "models/stories260K/stories260K.bin"
STEPS = 24
Q8 = ("-q", "q8", "--kv-cache", "int8")


def _compile(out: Path, target: str, *extra: str) -> dict:
    r = run_slmc("compile", shared_path(MODEL), "-t", target, "-o", out, *extra)
    assert r.returncode == 0, r.stderr
    return json.loads((out / "report.json").read_text())


def _run(out: Path, *extra: str) -> str:
    r = run_slmc("run", out, "--steps", STEPS, "--temperature", "0", *extra)
    assert r.returncode == 0, r.stderr
    return r.stdout


def _ids_and_logits(out: Path, tmp: Path) -> tuple[list[int], bytes]:
    f = tmp / f"{out.name}.f32"
    ids = [int(x) for x in _run(out, "--ids", "--dump-logits", f).split()]
    return ids, f.read_bytes()


def _need(*tools: str) -> None:
    for t in tools:
        if shutil.which(t) is None:
            pytest.skip(f"{t} not installed (`make toolchains`)")


def _check_plan(out: Path, rep: dict) -> None:
    """Every copy in model.c reads weights.bin (flash), inside it, and the copies add up to the report's bytes;
    every staged product reads its buffer; the SRAM fit holds both buffers."""
    st = rep["staging"]
    c = (out / "model.c").read_text()
    flash = (out / "weights.bin").stat().st_size
    starts = re.findall(r"slmc_stage_start\((\d+), slmc_stage_buf\[(\d)\] \+ (\d+), (\w+) \+ (\d+), (\d+)\)", c)
    assert starts and all(src == "slmc_weights" for _, _, _, src, _, _ in starts)  # never slmc_weights_ram
    assert c.count("slmc_stage_start(") - 1 == len(starts)  # every copy matched (less the prototype)
    for _, buf, dst, _, off, n in starts:
        assert int(off) + int(n) <= flash + 3 and int(dst) + int(n) <= st["buffer_bytes"] and int(n) % 4 == 0
    assert sum(int(n) for *_, n in starts) == st["bytes_per_step"]
    assert c.count("slmc_stage_wait(") - 1 >= len(st["products"])  # a wait before each product (less the prototype)
    # the rest is read in place: RoPE's rows, a few vectors
    assert st["bytes_per_step"] <= rep["weights_read_per_step"]["flash"] <= st["bytes_per_step"] + 256
    assert rep["memory"]["sram"]["needs"]["weight staging buffers (DMA)"] == 2 * st["buffer_bytes"]
    assert rep["memory"]["sram"]["margin"] >= 0
    # the staged products are each waited for in the order they run, alternating buffers
    waits = [int(x) for x in re.findall(r"slmc_stage_wait\((\d+)\);", c)]
    assert [w // 4 for w in waits[:4]] == [0, 1, 0, 1]


def test_replay_lies_between_the_bounds():
    staging = dict(bytes_per_step=3 * 3750, products=[dict(node=f"p{k}", bytes=3750) for k in range(3)])
    rate, clock = 37.5e6, 150e6  # 3750 B: 100 us a copy; 15,000 cycles: 100 us of compute
    ops = [("a", 15_000.0), ("p0", 15_000.0), ("b", 15_000.0), ("p1", 15_000.0), ("p2", 15_000.0)]
    t, stall = replay(ops, 0.0, staging, clock, rate)
    # copy 0: 0..100, copy 1: 100..200 (issued at 0); p0 runs 100..200, copy 2 issued at 200 runs 200..300;
    # b 200..300, p1 300..400, p2 400..500: no wait at all
    assert t == pytest.approx(500e-6) and stall == pytest.approx(0.0)
    # no compute between the products: every copy is waited for
    t, stall = replay([("p0", 1.0), ("p1", 1.0), ("p2", 1.0)], 0.0, staging, clock, rate)
    assert t == pytest.approx(300e-6, rel=1e-3) and stall == pytest.approx(300e-6, rel=1e-3)
    est = staged_estimate(ops, 0.0, staging, clock, rate, 375.0)
    compute, flash = 500e-6, 3 * 100e-6
    assert max(compute, flash) <= est["seconds"] <= compute + flash + 10e-6
    assert est["in_place_flash_seconds"] == pytest.approx(10e-6)


def test_a_model_that_fits_sram_stages_nothing(tmp_path):
    rep = _compile(tmp_path / "s", "rp2350-arm", *Q8, "--context", "64")
    assert rep["weights_read_per_step"]["flash"] <= 64  # all but RoPE's rows copied at boot
    assert rep.get("staging") is None
    assert "slmc_stage" not in (tmp_path / "s" / "model.c").read_text()
    assert not (tmp_path / "s" / "slmc_stage.c").exists()


def test_staging_is_rp2350_only_and_can_be_turned_off(tmp_path):
    rep = _compile(tmp_path / "m", "cortex-m33", *Q8)
    assert rep.get("staging") is None
    rep = _compile(tmp_path / "b", "rp2350-arm", *Q8, "--weights-sram", "boot")
    assert rep.get("staging") is None and rep["weights_read_per_step"]["flash"] > 30_000
    r = run_slmc("compile", shared_path(MODEL), "-t", "rp2350-arm", "-o", tmp_path / "x", "--weights-sram", "dma")
    assert r.returncode == 2 and "--weights-sram auto, boot or off" in r.stderr


@pytest.mark.slow
def test_rp2350_arm_staged_is_bit_identical(tmp_path):
    _need("arm-none-eabi-gcc")
    staged, plain = tmp_path / "staged", tmp_path / "plain"
    rep = _compile(staged, "rp2350-arm", *Q8)
    base = _compile(plain, "rp2350-arm", *Q8, "--weights-sram", "boot")
    _check_plan(staged, rep)
    assert rep["weights_sram_bytes"] < base["weights_sram_bytes"]  # the buffers came out of the boot copy
    assert "hardware_dma" in (staged / "CMakeLists.txt").read_text()
    assert "dma_channel_wait_for_finish_blocking" in (staged / "slmc_stage_pico.c").read_text()
    ids, logits = _ids_and_logits(staged, tmp_path)
    want_ids, want_logits = _ids_and_logits(plain, tmp_path)
    assert len(ids) == STEPS and ids == want_ids and logits == want_logits
    host = tmp_path / "host"
    _compile(host, "host", *Q8)
    assert [int(x) for x in _run(host, "--ids").split()] == ids
    # counts (Unicorn): the copies apart, the cores' count the in-place build's + the staging calls
    s, p = json.loads(_run(staged, "--json")), json.loads(_run(plain, "--json"))
    assert s["ids"] == p["ids"] == ids
    assert s["staging_copy_instructions_per_token"] >= rep["staging"]["bytes_per_step"] / 4
    assert 0 <= s["instructions_per_token"] - p["instructions_per_token"] <= 20 * len(rep["staging"]["products"])
    assert s["estimated_tokens_per_s"] > p["estimated_tokens_per_s"]
    assert "DMA-staged" in s["estimate_basis"]
    compute = s["estimated_cycles_per_token"] / 150e6
    assert 1 / s["estimated_tokens_per_s"] >= max(compute, s["estimated_flash_seconds_per_token"]) - 1e-9


@pytest.mark.slow
def test_rp2350_arm_two_cores_staged_is_bit_identical(tmp_path):
    _need("arm-none-eabi-gcc")
    staged, plain = tmp_path / "staged2", tmp_path / "plain2"
    rep = _compile(staged, "rp2350-arm", *Q8, "--cores", "2")
    _compile(plain, "rp2350-arm", *Q8, "--cores", "2", "--weights-sram", "boot")
    _check_plan(staged, rep)
    c = (staged / "model.c").read_text()
    # core 0 waits before the wrapper forks: the wait line comes right before a staged wrapped product
    assert re.search(r"slmc_stage_wait\(\d+\);\n\s+slmc_par_linear_q8w\([^;]*slmc_stage_buf", c)
    ids, logits = _ids_and_logits(staged, tmp_path)
    want_ids, want_logits = _ids_and_logits(plain, tmp_path)
    assert len(ids) == STEPS and ids == want_ids and logits == want_logits
    s = json.loads(_run(staged, "--json"))
    assert s["ids"] == ids and s["staging_copy_instructions_per_token"] > 0
    est = s["cluster"]["estimate"]
    assert est["estimated_tokens_per_s"] > est["estimated_tokens_per_s_not_overlapped"]


@pytest.mark.slow
def test_rp2350_riscv_staged_is_bit_identical(tmp_path):
    _need("riscv64-unknown-elf-gcc", "qemu-system-riscv32")
    staged, plain = tmp_path / "rstaged", tmp_path / "rplain"
    rep = _compile(staged, "rp2350-riscv", "-q", "int8")
    _compile(plain, "rp2350-riscv", "-q", "int8", "--weights-sram", "boot")
    _check_plan(staged, rep)
    ids, logits = _ids_and_logits(staged, tmp_path)
    want_ids, want_logits = _ids_and_logits(plain, tmp_path)
    assert len(ids) == STEPS and ids == want_ids and logits == want_logits
    # QEMU's counter (minstret through gdb) leaves the copy loop out too
    s, p = json.loads(_run(staged, "--json")), json.loads(_run(plain, "--json"))
    assert s["counter"] == "qemu-gdb" and s["ids"] == p["ids"] == ids
    assert s["staging_copy_instructions_per_token"] >= rep["staging"]["bytes_per_step"] / 4
    assert 0 <= s["instructions_per_token"] - p["instructions_per_token"] <= 25 * len(rep["staging"]["products"])


@pytest.mark.slow
def test_rp2350_arm_fp32_stages_what_fits_and_gives_llama2c_ids(tmp_path):
    """fp32 weights (1 MB) leave most matrices in flash: those that fit the buffers are staged, the classifier's
    128 KB table (larger than any buffer worth its SRAM) is read in place; the ids are llama2.c's own."""
    _need("arm-none-eabi-gcc")
    staged, plain = tmp_path / "f32s", tmp_path / "f32p"
    rep = _compile(staged, "rp2350-arm", "-q", "fp32")
    _compile(plain, "rp2350-arm", "-q", "fp32", "--weights-sram", "boot")
    st = rep["staging"]
    assert st is not None and "tok_embeddings_out" not in {p["node"] for p in st["products"]}
    assert rep["weights_read_per_step"]["flash"] > st["bytes_per_step"] + 100_000  # the table, read in place
    assert (staged / "model.c").read_text().count("slmc_stage_buf[") > 2 * len(st["products"])
    ids, logits = _ids_and_logits(staged, tmp_path)
    want_ids, want_logits = _ids_and_logits(plain, tmp_path)
    ref = [int(x) for x in shared_path("models/stories260K/greedy_ids_from_bos.txt").read_text().split()]
    assert ids == want_ids == ref[:STEPS] and logits == want_logits
