"""System simulator (issue 7, item 4): partition description, link bytes, super-linear speedup from
L2 residency, uneven splits, consistency."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from slmc.errors import SlmcError
from slmc.frontend.random_model import SHAPES
from slmc.sim.partition_model import partition, reduction_tree
from slmc.sim.system import resolve_model, simulate, simulate_one
from slmc.targets import TARGETS
from slmc.targets.siracusa import MIPI_LINK, SIRACUSA_CHIP

TL = SHAPES["tinyllama42M"]
COUNTS = [1, 2, 3, 4, 5, 8, 12, 16, 24, 32, 48, 64]


def _pts(cfg=TL, chips=COUNTS, **kw):
    return {p["n_chips"]: p for p in simulate(cfg, chips, **kw)["points"]}


def test_target_is_registered_with_its_memories():
    t = TARGETS["siracusa-like"]
    assert t.sram_bytes == 2 * 1024 * 1024 and t.clock_hz == int(SIRACUSA_CHIP.clock_hz)
    assert SIRACUSA_CHIP.cores == 8 and SIRACUSA_CHIP.l1_bytes == 256 * 1024


def test_one_chip_is_the_baseline():
    p = _pts(chips=[1])[1]
    assert p["speedup"] == 1.0 and p["edp_gain"] == 1.0
    assert p["bytes_per_link_per_token"] == 0 and p["link_bytes_total_per_token"] == 0
    assert p["time_breakdown_s"]["link"] == 0


@pytest.mark.parametrize("mode", ["decode", "prefill"])
@pytest.mark.parametrize("fanin", [2, 3, 4, 8])
def test_bytes_per_link_match_the_hand_calculation(mode, fanin):
    # every non-root chip sends its partial sum (dim int8 values) to its parent at each of the 2 syncs
    # of every block, and receives the normed vector back: 2 x dim x 1 B per block, per token
    hand_up = TL.n_layers * 2 * TL.dim * 1
    for n, p in _pts(mode=mode, fanin=fanin, classifier="none").items():
        if n == 1:
            continue
        assert p["bytes_per_link_per_token"] == hand_up
        assert p["bytes_down_per_link_per_token"] == hand_up  # first broadcast + 2L-1 (last one not needed)
        assert p["link_bytes_total_per_token"] == pytest.approx((n - 1) * 2 * hand_up)
    # a split classifier adds one (value, index) pair per token up the tree and the final broadcast down
    split = _pts(chips=[1, 8], fanin=fanin, classifier="split")[8]
    assert split["bytes_per_link_per_token"] == hand_up + 8
    assert split["bytes_down_per_link_per_token"] == hand_up + TL.dim



@pytest.mark.parametrize("l2_mib", [2, 3.5, 6])
def test_superlinear_speedup_exactly_when_the_weight_share_fits_l2(l2_mib):
    chip = dataclasses.replace(SIRACUSA_CHIP, l2_bytes=int(l2_mib * 1024 * 1024))
    one = simulate_one(TL, 1, chip, MIPI_LINK, classifier="none", context=4)
    assert one.weights_in == "L3" and one.kv_in == "L2"
    seen = False
    for n in COUNTS[1:]:
        p = simulate_one(TL, n, chip, MIPI_LINK, classifier="none", context=4)
        fits = p.max_weight_share_bytes + 2 * TL.n_layers * 64 * 4 <= chip.l2_budget  # weights + KV of one head
        speedup = one.time_per_token_s / p.time_per_token_s
        assert (p.weights_in == "L2") == fits
        assert (speedup > n) == fits, (n, speedup, p.weights_in)
        seen |= fits
    assert seen


def test_no_superlinearity_when_one_chip_already_holds_everything():
    chip = dataclasses.replace(SIRACUSA_CHIP, l2_bytes=64 * 1024 * 1024)
    one = simulate_one(TL, 1, chip, MIPI_LINK, classifier="none")
    assert one.weights_in == "L2"
    for n in COUNTS[1:]:
        assert one.time_per_token_s / simulate_one(TL, n, chip, MIPI_LINK, classifier="none").time_per_token_s <= n


def test_the_crossing_is_at_the_hand_computed_share():
    # int8 blocks of TinyLlama-42M: 8 x (4 x 512^2 + 3 x 512 x 1376) B, plus the root's 17 norm vectors
    share8 = 8 * (4 * 512 * 512 + 3 * 512 * 1376) // 8 + 17 * 512
    p = simulate_one(TL, 8, SIRACUSA_CHIP, MIPI_LINK, classifier="none")
    assert p.max_weight_share_bytes == share8 == 3_170_816
    assert share8 > SIRACUSA_CHIP.l2_budget and p.weights_in == "L3"  # so no super-linear jump at 8 chips


def test_uneven_head_splits_and_kv_duplication_are_reported():
    p3 = partition(TL, 3)
    assert [c.n_heads for c in p3.chips] == [2, 3, 3]
    assert any("heads: 8 over 3 chips, 2 to 3 per chip" in n for n in p3.notes())
    assert any("FFN hidden units: 1376 over 3 chips" in n for n in p3.notes())
    gqa = SHAPES["stories260K"]  # 8 query heads, 4 KV heads
    for n in (1, 2, 3, 4):
        assert partition(gqa, n).kv_duplicates == 0
    assert [c.n_heads for c in partition(gqa, 3).chips] == [2, 2, 4]  # whole KV groups
    p8 = partition(gqa, 8)
    assert p8.kv_duplicates == 4 and any("KV head copies duplicated" in n for n in p8.notes())
    p16 = partition(TL, 16)
    assert p16.chips_without_heads == 8 and any("own no attention head" in n for n in p16.notes())
    pts = _pts(chips=[1, 3, 16])
    assert any("2 to 3 per chip" in n for n in pts[3]["partition_notes"])


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7, 8, 13, 64])
def test_every_weight_is_owned_exactly_once(n):
    for cfg in (TL, SHAPES["stories260K"]):
        part = partition(cfg, n)
        heads = [h for c in part.chips for h in range(*c.heads)]
        assert sorted(heads) == list(range(cfg.n_heads))
        assert sum(c.n_ffn for c in part.chips) == cfg.hidden_dim
        assert sum(c.n_vocab for c in part.chips) == cfg.vocab_size
        assert max(c.n_ffn for c in part.chips) - min(c.n_ffn for c in part.chips) <= 1


def test_reduction_tree_levels():
    assert reduction_tree(1, 2) == ()
    assert reduction_tree(8, 2) == ((1, 1, 1, 1), (1, 1), (1,))
    assert reduction_tree(16, 4) == ((3, 3, 3, 3), (3,))
    assert reduction_tree(5, 2) == ((1, 1, 0), (1, 0), (1,))
    assert partition(TL, 64, fanin=8).depth == 2 and partition(TL, 64, fanin=2).depth == 6
    with pytest.raises(SlmcError):
        reduction_tree(4, 1)


def test_consistency():
    for mode in ("decode", "prefill"):
        for cls in ("split", "root", "none"):
            pts = _pts(mode=mode, classifier=cls)
            for n, p in pts.items():
                assert p["time_per_token_s"] > 0 and p["energy_per_token_j"] > 0
                assert sum(p["time_breakdown_s"].values()) == pytest.approx(p["time_per_token_s"])
                assert p["edp_js"] == pytest.approx(p["time_per_token_s"] * p["energy_per_token_j"])
                assert p["speedup"] == pytest.approx(pts[1]["time_per_token_s"] / p["time_per_token_s"])
            # weights streamed from L3: doubling the chips (nearly) halves the time
            for a, b in ((1, 2), (2, 4), (4, 8)):
                assert pts[b]["time_per_token_s"] < pts[a]["time_per_token_s"]
    # a larger fan-in means fewer levels; latency per level is what it trades against
    d2 = simulate_one(TL, 64, SIRACUSA_CHIP, MIPI_LINK, fanin=2).time_breakdown_s["link"]
    d64 = simulate_one(TL, 64, SIRACUSA_CHIP, MIPI_LINK, fanin=64).time_breakdown_s["link"]
    assert d2 < d64  # a flat reduction over 63 children serialises at the root
    # more link latency never makes a point faster
    slow = dataclasses.replace(MIPI_LINK, latency_s=1e-5)
    assert simulate_one(TL, 8, SIRACUSA_CHIP, slow).time_per_token_s > simulate_one(TL, 8, SIRACUSA_CHIP, MIPI_LINK).time_per_token_s


def test_many_head_variant_and_errors():
    cfg = resolve_model("tinyllama42M", 64)
    assert (cfg.n_heads, cfg.n_kv_heads, cfg.head_dim, cfg.dim) == (64, 64, 8, 512)
    p = _pts(cfg, [1, 64])[64]
    assert p["weights_in"] == "L2" and p["speedup"] > 64
    with pytest.raises(SlmcError):
        resolve_model("tinyllama42M", 48)
    with pytest.raises(SlmcError):
        resolve_model("no-such-model")
    with pytest.raises(SlmcError):
        simulate(TL, [1, 2], target="rp2350-arm")
    with pytest.raises(SlmcError):
        simulate(TL, [0])
    with pytest.raises(SlmcError):
        simulate(TL, [1], mode="train")


def test_model_file_is_read_for_its_shape(shared):
    cfg = resolve_model(str(shared("models/stories260K/stories260K.bin")))
    assert (cfg.dim, cfg.n_heads, cfg.n_kv_heads) == (64, 8, 4)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "slmc.cli", "simulate", *args], capture_output=True, text=True)


def test_cli_json_table_and_plot(tmp_path):
    r = _cli("tinyllama42M", "-t", "siracusa-like", "--chips", "1,2,8", "--json")
    assert r.returncode == 0, r.stderr
    pts = json.loads(r.stdout)["points"]
    assert [p["n_chips"] for p in pts] == [1, 2, 8]
    for p in pts:
        assert {"time_per_token_s", "energy_per_token_j", "speedup", "bytes_per_link_per_token"} <= p.keys()
    png = tmp_path / "s.png"
    r = _cli("tinyllama42M", "--chips", "1,4,64", "--mode", "prefill", "--reduce-fanin", "4", "--plot", str(png))
    assert r.returncode == 0, r.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "speedup" in r.stdout and "dominates" in r.stdout
    r = _cli("tinyllama42M", "--chips", "1,x")
    assert r.returncode == 2 and "chip counts" in r.stderr
