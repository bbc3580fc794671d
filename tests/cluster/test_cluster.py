"""Issue 10: a target's engines as data, and kernels split over a cluster of cores
(`slmc compile --cores N`): stories260K q8 gives the same ids (and the same logits bits) on 1 and 8
cores as the serial build, on the host with threads and under QEMU with 8 RV32 harts, with the NPU
(its functional model) taking the matrix products the engine pass gives it, and the counting run
reports exact per-core instructions per operator."""

from __future__ import annotations

import json
import shutil
import sys
import subprocess
from pathlib import Path

import pytest

from conftest import shared_path
from slmc.errors import SlmcError
from slmc.targets import get_target
from slmc.toolchain.harts import max_cores, run_target, with_cores

SLMC = [sys.executable, "-m", "slmc.cli"]
MODEL = "models/stories260K/stories260K.bin"
PROMPT = "1,400,300,200,100,50,20,30,40,50,60,70,80,90,100,110,120,130,140"


def test_siracusa_engines_are_data():
    t = get_target("siracusa-like")
    assert t.engines is not None and t.engines.cluster.cores == 8 and t.engines.cluster.isa == "rv32"
    npu = t.engines.npu
    assert npu is not None and (npu.min_weight_bits, npu.max_weight_bits) == (2, 8)
    assert npu.macs_per_cycle(4) == 2 * npu.macs_per_cycle(8)  # bit-serial: half the bits, twice the MACs
    assert t.cores == 0 and get_target("rv32imac").engines is None  # builds are serial unless --cores


def test_cores_and_engine_errors(tmp_path):
    model = tmp_path / "m.bin"
    model.write_bytes(b"")
    r = subprocess.run([*SLMC, "compile", str(model), "--chips", "2", "--cores", "2", "-o", str(tmp_path / "o")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "--chips" in r.stderr


def test_cores_limits():
    assert max_cores(get_target("siracusa-like")) == 8 and max_cores(get_target("host")) is None
    assert max_cores(get_target("rv32imac")) == 1
    with pytest.raises(SlmcError, match="cluster of 8"):
        with_cores(get_target("siracusa-like"), 9)
    with pytest.raises(SlmcError, match="one core"):
        with_cores(get_target("cortex-m33"), 2)
    t = with_cores(get_target("siracusa-like"), 4)
    assert t.emulator.qemu[-2:] == ("-smp", "4") and "-nostartfiles" in t.ldflags
    counting = run_target(get_target("siracusa-like"), {"cluster": {"cores": 4}}, counting=True)
    assert counting.emulator.qemu[-2:] == ("-smp", "1")


def _compile(model: Path, target: str, out: Path, *extra: str) -> dict:
    q = [] if "-q" in extra else ["-q", "q8"]
    r = subprocess.run([*SLMC, "compile", str(model), "-t", target, *q, "-o", str(out), *extra],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return json.loads((out / "report.json").read_text())


def _run(out: Path, *extra: str) -> str:
    r = subprocess.run([*SLMC, "run", str(out), *extra], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.slow
def test_host_threads_identical(tmp_path):
    model = shared_path(MODEL)
    serial = _compile(model, "host", tmp_path / "s")
    assert "cluster" not in serial and not (tmp_path / "s" / "slmc_parallel.h").exists()
    rep = _compile(model, "host", tmp_path / "p8", "--cores", "8")
    assert rep["cluster"]["runtime"] == "threads"
    assert {s["split"] for s in rep["cluster"]["sites"]} == {"rows", "heads", "elements", "groups"}
    _compile(model, "host", tmp_path / "p1", "--cores", "1")
    outs = {}
    for d in ("s", "p1", "p8"):
        ids = _run(tmp_path / d, "--steps", "64", "--prompt-ids", PROMPT, "--ids", "--dump-logits", str(tmp_path / f"{d}.f32"))
        outs[d] = (ids, (tmp_path / f"{d}.f32").read_bytes())
    assert outs["p1"] == outs["s"] and outs["p8"] == outs["s"]  # ids and every logit bit
    # fp32 numerics: linear_f32, attention, RMSNorm, RoPE, SwiGLU through the same wrappers
    _compile(model, "host", tmp_path / "f", "-q", "fp32")
    _compile(model, "host", tmp_path / "f3", "-q", "fp32", "--cores", "3")
    got = [_run(tmp_path / d, "--steps", "40", "--prompt-ids", PROMPT, "--ids", "--dump-logits", str(tmp_path / f"{d}.f32"))
           + (tmp_path / f"{d}.f32").read_bytes().hex() for d in ("f", "f3")]
    assert got[0] == got[1]


@pytest.mark.slow
def test_qemu_harts_identical_and_counted(tmp_path):
    model = shared_path(MODEL)
    for tool in ("riscv64-unknown-elf-gcc", "qemu-system-riscv32"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (`make toolchains`)")
    serial = _compile(model, "siracusa-like", tmp_path / "s")
    assert "cluster" not in serial and "engines" not in serial
    rep = _compile(model, "siracusa-like", tmp_path / "p8", "--cores", "8", "--engine", "linear=cluster")
    _compile(model, "siracusa-like", tmp_path / "p1", "--cores", "1", "--engine", "linear=cluster")
    assert "-smp 8" in (tmp_path / "p8" / "Makefile").read_text()
    want = _run(tmp_path / "s", "--steps", "24", "--ids")
    assert len(want.split()) > 10
    assert _run(tmp_path / "p1", "--steps", "24", "--ids") == want
    assert _run(tmp_path / "p8", "--steps", "24", "--ids") == want  # 8 harts
    npu = _compile(model, "siracusa-like", tmp_path / "n8", "--cores", "8", "--engine", "linear=npu")
    assert {o["engine"] for o in npu["engines"]["ops"] if o["op"] == "linear_q8"} == {"npu"}
    assert _run(tmp_path / "n8", "--steps", "24", "--ids") == want  # the NPU's functional model, 8 harts for the rest
    auto = _compile(model, "siracusa-like", tmp_path / "a8", "--cores", "8")  # the cost model decides per operator
    chosen = {o["engine"] for o in auto["engines"]["ops"] if o["op"] == "linear_q8"}
    assert chosen == {"npu", "cluster"}  # small decode products stay on the cluster (set-up), larger go to the NPU
    on_npu = {o["node"] for o in auto["engines"]["ops"] if o["engine"] == "npu"}
    assert not on_npu & {s["node"] for s in auto["cluster"]["sites"]}
    assert all(o["kernel"] == "npu_linear.c" for o in auto["ops"] if o["name"] in on_npu)
    assert _run(tmp_path / "a8", "--steps", "24", "--ids") == want
    assert all(o["kernel"] == "npu_linear.c" for o in npu["ops"] if o["op"] == "linear_q8")
    mixed = _compile(model, "siracusa-like", tmp_path / "f4", "--cores", "8", "--engine", "linear=npu,ffn_bits=4")
    assert {o["weight_bits"] for o in mixed["engines"]["ops"] if ".w2_out" in o["node"]} == {4}
    acc = mixed["engines"]["accuracy"]
    assert acc["ffn_bits"] == 4 and acc["q8_ffn"]["top1_agreement"] < acc["q8"]["top1_agreement"]
    assert mixed["weights_bytes"] < npu["weights_bytes"]
    f4 = _run(tmp_path / "f4", "--steps", "24", "--ids")
    assert f4 != want and _run(tmp_path / "f4", "--steps", "24", "--ids", "--on", "host") == f4
    # the same programs on this machine, one thread per core (and the NPU's functional model)
    assert _run(tmp_path / "a8", "--steps", "24", "--ids", "--on", "host") == want
    assert _run(tmp_path / "p8", "--steps", "24", "--ids", "--on", "host") == want
    # the harts really took the work: the plain run reports 8 harts
    from slmc.toolchain.build import build
    from slmc.toolchain.run import llm_args, run_program

    elf = build(tmp_path / "p8")
    res = run_program(run_target(get_target("siracusa-like"), rep), elf, llm_args(4, 0.0, 0.9, 42, None, None))
    assert res.stats["par_harts"] == 8
    prof = json.loads(_run(tmp_path / "p8", "--steps", "8", "--json"))
    assert prof["ids"] == [int(i) for i in want.split()][:len(prof["ids"])]
    cl = prof["cluster"]
    assert cl["cores"] == 8 and cl["harts"] == 1  # counted one share after another on one hart
    rows = {r["node"]: r for r in cl["sites"] if r["graph"] == "decode"}
    w2 = rows["layers.0.w2_out"]
    assert w2["calls"] == prof["decode_steps"] and all(c > 0 for c in w2["core_instructions"])
    assert w2["efficiency"] > 0.9
    assert rows["layers.0.att"]["efficiency"] > 0.9  # 8 heads on 8 cores
    pt = cl["per_token"]
    assert pt["critical_path_instructions"] < 0.6 * pt["one_core_equivalent"]


@pytest.mark.slow
def test_qemu_prompt_steps_identical(tmp_path):
    """Prompt steps (--seq 16): matrix products of 16 tokens split by rows per token, RMSNorm by token
    rows, and the prompt-mode products the cost model gives the NPU."""
    model = shared_path(MODEL)
    for tool in ("riscv64-unknown-elf-gcc", "qemu-system-riscv32"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (`make toolchains`)")
    _compile(model, "siracusa-like", tmp_path / "s", "--seq", "16")
    rep = _compile(model, "siracusa-like", tmp_path / "p", "--seq", "16", "--cores", "8")
    assert {o["engine"] for o in rep["engines"]["ops"] if o["graph"] == "prefill" and o["op"] == "linear_q8"} == {"npu"}
    want = _run(tmp_path / "s", "--steps", "40", "--prompt-ids", PROMPT, "--ids")
    assert _run(tmp_path / "p", "--steps", "40", "--prompt-ids", PROMPT, "--ids") == want
    assert _run(tmp_path / "p", "--steps", "40", "--prompt-ids", PROMPT, "--ids", "--on", "host") == want
