"""The fit check: what needs how many bytes where, the margin in report.json, and a clear failure.
Compiling needs no cross compiler, so these run in the fast tier."""

import json
import subprocess
import sys

import pytest

from conftest import shared_path
from slmc.driver import CompileOptions, compile_model
from slmc.errors import SlmcError
from slmc.frontend.random_model import SHAPES, random_decoder
from slmc.targets import get_target
from slmc.targets.fit import check_fit, memory_fit, positions_that_fit

SLMC = [sys.executable, "-m", "slmc.cli"]


def test_stories260k_q8_fits_rp2350_with_the_margin_in_the_report(tmp_path):
    ckpt = shared_path("models/stories260K/stories260K.bin")
    r = subprocess.run([*SLMC, "compile", str(ckpt), "-t", "rp2350-arm", "-q", "q8", "-o", str(tmp_path / "o")],
                       capture_output=True, text=True, check=True)
    rep = json.loads((tmp_path / "o" / "report.json").read_text())
    mem = rep["memory"]
    assert mem["weights_in"] == "flash" and rep["prefill_chunk"] == 0
    assert mem["sram"]["capacity"] == 532_480 and mem["flash"]["capacity"] == 4 * 1024 * 1024
    assert 0 <= mem["sram"]["margin"] == mem["sram"]["capacity"] - mem["sram"]["used"]
    assert mem["sram"]["needs"]["KV cache"] == rep["kv_cache_bytes"] and mem["flash"]["needs"]["weights"] == rep["weights_bytes"]
    # 512 positions of fp32 KV cache alone (655,360 B) exceed 520 KB: the context is cut to what fits, and said so
    assert rep["config"]["seq_len"] == 384 and rep["model_seq_len"] == 512 and "384 of the model's 512" in rep["notes"][-1]
    assert "margin" in r.stderr and "384 of the model's 512" in r.stderr.replace("\n", "")


def test_full_context_on_rp2350_fails_with_the_numbers(tmp_path):
    ckpt = shared_path("models/stories260K/stories260K.bin")
    out = tmp_path / "o"
    r = subprocess.run([*SLMC, "compile", str(ckpt), "-t", "rp2350-riscv", "-q", "q8", "--context", "512", "-o", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    msg = " ".join(r.stderr.split())
    assert "does not fit rp2350-riscv" in msg and "SRAM needs 680,704 B" in msg and "KV cache 655,360" in msg
    assert "of 532,480 B: 148,224 B over" in msg and "--context 384 would fit" in msg
    assert not out.exists()


def test_a_model_too_big_for_flash_and_sram(tmp_path):
    model = random_decoder(SHAPES["stories15M"], seed=0)
    with pytest.raises(SlmcError) as e:
        compile_model(CompileOptions(tmp_path / "m.bin", "rp2350-arm", "q8", tmp_path / "o"), model=model)
    msg = str(e.value)
    assert "FLASH needs" in msg and "weights" in msg and "of 4,194,304 B" in msg and "B over" in msg
    assert not (tmp_path / "o").exists()


def test_fit_arithmetic():
    t = get_target("rp2350-arm")
    fit = memory_fit(t, arena_bytes=600_000, kv_cache_bytes=500_000, weights_bytes=1000, main_bytes=100)
    sram, flash = fit
    assert sram.used == 600_000 + 100 + t.stack_bytes + t.runtime_sram_bytes and sram.margin < 0
    assert flash.used == 1000 + t.code_flash_bytes and flash.margin > 0
    with pytest.raises(SlmcError, match=f"{-sram.margin:,} B over"):
        check_fit("m", t, fit)
    n = positions_that_fit(fit, seq_len=500, bytes_per_position=1000)
    assert n % 64 == 0 and 0 < n < 500
    assert sram.used - 1000 * (500 - n) <= sram.capacity < sram.used - 1000 * (500 - n - 64)
    assert memory_fit(get_target("host"), 1, 1, 1, 1) == ()
