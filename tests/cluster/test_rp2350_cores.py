"""Issue 21: the RP2350's two cores as a cluster (`slmc compile --cores 2`): the matrix products split by rows
and attention by (KV) heads over them give the serial build's ids, on rp2350-riscv with two QEMU harts and on
rp2350-arm (Unicorn: one core runs each core's share in turn, the runner answering parallel.c's marker writes
with its instruction count); and the per-core counts add up to the serial build's counts plus only the wrappers'
few instructions."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import shared_path
from slmc.errors import SlmcError
from slmc.targets import get_target
from slmc.toolchain.harts import max_cores, run_target, with_cores

SLMC = [sys.executable, "-m", "slmc.cli"]
MODEL = "models/stories260K/stories260K.bin"
# what a share adds to the serial kernel's count on its rows: the wrapper's slicing and call, the marker pair
# (Arm) or minstret reads, and the kernel's per-call set-up (linear_q8_dsp.c widens the token's activations
# again for each share: k / 8 x 6 instructions, 130 at k = 172); measured 150-300
SHARE_OVERHEAD = 400
# the serial reference: without memory sharing, so without the fused FFN pair (kernels/ffn_pair.py), which a
# --cores build does not take either (its products are wrapped one by one): the same operators, counted alike
SERIAL = ("--memory-sharing", "off")


def test_rp2350_clusters_are_data():
    for name, isa in (("rp2350-arm", "armv8m"), ("rp2350-riscv", "rv32")):
        t = get_target(name)
        cl = t.engines.cluster
        assert (cl.cores, cl.isa, t.cores) == (2, isa, 0) and cl.core_stack_bytes == 4096
        assert cl.min_split_elements == 128  # 64-element RMSNorm and RoPE were slower split (rp2350_cores.py)
        assert max_cores(t) == 2
        two = with_cores(t, 2)
        assert two.cores == 2 and two.runtime_sram_bytes == t.runtime_sram_bytes + 4096  # core 1's stack
        with pytest.raises(SlmcError, match="cluster of 2"):
            with_cores(t, 3)
    assert max_cores(get_target("cortex-m33")) == 1 and max_cores(get_target("rv32imac")) == 1
    arm = with_cores(get_target("rp2350-arm"), 2)
    assert "-smp" not in arm.emulator.qemu and "-nostartfiles" not in arm.ldflags  # one core, counted share by share
    assert run_target(get_target("rp2350-arm"), {"cluster": {"cores": 2}}, counting=True).emulator == arm.emulator
    rv = with_cores(get_target("rp2350-riscv"), 2)
    assert rv.emulator.qemu[-2:] == ("-smp", "2") and "-nostartfiles" in rv.ldflags
    assert run_target(get_target("rp2350-riscv"), {"cluster": {"cores": 2}}, counting=True).emulator.qemu[-2:] == ("-smp", "1")


def _compile(out: Path, target: str, *extra: str) -> dict:
    r = subprocess.run([*SLMC, "compile", str(shared_path(MODEL)), "-t", target, "-o", str(out), *extra],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return json.loads((out / "report.json").read_text())


def _run(out: Path, *extra: str) -> str:
    r = subprocess.run([*SLMC, "run", str(out), "--temperature", "0", *extra], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


def _check_counts(serial: dict, par: dict) -> None:
    """Every matrix product's shares add up to the serial build's count on the same node plus a wrapper's
    overhead per share, each core has rows, and the busiest share is about half of it."""
    ops1: dict[str, list[float]] = {}
    for o in serial["ops"]:
        ops1.setdefault(o["name"], []).append(o["instructions"])
    cl = par["cluster"]
    assert cl["cores"] == 2 and cl["harts"] == 1  # counted one share after another
    rows = [s for s in cl["sites"] if s["graph"] == "decode" and s["split"] == "rows"]
    assert len(rows) >= 7 * 2 and all(s["calls"] == par["decode_steps"] for s in rows)
    ops2 = {o["name"]: o["instructions"] for o in par["ops"]}
    inside = 0
    for s in rows:
        one, op = ops1[s["node"]][0], ops2[s["node"]]
        per = [c / s["calls"] for c in s["core_instructions"]]
        assert min(per) > 0.3 * one, s
        # the wrapped operator costs the serial one plus at most each share's overhead, and holds the shares
        assert one <= op <= one + 2 * SHARE_OVERHEAD and sum(per) <= op, (s["node"], one, op, per)
        if op - sum(per) <= 2 * SHARE_OVERHEAD:  # all but model.c's code counted with the operator (the logits'
            inside += 1                          # conversion after the last product)
            assert one <= sum(per) <= one + 2 * SHARE_OVERHEAD, (s["node"], one, per)
        assert s["span"] / s["calls"] < 0.55 * one + SHARE_OVERHEAD, s
    assert inside >= len(rows) - 1
    pt = cl["per_token"]
    assert pt["critical_path_instructions"] < 0.85 * serial["instructions_per_token"]
    # the whole token: the serial build's count plus at most the overhead of every share of every split call
    extra = par["instructions_per_token"] - serial["instructions_per_token"]
    assert 0 <= extra <= 2 * SHARE_OVERHEAD * len([s for s in cl["sites"] if s["graph"] == "decode"]), extra


def _check_attention(serial: dict, par: dict, op: str, split: str) -> None:
    """Attention split over (KV) heads: one site per layer, both cores take half the heads (stories260K: 4 KV
    heads, 8 heads), so each share is about half the serial operator and together they are the serial one plus
    each share's overhead."""
    ops1 = {o["name"]: o["instructions"] for o in serial["ops"]}
    att = [s for s in par["cluster"]["sites"] if s["graph"] == "decode" and s["op"] == op]
    assert len(att) == 5 and all(s["split"] == split and s["calls"] == par["decode_steps"] for s in att)
    for s in att:
        one, per = ops1[s["node"]], [c / s["calls"] for c in s["core_instructions"]]
        assert all(0.4 * one < c < 0.6 * one + SHARE_OVERHEAD for c in per), (s["node"], one, per)
        assert one <= sum(per) <= one + 2 * SHARE_OVERHEAD, (s["node"], one, per)


@pytest.mark.slow
def test_rp2350_arm_two_cores_same_ids_and_counts(tmp_path):
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc not installed (`make toolchains`)")
    args = ("-q", "q8", "--kv-cache", "int8")
    _compile(tmp_path / "s", "rp2350-arm", *args, *SERIAL)
    rep = _compile(tmp_path / "p", "rp2350-arm", *args, "--cores", "2")
    assert any(s["kernel"] == "linear_q8_dsp.c" and s["split"] == "rows" for s in rep["cluster"]["sites"])
    assert any(s["kernel"] == "attention_i8kv_dsp.c" and s["split"] == "kv_heads" for s in rep["cluster"]["sites"])
    # 64 elements a row: RMSNorm and RoPE stay on core 0 (Cluster.min_split_elements); SwiGLU's 172 split
    ops = {s["op"] for s in rep["cluster"]["sites"]}
    assert "swiglu" in ops and not ops & {"rmsnorm", "rope"}
    serial = json.loads(_run(tmp_path / "s", "--steps", "24", "--json"))
    par = json.loads(_run(tmp_path / "p", "--steps", "24", "--json"))  # Unicorn: the counting run
    assert len(serial["ids"]) > 10 and par["ids"] == serial["ids"]
    _check_counts(serial, par)
    _check_attention(serial, par, "attention", "kv_heads")
    est = par["cluster"]["estimate"]  # the critical path's cycles (cycle model on the run's mix) + fork/joins + flash
    assert est["forks_per_token"] > 0 and est["critical_path_cycles_per_token"] < 0.85 * par["estimated_cycles_per_token"]
    assert serial["estimated_tokens_per_s"] < est["estimated_tokens_per_s"]
    # plain QEMU (no marker answered): the same program, the same ids
    assert _run(tmp_path / "p", "--steps", "24", "--ids").split() == [str(i) for i in serial["ids"]]


@pytest.mark.slow
def test_rp2350_riscv_two_harts_same_ids_and_counts(tmp_path):
    for tool in ("riscv64-unknown-elf-gcc", "qemu-system-riscv32"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (`make toolchains`)")
    _compile(tmp_path / "s", "rp2350-riscv", "-q", "int8", *SERIAL)
    rep = _compile(tmp_path / "p", "rp2350-riscv", "-q", "int8", "--cores", "2")
    assert {s["kernel"] for s in rep["cluster"]["sites"]} == {"linear_i8_rv32.c", "attention_i.c"}
    assert "-smp 2" in (tmp_path / "p" / "Makefile").read_text()
    want = _run(tmp_path / "s", "--steps", "24", "--ids")
    assert len(want.split()) > 10 and _run(tmp_path / "p", "--steps", "24", "--ids") == want  # two harts
    from slmc.toolchain.build import build
    from slmc.toolchain.run import llm_args, run_program

    res = run_program(run_target(get_target("rp2350-riscv"), rep), build(tmp_path / "p"),
                      llm_args(4, 0.0, 0.9, 42, None, None))
    assert res.stats["par_harts"] == 2  # hart 1 really took its rows
    serial = json.loads(_run(tmp_path / "s", "--steps", "24", "--json"))
    par = json.loads(_run(tmp_path / "p", "--steps", "24", "--json"))  # QEMU -smp 1: the counting run
    assert par["ids"] == serial["ids"] == [int(i) for i in want.split()]
    _check_counts(serial, par)
    _check_attention(serial, par, "attention_i", "heads")
