"""`slmc dvfs` end to end: argument errors (fast) and stories260K q8 on both ISAs (slow: emulators)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from slmc.cli import app
from slmc.codegen.pico import expected_log, schedule_steps
from slmc.sim.power import PowerModel


def test_dvfs_rejects_two_budgets(tmp_path):
    r = CliRunner().invoke(app, ["dvfs", str(tmp_path / "m.bin"), "--latency-ms", "10", "--energy-uj", "5"])
    assert r.exit_code == 2 and "both given" in r.output


def test_dvfs_rejects_other_targets(tmp_path):
    r = CliRunner().invoke(app, ["dvfs", str(tmp_path / "m.bin"), "-t", "cortex-m33"])
    assert r.exit_code == 2 and "rp2350" in r.output


@pytest.mark.slow
def test_dvfs_stories260k(shared, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    model = shared("models/stories260K/stories260K.bin")
    png = tmp_path / "front.png"
    r = CliRunner().invoke(app, ["dvfs", str(model), "-t", "rp2350", "-q", "q8", "--json", "--plot", str(png)])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    race, static = res["baselines"]["race_to_idle"], res["baselines"]["best_static"]
    assert res["latency_per_token_s"] <= race["latency_per_token_s"] * (1 + 1e-12)
    assert res["energy_per_token_j"] <= static["energy_per_token_j"] * (1 + 1e-12) <= race["energy_per_token_j"]
    table = {(o.v, o.mhz, o.isa) for o in PowerModel().table()}
    assert all((s["voltage_v"], s["clock_mhz"], s["isa"]) in table for s in res["schedule"])
    assert [s["group"] for s in res["schedule"]][:3] == ["embedding", "layer0.attn", "layer0.ffn"]
    assert png.stat().st_size > 1000
    # with slack, the schedule switches clocks and beats the best single point
    r2 = CliRunner().invoke(app, ["dvfs", str(model), "--latency-ms", "20", "--json"])  # cached profiles
    res2 = json.loads(r2.stdout)
    assert res2["transitions"] and res2["latency_per_token_s"] <= 0.020
    assert res2["energy_per_token_j"] < res2["baselines"]["best_static"]["energy_per_token_j"]

    # dual-ISA mode: arm, riscv or split rows per group, hand-offs instead of reboots; a superset of
    # the single-core choices, so never worse at the same budget
    r4 = CliRunner().invoke(app, ["dvfs", str(model), "--latency-ms", "20", "--isa", "dual", "--json"])
    assert r4.exit_code == 0, r4.output
    dual = json.loads(r4.stdout)
    assert dual["energy_per_token_j"] <= res2["energy_per_token_j"] * (1 + 1e-12)
    assert all(0 < s["arm_row_share"] < 1 for s in dual["schedule"] if s["isa"] == "split")

    # the emitted program makes exactly the schedule's transitions, and they change none of its output
    out = tmp_path / "scheduled"
    r5 = CliRunner().invoke(app, ["dvfs", str(model), "--latency-ms", "20", "--isa", "arm", "--emit", str(out), "--json"])
    assert r5.exit_code == 0, r5.output
    steps = schedule_steps(json.loads(r5.stdout))
    assert len({s.opp for s in steps}) > 1
    assert "set(PICO_PLATFORM rp2350-arm-s)" in (out / "CMakeLists.txt").read_text()
    r6 = CliRunner().invoke(app, ["run", str(out), "--steps", "6", "--json"])
    assert r6.exit_code == 0, r6.output
    run = json.loads(r6.stdout.strip().splitlines()[-1])
    assert run["opp_transitions"] == [list(o) for o in expected_log(steps, run["positions"])]
    plain = tmp_path / "plain"
    assert CliRunner().invoke(app, ["compile", str(model), "-t", "rp2350-arm", "-q", "q8", "-o", str(plain)]).exit_code == 0
    r7 = CliRunner().invoke(app, ["run", str(plain), "--steps", "6", "--json"])
    assert json.loads(r7.stdout.strip().splitlines()[-1])["ids"] == run["ids"]
