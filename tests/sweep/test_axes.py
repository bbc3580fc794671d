"""The sweep axes that are not plain compile options: `batch`, `opp` and `dvfs_latency_ms` (sweep/power.py),
each point run in-process (sweep/point.py's run_point, as a Ray worker runs it) and checked against
running the same model without the axis: the ids never change, a batch of B sequences shares one weight
read per step among B tokens, an operating point at half the clock doubles a flash-free
latency, and a DVFS schedule meets its budget and spends no more than racing to idle at 150 MHz."""

from __future__ import annotations

import json

import pytest

from conftest import run_slmc, shared_path
from slmc.errors import SlmcError
from slmc.sim.power import PowerModel
from slmc.sweep.point import load_blob, run_point
from slmc.sweep.spec import Point, parse_spec, quick_axes

STEPS = 4


@pytest.fixture(scope="module")
def model():
    return shared_path("models/stories260K/stories260K.bin")


def _point(model, target, **axes):
    from slmc.sweep.spec import AXES

    return Point(str(model), target, STEPS, tuple((a, axes[a]) for a in AXES if a in axes))


def _run(model, target, **axes):
    res = run_point(_point(model, target, **axes), load_blob(str(model)), 600)
    assert res.status == "ok", res.status
    return res.figures


@pytest.mark.parametrize("data, needle", [
    (dict(grid=dict(opp=["150MHz"])), "is not MHz@V"),
    (dict(grid=dict(opp=["400MHz@1.10V"])), "not an RP2350 operating point"),
    (dict(grid=dict(opp=["150MHz@0.70V"])), "not an RP2350 operating point"),
    (dict(grid=dict(opp=[150])), "is not a string"),
    (dict(grid=dict(dvfs_latency_ms=[0])), "dvfs_latency_ms = 0"),
    (dict(grid=dict(dvfs_latency_ms=["fast"])), "dvfs_latency_ms = 'fast'"),
    (dict(grid=dict(batch=[0])), "batch = 0"),
])
def test_bad_axis_values(tmp_path, data, needle):
    m = tmp_path / "m.bin"
    m.write_bytes(b"\0" * 64)
    with pytest.raises(SlmcError) as e:
        parse_spec(dict(models=[str(m)], **data))
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_quick_axes_take_numbers_and_opps():
    assert quick_axes(["dvfs_latency_ms=5,7.5", "opp=150MHz@1.10V"]) == dict(
        dvfs_latency_ms=[5.0, 7.5], opp=["150MHz@1.10V"])


def test_batch_axis_reads_each_weight_once_per_step(model):
    one = _run(model, "cortex-m33", numerics="q8")
    four = _run(model, "cortex-m33", numerics="q8", batch=4)
    assert four["sequences"] == 4 and four["ids"] == one["ids"]
    rep_weights = four["weights_bytes"]
    # four rows per step: each step's weight read is shared by the four sequences' tokens; RoPE's cos and sin
    # tables (f32[512, 4] each, stories260K) are read one row per token row, 4 rows of each a step
    tables, rows_read = 2 * 512 * 4 * 4, 4 * 2 * 4 * 4
    assert four["weight_bytes_per_token"] == pytest.approx((rep_weights - tables + rows_read) / 4)
    assert one["weight_bytes_per_token"] is None  # a single-sequence run does not count it


def test_opp_axis_times_and_prices_the_same_run(model):
    base = _run(model, "cortex-m33", numerics="q8")
    fast = _run(model, "cortex-m33", numerics="q8", opp="150MHz@1.10V")
    slow = _run(model, "cortex-m33", numerics="q8", opp="75MHz@1.10V")
    assert fast["ids"] == slow["ids"] == base["ids"]
    # no flash term on the generic core: the default estimate is 150 MHz at 1.10 V exactly
    assert fast["est_ms_per_token"] == pytest.approx(base["est_ms_per_token"])
    assert fast["est_uj_per_token"] == pytest.approx(base["est_uj_per_token"])
    assert slow["est_ms_per_token"] == pytest.approx(2 * fast["est_ms_per_token"])
    pm = PowerModel()
    ratio = pm.active_w(1.10, 75) * 2 / pm.active_w(1.10, 150)
    assert slow["est_uj_per_token"] == pytest.approx(fast["est_uj_per_token"] * ratio)
    assert (slow["clock_mhz"], slow["voltage_v"]) == (75.0, 1.10)


@pytest.mark.slow
def test_dvfs_axis_meets_its_budget(model, tmp_path):
    r = run_slmc("dvfs", str(model), "-q", "q8", "--isa", "arm", "--steps", str(STEPS), "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    race = json.loads(r.stdout)["baselines"]["race_to_idle"]["latency_per_token_s"] * 1e3
    budget = round(race * 1.5, 3)
    plain = _run(model, "rp2350-arm", numerics="q8")
    fig = _run(model, "rp2350-arm", numerics="q8", dvfs_latency_ms=budget)
    assert fig["ids"] == plain["ids"]
    assert fig["est_ms_per_token"] <= budget * (1 + 1e-9)
    r = run_slmc("dvfs", str(model), "-q", "q8", "--isa", "arm", "--steps", str(STEPS), "--latency-ms", str(budget),
                 "--json")
    cli = json.loads(r.stdout)
    assert fig["est_uj_per_token"] == pytest.approx(cli["energy_per_token_j"] * 1e6)
    assert fig["dvfs_transitions"] == len(cli["transitions"])
    assert fig["est_uj_per_token"] <= cli["baselines"]["race_to_idle"]["energy_per_token_j"] * 1e6 * (1 + 1e-9)
    bad = run_point(_point(model, "cortex-m33", numerics="q8", dvfs_latency_ms=budget), load_blob(str(model)), 600)
    assert "applies to the RP2350 targets" in bad.status
