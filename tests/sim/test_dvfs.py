"""DVFS scheduler (issue 8): exact DP against brute force, table validity, budgets, baselines."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from slmc.sim.dvfs import Group, brute_force, cost_matrices, pareto_chain, solve
from slmc.sim.power import PowerModel


def _small_pm(unofficial_clocks=False) -> PowerModel:
    pm = PowerModel()
    p = json.loads(json.dumps(pm.p))
    p["clocks"]["plls_mhz"] = {"150": [1, 2], "100": [1]}
    return PowerModel(p)


def _random_groups(rng: random.Random, n: int) -> list[Group]:
    gs = []
    for i in range(n):
        arm = rng.uniform(2e4, 3e5)
        gs.append(Group(f"g{i}", {"arm": arm, "riscv": arm * rng.uniform(0.5, 3.0)}, {"arm": arm, "riscv": arm},
                        rng.choice([0.0, rng.uniform(1e3, 6e4)])))
    return gs


def _points(pm, unofficial=False):
    return pm.table(unofficial)


@pytest.mark.parametrize("seed", range(12))
def test_dp_equals_brute_force_random_costs(seed):
    rng = np.random.default_rng(seed)
    G, P = rng.integers(3, 5), rng.integers(2, 5)
    ce, ct = rng.uniform(1, 10, (G, P)), rng.uniform(1, 10, (G, P))
    se, st = rng.uniform(0, 3, (P, P)), rng.uniform(0, 3, (P, P))
    np.fill_diagonal(se, 0)
    np.fill_diagonal(st, 0)
    for cyclic in (True, False):
        bf = brute_force(ce, ct, se, st, cyclic)
        front = pareto_chain(ce, ct, se, st, cyclic)
        for budget in np.quantile([t for _, t, _ in bf], [0.05, 0.3, 0.6, 1.0]):
            ok = [x for x in bf if x[1] <= budget]
            e_bf, _, path_bf = min(ok, key=lambda x: x[0])
            dp = [x for x in front if x[1] <= budget]
            e_dp, _, path_dp = min(dp, key=lambda x: x[0])
            assert e_dp == pytest.approx(e_bf, rel=1e-12)
            assert path_dp == path_bf
            pruned = pareto_chain(ce, ct, se, st, cyclic, t_max=budget)
            assert min(x[0] for x in pruned) == pytest.approx(e_bf, rel=1e-12)
        # the front holds exactly the brute force's non-dominated (e, t) pairs
        nd = sorted((e, t) for e, t, _ in bf if not any(e2 <= e and t2 <= t and (e2 < e or t2 < t) for e2, t2, _ in bf))
        got = sorted((e, t) for e, t, _ in front)
        assert len(got) == len(nd)
        assert np.allclose(np.array(got), np.array(nd), rtol=1e-12, atol=0)


@pytest.mark.parametrize("seed", range(6))
def test_solve_matches_brute_force_with_real_switching_costs(seed):
    rng = random.Random(seed)
    pm = _small_pm()
    groups = _random_groups(rng, rng.choice([3, 4]))
    opps = pm.table(False)
    ce, ct, se, st = cost_matrices(groups, opps, pm)
    # energy under a latency budget, idle at idle power for the rest of it
    p_idle = pm.idle_w()
    fastest = min(t for _, t, _ in pareto_chain(ce, ct, se, st))
    budget = fastest * rng.uniform(1.0, 3.0)
    res = solve(groups, pm, latency_s=budget)
    bf = [(e + p_idle * (budget - t), t, path) for e, t, path in brute_force(ce, ct, se, st) if t <= budget]
    e_bf, t_bf, path_bf = min(bf, key=lambda x: x[0])
    assert res["energy_per_token_j"] == pytest.approx(e_bf, rel=1e-9)
    assert res["latency_per_token_s"] <= budget * (1 + 1e-12)
    chosen = [(s["voltage_v"], s["clock_mhz"], s["isa"]) for s in res["schedule"]]
    assert chosen == [(opps[p].v, opps[p].mhz, opps[p].isa) for p in path_bf]
    # transitions costed: schedule energy = sum of groups + switches + idle
    e_sum = sum(s["energy_j"] for s in res["schedule"]) + sum(t["energy_j"] for t in res["transitions"])
    t_sum = sum(s["seconds"] for s in res["schedule"]) + sum(t["seconds"] for t in res["transitions"])
    assert t_sum == pytest.approx(res["latency_per_token_s"], rel=1e-9)
    assert e_sum + p_idle * (budget - t_sum) == pytest.approx(res["energy_per_token_j"], rel=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_energy_budget_minimises_latency(seed):
    rng = random.Random(100 + seed)
    pm = _small_pm()
    groups = _random_groups(rng, 3)
    opps = pm.table(False)
    ce, ct, se, st = cost_matrices(groups, opps, pm)
    bf = brute_force(ce, ct, se, st)
    budget = float(np.quantile([e for e, _, _ in bf], 0.4))
    res = solve(groups, pm, energy_j=budget)
    t_bf = min(t for e, t, _ in bf if e <= budget)
    assert res["latency_per_token_s"] == pytest.approx(t_bf, rel=1e-9)
    assert res["energy_per_token_j"] <= budget * (1 + 1e-12)


@pytest.mark.parametrize("unofficial", [False, True])
def test_points_in_table_and_baselines(unofficial):
    pm = _small_pm()
    groups = _random_groups(random.Random(7), 4)
    res = solve(groups, pm, unofficial=unofficial)
    table = {(o.v, o.mhz, o.isa) for o in pm.table(unofficial)}
    for s in res["schedule"]:
        assert (s["voltage_v"], s["clock_mhz"], s["isa"]) in table
        assert s["clock_mhz"] <= pm.fmax_mhz(s["voltage_v"]) + 1e-9
        if not unofficial:
            assert 1.05 <= s["voltage_v"] <= 1.16 and s["official"]
    race, static = res["baselines"]["race_to_idle"], res["baselines"]["best_static"]
    # race to idle: 150 MHz, 1.10 V, the faster ISA; by default the budget is its latency
    assert race["point"]["clock_mhz"] == 150 and race["point"]["voltage_v"] == 1.10
    assert res["budget"]["latency_s"] == pytest.approx(race["latency_per_token_s"])
    faster = min(("arm", "riscv"), key=lambda i: sum(g.cycles[i] for g in groups))
    assert race["point"]["isa"] == faster
    # best static: least energy of any single point meeting the budget; the DP is never worse
    b = res["budget"]["latency_s"]
    p_idle = pm.idle_w()
    stat = [x["energy_per_token_j"] + p_idle * (b - x["latency_per_token_s"]) for x in res["static_points"]
            if x["latency_per_token_s"] <= b * (1 + 1e-12)]
    assert static["energy_per_token_j"] == pytest.approx(min(stat))
    assert res["energy_per_token_j"] <= static["energy_per_token_j"] * (1 + 1e-12)
    assert static["energy_per_token_j"] <= race["energy_per_token_j"] * (1 + 1e-12)


def test_power_model_facts():
    pm = PowerModel()
    # the datasheet fit at 1.1 V, before the regulator
    assert pm.active_w(1.10, 150) * pm.eff == pytest.approx((2.98 + 0.143 * 150) * 1e-3 * 1.10)
    assert pm.active_w(1.10, 25) * pm.eff / 1.10 * 1e3 == pytest.approx(6.555, abs=0.01)
    vs = pm.voltages()
    assert vs[0] == 0.55 and vs[-1] == 1.30 and len(vs) == 16
    assert {o.v for o in pm.table()} == {1.05, 1.10, 1.15}
    assert all(not o.official for o in pm.table(True) if o.v < 1.05 or o.v > 1.16)
    assert pm.fmax_mhz(1.10) == 150 and pm.fmax_mhz(0.9) < 150 < pm.fmax_mhz(1.3)
    # flash: 37.5 MB/s at 150 MHz (CLKDIV 2) and at 75 MHz (CLKDIV 1), half that at 37.5 MHz
    assert pm.flash_bytes_per_s(150) == pytest.approx(37.5e6)
    assert pm.flash_bytes_per_s(75) == pytest.approx(37.5e6)
    assert pm.flash_bytes_per_s(37.5) == pytest.approx(18.75e6)
    a, b = [o for o in pm.table() if o.isa == "arm" and o.mhz == 150 and o.v in (1.05, 1.15)]
    assert pm.switch_cost(a, a) == (0.0, 0.0)
    assert pm.switch_cost(a, b)[0] == pytest.approx(1e-3)   # raising waits 1 ms
    assert pm.switch_cost(b, a)[0] == pytest.approx(0.0)
    r = next(o for o in pm.table() if o.isa == "riscv" and o.mhz == 150 and o.v == 1.05)
    assert pm.switch_cost(a, r)[0] == pytest.approx(5e-3)   # ISA change = reboot
