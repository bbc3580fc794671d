"""Memory levels as target data, the --mem override, multi-level placement and its infeasibility
explanations (issue 5, steps 1 and 3)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import shared_path
from slmc.driver import CompileOptions, compile_model
from slmc.errors import SlmcError
from slmc.targets import get_target
from slmc.targets.levels import levels_of, parse_mem, parse_size, with_mem

SLMC = [sys.executable, "-m", "slmc.cli"]
KiB, MiB = 1024, 1024 * 1024


def test_builtin_hierarchies():
    sir = levels_of(get_target("siracusa-like"))
    assert [(lv.name, lv.size) for lv in sir] == [("L1", 256 * KiB), ("L2", 2 * MiB), ("L3", 16 * MiB)]
    assert [lv.dma for lv in sir] == [False, True, True]
    assert sir[0].bytes_per_cycle > sir[1].bytes_per_cycle > sir[2].bytes_per_cycle
    for name in ("rp2350-arm", "rp2350-riscv"):
        sram, flash = levels_of(get_target(name))
        assert (sram.name, sram.size, flash.name, flash.dma) == ("SRAM", 520 * 1000 + 512 + 8 * 16, "FLASH", False) \
            or (sram.size == 8 * 64 * KiB + 8 * KiB and flash.name == "FLASH" and not flash.dma)
    (host,) = levels_of(get_target("host"))
    assert host.size == 0  # one unbounded level


@pytest.mark.parametrize("text,n", [("64KiB", 65536), ("64kib", 65536), ("1MiB", MiB), ("2MB", 2_000_000),
                                    ("4096", 4096), ("16K", 16384), ("1.5KiB", 1536)])
def test_parse_size(text, n):
    assert parse_size(text) == n


@pytest.mark.parametrize("spec,msg", [("L1=abc", "not a memory size"), ("L1=0", "positive"), ("L1", "LEVEL=SIZE"),
                                      ("L1=1KiB,l1=2KiB", "twice"), ("", "empty"), ("L1=1.3", "whole number")])
def test_parse_mem_rejects(spec, msg):
    with pytest.raises(SlmcError, match=msg):
        parse_mem(spec)


def test_with_mem_resizes_levels_and_the_linker_region():
    t = with_mem(get_target("siracusa-like"), "L1=64KiB,l2=1MiB")
    assert [lv.size for lv in t.levels] == [64 * KiB, MiB, 16 * MiB]
    assert t.sram.size == MiB  # L2 is the emulator's SRAM region: the fit check sees the same size
    assert get_target("siracusa-like").levels[0].size == 256 * KiB  # the built-in target is untouched
    assert with_mem(get_target("host"), None) is get_target("host")
    with pytest.raises(SlmcError, match="no memory level 'L4'.*L1, L2, L3"):
        with_mem(get_target("siracusa-like"), "L4=1MiB")
    with pytest.raises(SlmcError, match="larger than the slower L2"):
        with_mem(get_target("siracusa-like"), "L1=4MiB")
    with pytest.raises(SlmcError, match="no memory level"):
        with_mem(get_target("host"), "L1=4KiB")


def test_cli_mem_errors_are_one_line_exit_2(tmp_path):
    model = shared_path("models/stories260K/stories260K.bin")
    for mem in ("L1=lots", "L9=1KiB", "L1=1KiB"):
        r = subprocess.run([*SLMC, "compile", str(model), "-t", "siracusa-like", "--mem", mem, "-o", str(tmp_path / "o")],
                           capture_output=True, text=True)
        assert r.returncode == 2, r.stderr
        assert r.stderr.strip().startswith("error:") and "Traceback" not in r.stderr
        assert not (tmp_path / "o").exists()
    r = subprocess.run([*SLMC, "compile", str(model), "-t", "siracusa-like", "-m", "prefill", "-o", str(tmp_path / "o")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "--seq" in r.stderr


def test_cli_targets_lists_levels():
    r = subprocess.run([*SLMC, "targets"], capture_output=True, text=True, check=True)
    assert "memory levels" in r.stdout
    for word in ("L1", "L2", "L3", "SRAM", "FLASH", "262,144", "unbounded"):
        assert word in r.stdout


def _compile(tmp_path: Path, target: str, **kw) -> dict:
    return compile_model(CompileOptions(shared_path("models/stories260K/stories260K.bin"), target, "fp32",
                                        tmp_path / "o", **kw))


def test_decode_default_has_no_levels_and_no_tiles(tmp_path):
    rep = _compile(tmp_path, "siracusa-like")
    assert "levels" not in rep
    c = (tmp_path / "o" / "model.c").read_text()
    assert "slmc_l1" not in c and "slmc_dma" not in c


@pytest.mark.parametrize("mode,seq", [("decode", None), ("prefill", 16), ("prefill", 64)])
def test_levels_plan_fits_and_reaches_the_bound(tmp_path, mode, seq):
    rep = _compile(tmp_path, "siracusa-like", prefill_chunk=seq, mem="L1=16KiB", mode=mode)
    lv = rep["levels"]
    assert [p["level"] for p in lv["placement"]] == ["L1", "L2", "L3"]
    for p in lv["placement"]:
        assert p["lower_bound"] <= p["used"] <= p["capacity"]
        assert p["optimal"] and p["gap_bytes"] == 0
    l1 = lv["placement"][0]["used"]
    for t in lv["tiles"]:
        assert all(b["offset"] + b["bytes"] <= l1 for b in t["l1_buffers"])
        assert t["bytes_moved"] >= t["compulsory_bytes"]
    # decode: every weight, input and output moved exactly once (the compulsory traffic)
    assert sum(lv["bytes_moved"]["decode"].values()) == lv["compulsory_bytes"]["decode"]
    assert rep["prefill_chunk"] == (seq or 0)
    json.dumps(rep.to_json(console=True))  # the returned report, console-only fields included, is JSON


def test_l1_infeasible_names_operator_tensor_and_smallest_size(tmp_path):
    with pytest.raises(SlmcError) as e:
        _compile(tmp_path, "siracusa-like", mem="L1=512")
    msg = str(e.value)
    # the matrix product needing the most L1: one row of W2 (172 floats), one row of x, one output
    assert "decode/layers.0.w2_out (linear)" in msg and "layers.0.w2 f32[64,172]" in msg and "L1 has 512 B" in msg
    need = int(msg.split("smallest L1 that works: ")[1].split(" B")[0].replace(",", ""))
    rep = _compile(tmp_path, "siracusa-like", mem=f"L1={need}")     # the size it names works ...
    # ... leaving the row-wise operators whose one row does not fit (SwiGLU, 3 x 688 B) to read L2 in place
    assert "decode/layers.0.ffn_act" in rep["levels"]["in_place"]
    assert all(t["op"] != "swiglu" for t in rep["levels"]["tiles"])
    with pytest.raises(SlmcError, match="no tiling"):                 # ... and one alignment step less does not
        _compile(tmp_path, "siracusa-like", mem=f"L1={need - 16}")


def test_l2_infeasible_names_operator_tensor_levels_and_smallest_size(tmp_path):
    with pytest.raises(SlmcError) as e:
        _compile(tmp_path, "siracusa-like", mem="L1=64KiB,L2=300KiB", context=512, kv_cache="fp32")
    msg = str(e.value)
    assert "(attention)" in msg and "key_cache_" in msg
    for part in ("L1 needs", "L2 needs", "L3 needs", "of 307,200 B"):
        assert part in msg
    need = int(msg.split("smallest L2 that works: ")[1].split(" B")[0].replace(",", ""))
    rep = _compile(tmp_path, "siracusa-like", mem=f"L1=64KiB,L2={need}", context=512, kv_cache="fp32")
    assert rep["levels"]["placement"][1]["used"] == need


def test_two_level_target_places_arena_in_sram_and_weights_in_flash(tmp_path):
    rep = _compile(tmp_path, "rp2350-arm", mem="SRAM=520KiB")
    lv = rep["levels"]
    assert [p["level"] for p in lv["placement"]] == ["SRAM", "FLASH"]
    assert lv["tiles"] == [] and lv["l1_bytes"] == 0
    # the levels account for what the linker regions hold: the same totals as the fit check
    assert lv["placement"][0]["used"] == rep["memory"]["sram"]["used"]
    assert lv["placement"][1]["used"] == rep["memory"]["flash"]["used"]


def test_derived_target_keeps_hierarchy_with_another_compiler():
    t = dataclasses.replace(get_target("cortex-m33"), levels=get_target("siracusa-like").levels)
    assert with_mem(t, "L1=8KiB").levels[0].size == 8 * KiB


def test_report_draws_levels_and_tabulates_tiles(tmp_path):
    from slmc.report import write_report
    from slmc.report.levels_table import tile_rows

    rep = _compile(tmp_path, "siracusa-like", prefill_chunk=16, mem="L1=16KiB", mode="prefill")
    files = write_report(tmp_path / "o")
    assert files.levels is not None and files.levels.stat().st_size > 10_000
    page = files.html.read_text()
    rows = tile_rows(rep)
    assert len(rows) == 1 + len(rep["levels"]["tiles"])
    assert sum(1 for t in rep["levels"]["tiles"] if t["op"] == "linear") == 72
    assert "Memory levels and tiles" in page and "levels.png" in page
    for t in rep["levels"]["tiles"]:
        assert t["node"] in page
    # a build without levels gets no picture of them
    _compile(tmp_path, "host")
    assert write_report(tmp_path / "o").levels is None


def test_weights_level_infeasible_names_the_weights_and_smallest_size(tmp_path):
    with pytest.raises(SlmcError) as e:
        _compile(tmp_path, "siracusa-like", mem="L1=64KiB,L2=1MiB,L3=1MiB")
    msg = str(e.value)
    assert "weights (1,056,512 B) do not fit" in msg and "L3 needs 1,056,512 B of 1,048,576 B" in msg
    assert "smallest L3 that works: 1,056,512 B" in msg


def test_mem_and_prefill_refuse_what_they_do_not_cover(tmp_path):
    with pytest.raises(SlmcError, match="partitioned"):
        _compile(tmp_path, "siracusa-like", mem="L1=64KiB", chips=2)
    with pytest.raises(SlmcError, match="unknown mode"):
        _compile(tmp_path, "siracusa-like", mode="train")
    with pytest.raises(SlmcError, match="2 or more tokens"):
        _compile(tmp_path, "siracusa-like", mode="prefill", prefill_chunk=1)
