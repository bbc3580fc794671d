"""Issue 10 without a toolchain: what a multi-core and an NPU build emit (random GQA model with
biases), and, with gcc, that a build on an odd number of threads computes the serial build's bits."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from slmc.driver import CompileOptions, compile_model
from slmc.frontend.decoder import DecoderConfig
from slmc.frontend.random_model import random_decoder
from slmc.quant.npu import unpack_npu

CFG = DecoderConfig(dim=64, hidden_dim=172, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=70, seq_len=32)
MODEL = random_decoder(CFG, seed=3, bias=True)


def _build(out: Path, target: str, numerics: str = "q8", **kw) -> dict:
    return compile_model(CompileOptions(Path("random-cluster"), target, numerics, out, None, **kw), model=MODEL)


def test_serial_build_is_untouched(tmp_path):
    rep = _build(tmp_path / "s", "siracusa-like")
    assert "cluster" not in rep and "engines" not in rep
    assert "slmc_par" not in (tmp_path / "s" / "model.c").read_text()
    assert not (tmp_path / "s" / "kernels" / "parallel.c").exists()


def test_cluster_build_emits_wrappers_and_sites(tmp_path):
    rep = _build(tmp_path / "p", "siracusa-like", cores=8, engine="linear=cluster")
    c = (tmp_path / "p" / "model.c").read_text()
    sites = rep["cluster"]["sites"]
    assert len(sites) == c.count("slmc_par_") - c.count("void slmc_par_")  # one call per site, prototypes aside
    assert {s["op"] for s in sites} >= {"linear_q8", "attention", "rmsnorm", "swiglu", "quantize_q8", "rope"}
    assert "slmc_par_linear_q8s(slmc_linear_q8_rv32, " in c
    mk = (tmp_path / "p" / "Makefile").read_text()
    assert "-DSLMC_CORES=8" in mk and f"-DSLMC_PAR_SITES={len(sites)}" in mk and "-smp 8" in mk
    assert {"parallel.c", "parallel_harts.c", "parallel_llm.c"} <= {f.name for f in (tmp_path / "p" / "kernels").iterdir()}
    assert all(o["engine"] == "cluster" for o in rep["engines"]["ops"])


def test_npu_build_packs_its_weights(tmp_path):
    rep = _build(tmp_path / "n", "siracusa-like", cores=2, engine="linear=npu,ffn_bits=4")
    on_npu = [o for o in rep["engines"]["ops"] if o["engine"] == "npu"]
    assert on_npu and all(o["op"] == "linear_q8" for o in on_npu)
    assert {o["weight_bits"] for o in on_npu if ".w1_out" in o["node"]} == {4}
    c = (tmp_path / "n" / "model.c").read_text()
    assert "slmc_npu_linear_q8(" in c and "_npu4" in c and "_npu8" in c
    assert rep["engines"]["accuracy"]["ffn_bits"] == 4
    assert unpack_npu(np.zeros((1, 4, 8), np.uint8), 64).shape == (1, 64)


@pytest.mark.slow
@pytest.mark.parametrize("numerics,kv", [("q8", "fp32"), ("fp32", "fp32"), ("q8", "fp16")])
def test_odd_thread_count_same_bits(tmp_path, numerics, kv):
    _build(tmp_path / "s", "host", numerics, kv_cache=kv)
    _build(tmp_path / "p", "host", numerics, cores=3, kv_cache=kv)
    outs = []
    for d in ("s", "p"):
        logits = tmp_path / f"{d}.f32"
        r = subprocess.run([sys.executable, "-m", "slmc.cli", "run", str(tmp_path / d), "--steps", "20", "--prompt-ids",
                            "1,5,9,13,17,21,25,29,33,37", "--ids", "--dump-logits", str(logits)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        outs.append((r.stdout, logits.read_bytes()))
    assert outs[0] == outs[1]
    assert json.loads((tmp_path / "p" / "report.json").read_text())["cluster"]["runtime"] == "threads"
