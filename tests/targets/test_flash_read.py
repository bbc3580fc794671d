"""The flash term of the ESTIMATE (toolchain/profile.py) counts the weight bytes a token reads: every byte of a
matrix in flash, one row of a table read one row per token (RoPE's cos/sin), not the whole table."""

import pytest

from conftest import shared_path
from slmc.driver import CompileOptions, compile_model
from slmc.targets import get_target
from slmc.toolchain.profile import estimate

MB = 1e6


def _rep(**kw) -> dict:
    return dict(weights_bytes=100_000, memory={"weights_in": "flash+sram"}, **kw)


def test_the_flash_term_reads_the_reports_bytes_per_step():
    t = get_target("rp2350-arm")
    rate, clock = t.flash.read_bytes_per_s, t.clock_hz
    cycles = 1_500_000.0
    # the report says a step reads 30,000 B from flash: that, not weights - SRAM (60,000 B), is the term
    new = estimate(t, _rep(weights_sram_bytes=40_000, weights_read_per_step={"flash": 30_000, "sram": 40_000}), cycles)
    assert new["estimated_flash_seconds_per_token"] == pytest.approx(30_000 / rate)
    assert new["estimated_tokens_per_s"] == pytest.approx(1 / (cycles / clock + 30_000 / rate))
    assert "ESTIMATE" in new["estimate_basis"] and "30,000 weight bytes" in new["estimate_basis"]
    # an older report without the field: every byte not copied to SRAM, as before
    old = estimate(t, _rep(weights_sram_bytes=40_000), cycles)
    assert old["estimated_flash_seconds_per_token"] == pytest.approx(60_000 / rate)
    # nothing in flash: no flash term at all
    none = estimate(t, _rep(weights_read_per_step={"flash": 0, "sram": 100_000}), cycles)
    assert none["estimated_flash_seconds_per_token"] == 0 and none["estimated_tokens_per_s"] == pytest.approx(clock / cycles)


@pytest.mark.parametrize("sram", [True, False])
def test_rope_tables_count_one_row(tmp_path, sram):
    """stories260K q8 on rp2350-arm: RoPE's cos and sin tables (f32[512, 4] each, 8,192 B) stay in flash and a
    token reads one row of each (16 B); every other byte in flash is a matrix or vector read whole."""
    ckpt = shared_path("models/stories260K/stories260K.bin")
    rep = compile_model(CompileOptions(ckpt, "rp2350-arm", "q8", tmp_path / "o", kv_cache="int8", weights_sram="auto" if sram else "off"))
    cfg = rep["config"]
    table = cfg["seq_len"] * cfg["head_dim"] // 2 * 4
    in_sram = rep.get("weights_sram_bytes") or 0
    read = rep["weights_read_per_step"]
    assert read["sram"] == in_sram
    assert read["flash"] == rep["weights_bytes"] - in_sram - 2 * table + 2 * (cfg["head_dim"] // 2 * 4)
    assert read["flash"] < rep["weights_bytes"] - in_sram
