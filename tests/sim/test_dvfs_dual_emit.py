"""Dual-ISA scheduling (sim/dual.py) against brute force, and the slmc_set_opp calls of an emitted
schedule (codegen/pico.py) against the schedule."""

from __future__ import annotations

import json
import random

import pytest

from slmc.codegen.pico import BOOT_OPP, OppStep, expected_log, opp_calls
from slmc.errors import SlmcError
from slmc.frontend.build import build_step_graph
from slmc.frontend.random_model import SHAPES, random_decoder
from slmc.sim.dual import DualPowerModel, dual_groups, split_rows
from slmc.sim.dvfs import Group, brute_force, build_groups, cost_matrices, group_name, solve


def _small_dual() -> DualPowerModel:
    p = json.loads(json.dumps(DualPowerModel().p))
    p["clocks"]["plls_mhz"] = {"150": [1, 2]}
    return DualPowerModel(p)


def test_split_rows_finish_together():
    share, t = split_rows(300.0, 100.0)  # the M33 three times slower: a quarter of the rows
    assert share == pytest.approx(0.25)
    assert t == pytest.approx(300 * 0.25) == pytest.approx(100 * 0.75)
    assert split_rows(50.0, 50.0) == (0.5, 25.0)


def test_dual_switch_is_a_handoff_not_a_reboot():
    pm = DualPowerModel()
    a, r, s = (o for o in pm.table() if o.v == 1.10 and o.mhz == 150)
    assert {a.isa, r.isa, s.isa} == {"arm", "riscv", "split"}
    t, e = pm.switch_cost(a, r)
    assert t == pytest.approx(pm.p["dual"]["handoff_s"]) and e > 0
    assert t < pm.p["switching"]["isa_change_s"] / 100
    # two cores split: same time formula, two cores' dynamic power
    t1, e1, _, _ = pm.run_cost(1e5, 0.0, a)
    t2, e2, _, _ = pm.run_cost(1e5, 0.0, s)
    assert t1 == t2 and e2 == pytest.approx(pm.active_w(1.10, 150, cores=2) * t2) and e2 > e1


def _profiles(rng: random.Random):
    # (name, op, layer, role) as report.json lists a decoder's operators
    ops = [("x", "embedding_q8", None, "embed"), ("layers.0.attn_norm_out", "rmsnorm", 0, "attn_norm"),
           ("layers.0.wq_out", "linear_q8", 0, "q"), ("layers.0.attn_out", "attention", 0, "attention"),
           ("layers.0.w1_out", "linear_q8", 0, "gate"), ("layers.0.w2_out", "linear_q8", 0, "down"),
           ("tok_embeddings_out", "linear_q8", None, "classifier")]
    prof = {}
    for isa in ("arm", "riscv"):
        prof[isa] = dict(profile=dict(ops=[dict(name=n, estimated_cycles=rng.uniform(1e3, 1e5),
                                               instructions=rng.uniform(1e3, 1e5)) for n, *_ in ops],
                                      prologue_instructions_per_token=0, estimated_cycles_per_token=None),
                         report=dict(config=dict(dim=64, hidden_dim=172, n_heads=8),
                                     ops=[dict(name=n, op=o, macs=64, layer=i, role=r) for n, o, i, r in ops]))
    return prof


@pytest.mark.parametrize("seed", range(3))
def test_dual_groups_and_solve_match_brute_force(seed):
    rng = random.Random(seed)
    prof = _profiles(rng)
    groups = build_groups(prof)
    assert [g.name for g in groups] == ["embedding", "layer0.attn", "layer0.ffn", "classifier"]
    pm = _small_dual()
    dgroups, shares = dual_groups(groups, prof, sync_cycles=200)
    ops = {isa: prof[isa]["profile"]["ops"] for isa in prof}
    # classifier: one product, its rows split by speed
    ca, cr = ops["arm"][6]["estimated_cycles"], ops["riscv"][6]["estimated_cycles"]
    cls = dgroups[-1]
    assert cls.cycles["split"] == pytest.approx(ca * cr / (ca + cr) + 200)
    assert shares["classifier"] == pytest.approx(cr / (ca + cr))
    # attention group: rmsnorm + attention on the faster core for them, wq split
    att = dgroups[1]
    rest = min(sum(ops[i][k]["estimated_cycles"] for k in (1, 3)) for i in ("arm", "riscv"))
    wa, wr = ops["arm"][2]["estimated_cycles"], ops["riscv"][2]["estimated_cycles"]
    assert att.cycles["split"] == pytest.approx(rest + wa * wr / (wa + wr) + 200)
    # the scheduler's optimum over (V, f, arm|riscv|split) equals brute force with hand-off costs
    opps = pm.table()
    ce, ct, se, st = cost_matrices(dgroups, opps, pm)
    budget = sum(min(ct[g]) for g in range(len(dgroups))) * rng.uniform(1.2, 3)
    res = solve(dgroups, pm, latency_s=budget, isas=("arm", "riscv", "split"))
    p_idle = pm.idle_w()
    bf = [(e + p_idle * (budget - t), t, p) for e, t, p in brute_force(ce, ct, se, st) if t <= budget]
    assert res["energy_per_token_j"] == pytest.approx(min(bf)[0], rel=1e-9)


def test_opp_calls_follow_the_groups():
    from dataclasses import replace

    cfg = replace(SHAPES["stories260K"], n_layers=2)
    graph = build_step_graph(random_decoder(cfg, seed=1), 1, "q8")
    order = []
    cur = None
    for n in graph.nodes:
        g = group_name(n.layer, n.role.value if n.role else None, cur)
        if g != cur:
            order.append((g, n.name))
            cur = g
    groups = [g for g, _ in order]
    assert groups == ["embedding", "layer0.attn", "layer0.ffn", "layer1.attn", "layer1.ffn", "classifier"]
    pts = [(1100, 150000), (1050, 75000), (1050, 75000), (1150, 150000), (1100, 150000), (1100, 150000)]
    sched = tuple(OppStep(g, mv, khz) for g, (mv, khz) in zip(groups, pts))
    calls = opp_calls(graph, sched)
    first = dict(order)
    # the first group always (a token starts there), then wherever the point changes
    assert list(calls) == [first[g] for g in ("embedding", "layer0.attn", "layer1.attn", "layer1.ffn")]
    assert calls[first["layer1.attn"]].startswith("slmc_set_opp(1150, 150000);")
    # the HAL logs transitions only: boot point first (no-op), then 4 per token
    log = expected_log(sched, 3)
    assert log[0] == (1050, 75000) and BOOT_OPP == (1100, 150000)
    # per token three transitions: the embedding's point is the boot point and layer1.ffn's
    assert len(log) == 3 * 3 and log[-1] == (1100, 150000)
    with pytest.raises(SlmcError, match="no point for the operators of 'layer1.ffn'"):
        opp_calls(graph, sched[:4])


def test_dvfs_cli_rejects_emit_with_two_isas(tmp_path):
    from typer.testing import CliRunner

    from slmc.cli import app

    r = CliRunner().invoke(app, ["dvfs", str(tmp_path / "m.bin"), "--emit", str(tmp_path / "o")])
    assert r.exit_code == 2 and "--isa arm" in r.output
    r = CliRunner().invoke(app, ["dvfs", str(tmp_path / "m.bin"), "--isa", "x86"])
    assert r.exit_code == 2 and "unknown --isa" in r.output


def test_group_without_products_splits_nothing():
    g = Group("g", {"arm": 1.0, "riscv": 2.0}, {"arm": 1.0, "riscv": 2.0}, 0.0)
    assert dual_groups([g], {"arm": {"report": {"ops": []}, "profile": {"ops": []}},
                             "riscv": {"profile": {"ops": []}}}, 100)[0][0].cycles["split"] == 1.0
