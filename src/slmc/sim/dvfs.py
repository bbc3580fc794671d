"""Per-group voltage, clock and ISA for one decode step on the RP2350 (issue 8).

1. Profiles: exact instruction counts per operator on both ISAs (Unicorn on the M33, QEMU on RV32),
   turned into cycles by targets/cycles.py, summed into groups (embedding; per layer the attention
   part and the FFN part; final norm + classifier), plus the bytes each group streams from flash.
   The profiles are made by slmc/dvfs_profile.py (it compiles and runs, so it sits above the driver).
2. Costs: sim/power.py (every parameter in rp2350_power.json).
3. Scheduler: exact Pareto-front dynamic programming over the chain of groups, with switching costs
   between consecutive groups and from the last group back to the first (the next token), with
   dominance pruning. Energy under a latency budget B counts idling at idle power for B - latency:
   E_active + P_idle (B - T) = (E_active - P_idle T) + P_idle B, so the DP minimises the additive
   cost E_active - P_idle T and stays exact.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from slmc.errors import SlmcError
from slmc.sim.power import ISAS, OPP, PowerModel

ISA_TARGETS = {"arm": "rp2350-arm", "riscv": "rp2350-riscv"}
FFN_ROLES = ("ffn_norm", "gate", "up", "ffn_act", "down")   # ir/roles.py, as report.json writes them


@dataclass
class Group:
    name: str
    cycles: dict            # isa -> estimated cycles per token
    instructions: dict      # isa -> exact instructions per token
    flash_bytes: float      # bytes streamed from flash per token


# ---------------------------------------------------------------------------------------------
# Pareto-front DP
# ---------------------------------------------------------------------------------------------

def _prune(e: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated (e, t) pairs (both minimised), sorted by t."""
    if len(e) == 0:
        return np.zeros(0, dtype=int)
    order = np.lexsort((e, t))
    es = e[order]
    best = np.minimum.accumulate(es)
    keep = np.ones(len(es), dtype=bool)
    keep[1:] = es[1:] < best[:-1]
    return order[keep]


def pareto_chain(cost_e: np.ndarray, cost_t: np.ndarray, sw_e: np.ndarray, sw_t: np.ndarray,
                 cyclic: bool = True, t_max: float = float("inf")) -> list[tuple[float, float, list[int]]]:
    """Exact Pareto front of (sum e, sum t) over choices of one point per group.

    cost_*[g, p]: cost of group g at point p; sw_*[a, b]: cost of switching from point a to b,
    charged between consecutive groups and, if cyclic, from the last group's point back to the
    first's. t_max prunes partial schedules that cannot finish within it. Returns (e, t, points)."""
    G, P = cost_e.shape
    t_min_rest = np.concatenate([np.cumsum(cost_t.min(axis=1)[::-1])[::-1], [0.0]])  # lower bound on the rest
    starts = range(P) if cyclic else [None]
    finals_e, finals_t, finals_path = [], [], []
    for s in starts:
        # layer 0
        firsts = [s] if s is not None else list(range(P))
        layers = []  # per g: dict p -> (e, t, prev_p, prev_i)
        cur = {}
        for p in firsts:
            if cost_t[0, p] + t_min_rest[1] <= t_max:
                cur[p] = (np.array([cost_e[0, p]]), np.array([cost_t[0, p]]), np.array([-1]), np.array([-1]))
        layers.append(cur)
        for g in range(1, G):
            nxt = {}
            for p in range(P):
                es, ts, qs, iis = [], [], [], []
                for q, (e, t, _, _) in cur.items():
                    es.append(e + sw_e[q, p] + cost_e[g, p])
                    ts.append(t + sw_t[q, p] + cost_t[g, p])
                    qs.append(np.full(len(e), q))
                    iis.append(np.arange(len(e)))
                if not es:
                    continue
                e, t, q, i = (np.concatenate(x) for x in (es, ts, qs, iis))
                ok = t + t_min_rest[g + 1] <= t_max
                e, t, q, i = e[ok], t[ok], q[ok], i[ok]
                k = _prune(e, t)
                if len(k):
                    nxt[p] = (e[k], t[k], q[k], i[k])
            layers.append(nxt)
            cur = nxt
        for p, (e, t, _, _) in cur.items():
            we, wt = (sw_e[p, s], sw_t[p, s]) if s is not None else (0.0, 0.0)
            for j in range(len(e)):
                if t[j] + wt <= t_max:
                    path, pp, jj = [], p, j
                    for g in range(G - 1, -1, -1):
                        path.append(pp)
                        _, _, qq, ii = layers[g][pp]
                        pp, jj = int(qq[jj]), int(ii[jj])
                    finals_e.append(e[j] + we)
                    finals_t.append(t[j] + wt)
                    finals_path.append(path[::-1])
    if not finals_e:
        return []
    fe, ft = np.array(finals_e), np.array(finals_t)
    return [(float(fe[k]), float(ft[k]), finals_path[k]) for k in _prune(fe, ft)]


def brute_force(cost_e, cost_t, sw_e, sw_t, cyclic=True):
    """Every assignment, for the tests: list of (e, t, points)."""
    G, P = cost_e.shape
    out = []
    for path in itertools.product(range(P), repeat=G):
        e = sum(cost_e[g, p] for g, p in enumerate(path))
        t = sum(cost_t[g, p] for g, p in enumerate(path))
        pairs = list(zip(path, path[1:])) + ([(path[-1], path[0])] if cyclic else [])
        e += sum(sw_e[a, b] for a, b in pairs)
        t += sum(sw_t[a, b] for a, b in pairs)
        out.append((e, t, list(path)))
    return out


# ---------------------------------------------------------------------------------------------
# Profiles and groups
# ---------------------------------------------------------------------------------------------

def _flash_bytes(op: dict, cfg: dict, numerics: str) -> float:
    """Bytes of constants an operator reads from flash in one decode step (modelled from shapes)."""
    from slmc.quant.q8 import group_for

    dim, hid, hd = cfg["dim"], cfg["hidden_dim"], cfg.get("head_dim", cfg["dim"] // cfg["n_heads"])
    kind = op["op"]
    if kind.startswith("linear"):
        cols = hid if op.get("role") == "down" else dim
        if kind == "linear_q8":
            return op["macs"] * (1 + 4 / group_for(cols))
        return op["macs"] * (1 if numerics == "int8" else 4)
    if kind.startswith("embedding"):
        return dim * (1 + 4 / group_for(dim)) if kind == "embedding_q8" else dim * 4
    if kind == "rmsnorm":
        return dim * 4
    if kind == "rope":
        return hd * 4  # one row of the cos/sin table
    return 0.0


def group_name(layer: int | None, role: str | None, current: str | None) -> str:
    """An operator's group, by its layer and role (ir/roles.py's value, as report.json writes it): the
    embedding, each layer's attention and FFN halves, the classifier; a residual add belongs to the half
    it closes, a node without a role to the group it sits in."""
    if role == "residual" and current is not None:
        return current
    if layer is not None:
        return f"layer{layer}.{'ffn' if role in FFN_ROLES else 'attn'}"
    if role in ("final_norm", "classifier"):
        return "classifier"
    return current or "embedding"


def build_groups(profiles: dict) -> list[Group]:
    """Groups from both ISAs' profiles (same graph, same operator order)."""
    arm = profiles["arm"]
    rep = arm["report"]
    cfg = rep["config"]
    in_flash = rep.get("memory", {}).get("weights_in", "flash").startswith("flash")
    names: list[str] = []
    cur = None
    for op in rep["ops"]:
        cur = group_name(op.get("layer"), op.get("role"), cur)
        names.append(cur)
    order = list(dict.fromkeys(names))
    groups = {n: Group(n, {i: 0.0 for i in profiles}, {i: 0.0 for i in profiles}, 0.0) for n in order}
    for op, n in zip(rep["ops"], names):
        if in_flash:
            groups[n].flash_bytes += _flash_bytes(op, cfg, rep.get("numerics", "q8")) * (1 - op.get("weights_sram_share", 0.0))
    for isa, pr in profiles.items():
        prof = pr["profile"]
        if len(prof["ops"]) != len(names):
            raise SlmcError("the two ISAs' profiles have different operators", "clear the dvfs cache and rerun")
        ops_cycles = 0.0
        for o, n in zip(prof["ops"], names):
            if o["estimated_cycles"] is None:
                raise SlmcError(f"no cycle estimate for {o['name']} on {isa}", "the cycle model needs the instruction mix")
            groups[n].cycles[isa] += o["estimated_cycles"]
            groups[n].instructions[isa] += o["instructions"]
            ops_cycles += o["estimated_cycles"]
        # model.c's own code before the first kernel: charged to the first group
        groups[order[0]].instructions[isa] += prof["prologue_instructions_per_token"]
        if prof.get("estimated_cycles_per_token"):
            groups[order[0]].cycles[isa] += max(0.0, prof["estimated_cycles_per_token"] - ops_cycles)
    return list(groups.values())


# ---------------------------------------------------------------------------------------------
# Scheduling
# ---------------------------------------------------------------------------------------------

def cost_matrices(groups: list[Group], opps: list[OPP], pm: PowerModel):
    G, P = len(groups), len(opps)
    ce, ct = np.zeros((G, P)), np.zeros((G, P))
    for g, gr in enumerate(groups):
        for p, o in enumerate(opps):
            ct[g, p], ce[g, p], _, _ = pm.run_cost(gr.cycles[o.isa], gr.flash_bytes, o)
    se, st = np.zeros((P, P)), np.zeros((P, P))
    for a, oa in enumerate(opps):
        for b, ob in enumerate(opps):
            st[a, b], se[a, b] = pm.switch_cost(oa, ob)
    return ce, ct, se, st


def _static(ce, ct, p):
    return float(ce[:, p].sum()), float(ct[:, p].sum())


def solve(groups: list[Group], pm: PowerModel, latency_s: float | None = None, energy_j: float | None = None,
          unofficial: bool = False, isas: tuple[str, ...] = ISAS) -> dict:
    opps = pm.table(unofficial, isas)
    ce, ct, se, st = cost_matrices(groups, opps, pm)
    dropped = []
    for isa in isas:  # exact reduction: an ISA beaten on every group at every (voltage, clock) never helps
        other = {(o.v, o.mhz): q for q, o in enumerate(opps) if o.isa != isa}
        mine = [p for p, o in enumerate(opps) if o.isa == isa]
        if len(isas) > 1 and mine and all((o.v, o.mhz) in other for o in (opps[p] for p in mine)) and all(
                (ce[:, other[(opps[p].v, opps[p].mhz)]] <= ce[:, p]).all()
                and (ct[:, other[(opps[p].v, opps[p].mhz)]] <= ct[:, p]).all() for p in mine):
            dropped.append(isa)
            break
    if dropped:
        static_all = [(o, *_static(ce, ct, p)) for p, o in enumerate(opps)]
        keep = [p for p, o in enumerate(opps) if o.isa not in dropped]
        opps = [opps[p] for p in keep]
        ce, ct, se, st = ce[:, keep], ct[:, keep], se[np.ix_(keep, keep)], st[np.ix_(keep, keep)]
    else:
        static_all = None
    p_idle = pm.idle_w()
    # race to idle: 150 MHz, 1.10 V, the faster ISA
    r = pm.p["regulator"]
    cands = [i for i, o in enumerate(opps) if abs(o.v - r["default_v"]) < 1e-9 and o.mhz == pm.p["fmax"]["rated_mhz"]]
    race = min(cands, key=lambda i: _static(ce, ct, i)[1])
    race_e, race_t = _static(ce, ct, race)
    if latency_s is None and energy_j is None:
        latency_s = race_t
    front = pareto_chain(ce, ct, se, st, cyclic=True)  # active energy vs latency
    out: dict = dict(model_kind="MODELLED", operating_points=len(opps), unofficial_points_allowed=unofficial,
                     idle_power_w=p_idle)
    if latency_s is not None:
        best = pareto_chain(ce - p_idle * ct, ct, se - p_idle * st, st, cyclic=True, t_max=latency_s * (1 + 1e-12))
        if not best:
            raise SlmcError(f"no schedule meets {latency_s * 1e3:.3f} ms per token",
                            f"the fastest takes {front[0][1] * 1e3:.3f} ms")
        ex, t, path = min(best, key=lambda x: x[0])
        e_active = ex + p_idle * t
        energy = ex + p_idle * latency_s
        budget = dict(latency_s=latency_s)
    else:
        ok = [f for f in front if f[0] <= energy_j * (1 + 1e-12)]
        if not ok:
            raise SlmcError(f"no schedule spends at most {energy_j * 1e6:.3f} uJ per token",
                            f"the least is {min(f[0] for f in front) * 1e6:.3f} uJ")
        e_active, t, path = min(ok, key=lambda x: x[1])
        energy = e_active
        budget = dict(energy_j=energy_j)

    def at_budget(e_a: float, t_a: float) -> float:
        return e_a + p_idle * max(0.0, latency_s - t_a) if latency_s is not None else e_a

    sched = []
    for g, p in zip(groups, path):
        o = opps[p]
        t_g, e_g, tc, tf = pm.run_cost(g.cycles[o.isa], g.flash_bytes, o)
        sched.append(dict(group=g.name, **o.as_dict(), seconds=t_g, energy_j=e_g, compute_s=tc, flash_s=tf,
                          memory_bound=tf > tc, cycles=g.cycles[o.isa], instructions=g.instructions[o.isa],
                          flash_bytes=g.flash_bytes))
    transitions = []
    for i in range(len(path)):
        a, b = path[i], path[(i + 1) % len(path)]
        if a != b:
            transitions.append(dict(after=groups[i].name, to=opps[b].as_dict(), seconds=float(st[a, b]),
                                    energy_j=float(se[a, b])))
    # best static: one point for every group, least energy at the budget
    statics = []
    for p, o in enumerate(opps):
        e_s, t_s = _static(ce, ct, p)
        if (latency_s is None or t_s <= latency_s * (1 + 1e-12)) and (energy_j is None or e_s <= energy_j * (1 + 1e-12)):
            statics.append((at_budget(e_s, t_s) if latency_s is not None else t_s, e_s, t_s, p))
    baselines = {}
    if race_t <= (latency_s or race_t) * (1 + 1e-12):
        baselines["race_to_idle"] = dict(point=opps[race].as_dict(), energy_per_token_j=at_budget(race_e, race_t),
                                         active_energy_j=race_e, latency_per_token_s=race_t)
    else:
        baselines["race_to_idle"] = dict(point=opps[race].as_dict(), feasible=False, energy_per_token_j=None,
                                         latency_per_token_s=race_t)
    if statics:
        _, e_s, t_s, p = min(statics)
        baselines["best_static"] = dict(point=opps[p].as_dict(), energy_per_token_j=at_budget(e_s, t_s),
                                        active_energy_j=e_s, latency_per_token_s=t_s)
    else:
        baselines["best_static"] = dict(feasible=False, energy_per_token_j=None, latency_per_token_s=None)
    for b in baselines.values():
        if b.get("energy_per_token_j"):
            sv = 1 - energy / b["energy_per_token_j"]
            b["saving_vs_this"] = 0.0 if abs(sv) < 1e-12 else sv
    out.update(budget=budget, schedule=sched, transitions=transitions, energy_per_token_j=energy,
               active_energy_per_token_j=e_active, latency_per_token_s=t, baselines=baselines,
               pareto_front=[dict(energy_per_token_j=e, latency_per_token_s=tt) for e, tt, _ in front],
               dominated_isas=dropped,
               static_points=[dict(**o.as_dict(), energy_per_token_j=e_s, latency_per_token_s=t_s)
                              for o, e_s, t_s in (static_all or [(o, *_static(ce, ct, p)) for p, o in enumerate(opps)])],
               memory_bound_groups={f"{o.isa}@{o.mhz:g}MHz": [g.name for g in groups
                                                              if pm.run_cost(g.cycles[o.isa], g.flash_bytes, o)[3]
                                                              > pm.run_cost(g.cycles[o.isa], g.flash_bytes, o)[2]]
                                    for o in opps if abs(o.v - pm.p["regulator"]["default_v"]) < 1e-9})
    return out
