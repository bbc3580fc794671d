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
    r = subprocess.run([*SLMC, "compile", str(ckpt), "-t", "rp2350-arm", "-q", "q8", "--weights-sram", "off",
                        "-o", str(tmp_path / "o")], capture_output=True, text=True, check=True)
    rep = json.loads((tmp_path / "o" / "report.json").read_text())
    mem = rep["memory"]
    assert mem["weights_in"] == "flash" and rep["prefill_chunk"] == 0 and "weights_sram_bytes" not in rep
    assert mem["sram"]["capacity"] == 532_480 and mem["flash"]["capacity"] == 4 * 1024 * 1024
    assert 0 <= mem["sram"]["margin"] == mem["sram"]["capacity"] - mem["sram"]["used"]
    assert mem["sram"]["needs"]["KV cache"] == rep["kv_cache_bytes"] and mem["flash"]["needs"]["weights"] == rep["weights_bytes"]
    # 512 positions of fp32 KV cache alone (655,360 B) exceed 520 KB: the fit step stores it as fp16 (half the
    # bytes) before it would cut the context, and says so; everything, the whole context included, is in SRAM
    assert rep["kv_cache"] == "fp16" and rep["kv_cache_bytes"] == 327_680 and rep["config"]["seq_len"] == 512
    assert "model_seq_len" not in rep and mem["sram"]["margin"] == 177_632
    assert "stored as fp16 (327,680 B instead of 655,360 B in fp32)" in rep["notes"][-1]
    assert "full 512-position context fits rp2350-arm" in rep["notes"][-1]
    err = " ".join(r.stderr.split())
    assert "margin 177,632" in err and "(fp16)" in err and "stored as fp16" in err and "weights in flash" in err
    assert not (tmp_path / "o" / "weights_ram.bin").exists()


def test_weights_fill_the_free_sram_of_rp2350(tmp_path):
    """The weights that would stream from flash every token fill the SRAM the plan leaves free: copied at boot
    as initialised data (weights_ram.bin), the rest stays in flash (--weights-sram boot: the boot copy alone;
    the default also DMA-stages the rest, tests/cluster/test_weight_staging.py)."""
    from slmc.stages.fit import SRAM_RESERVE

    ckpt = shared_path("models/stories260K/stories260K.bin")
    rep = compile_model(CompileOptions(ckpt, "rp2350-arm", "q8", tmp_path / "o", weights_sram="boot"))
    mem, moved = rep["memory"], rep["weights_sram_bytes"]
    assert mem["weights_in"] == "flash+sram" and mem["sram"]["needs"]["weights copied to SRAM"] == moved
    assert (tmp_path / "o" / "weights_ram.bin").stat().st_size >= moved > 170_000
    assert 0 <= mem["sram"]["margin"] <= 177_632 - moved and mem["sram"]["margin"] >= SRAM_RESERVE - 16 * 40
    assert mem["flash"]["needs"]["weights"] == rep["weights_bytes"]   # the image of the copy stays in flash
    assert "slmc_weights_ram" in (tmp_path / "o" / "model.c").read_text()
    # the largest first: the tied table the classifier reads every token (the embedding reads it too, one
    # row); what no longer fits stays in flash
    shares = {o["name"]: o["weights_sram_share"] for o in rep["ops"] if "weights_sram_share" in o}
    assert shares["tok_embeddings_out"] > 0.9 and 0 < sum(v > 0 for v in shares.values()) < len(shares)


def test_fp32_kv_cache_on_rp2350_cuts_the_context(tmp_path):
    ckpt = shared_path("models/stories260K/stories260K.bin")
    r = subprocess.run([*SLMC, "compile", str(ckpt), "-t", "rp2350-arm", "-q", "q8", "--kv-cache", "fp32",
                        "-o", str(tmp_path / "o")], capture_output=True, text=True, check=True)
    rep = json.loads((tmp_path / "o" / "report.json").read_text())
    assert rep["kv_cache"] == "fp32" and not any("fp16" in n for n in rep["notes"])
    assert rep["config"]["seq_len"] == 384 and rep["model_seq_len"] == 512 and "384 of the model's 512" in rep["notes"][-1]
    assert "margin" in r.stderr and "384 of the model's 512" in r.stderr.replace("\n", "")


def test_the_host_keeps_an_fp32_kv_cache_unless_asked(tmp_path):
    model = random_decoder(SHAPES["stories260K"], seed=0)
    rep = compile_model(CompileOptions(tmp_path / "m.bin", "host", "q8", tmp_path / "a"), model=model)
    assert rep["kv_cache"] == "fp32"
    half = compile_model(CompileOptions(tmp_path / "m.bin", "host", "q8", tmp_path / "b", kv_cache="fp16"), model=model)
    assert half["kv_cache"] == "fp16" and 2 * half["kv_cache_bytes"] == rep["kv_cache_bytes"]
    assert "slmc_kv_write_f16" in (tmp_path / "b" / "model.c").read_text()
    assert "slmc_kv_write_f32" in (tmp_path / "a" / "model.c").read_text()
    with pytest.raises(SlmcError, match="unknown KV cache type"):
        compile_model(CompileOptions(tmp_path / "m.bin", "host", "q8", tmp_path / "c", kv_cache="fp8"), model=model)


def test_full_context_on_rp2350_fails_with_the_numbers(tmp_path):
    ckpt = shared_path("models/stories260K/stories260K.bin")
    out = tmp_path / "o"
    r = subprocess.run([*SLMC, "compile", str(ckpt), "-t", "rp2350-riscv", "-q", "q8", "--context", "512",
                        "--kv-cache", "fp32", "-o", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    msg = " ".join(r.stderr.split())
    assert "does not fit rp2350-riscv" in msg and "SRAM needs 680,448 B" in msg and "KV cache 655,360" in msg
    assert "of 532,480 B: 147,968 B over" in msg and "--context 384 would fit" in msg
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
