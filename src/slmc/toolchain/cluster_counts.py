"""Per-core instruction counts of a multi-core build (`slmc run --json/--profile`): parallel.c
prints, per call site, the instructions each core retired on its share (`S par_site<i>_core<c>`),
the sum over calls of the busiest core (`_span`) and the calls; this turns them into per-operator
and per-token figures: work (all cores), span (the critical path), parallel efficiency and load
imbalance. The serial remainder (operators not split; in split operators, what core 0 does outside the shares:
fork/join and serial parts such as RMSNorm's sum of squares) comes from the exact per-operator
counts of the same run."""

from __future__ import annotations


def site_rows(stats: dict[str, float], rep: dict) -> list[dict]:
    cores = int(rep["cluster"]["cores"])
    rows = []
    for s in rep["cluster"]["sites"]:
        i = s["site"]
        calls = int(stats.get(f"par_site{i}_calls", 0))
        per_core = [int(stats.get(f"par_site{i}_core{c}", 0)) for c in range(cores)]
        span, work = int(stats.get(f"par_site{i}_span", 0)), sum(per_core)
        rows.append(dict(site=i, graph=s["graph"], node=s["node"], op=s["op"], split=s["split"], calls=calls,
                         core_instructions=per_core, work=work, span=span,
                         efficiency=work / (cores * span) if span else None,
                         imbalance=span * cores / work if work else None))
    return rows


def cluster_profile(stats: dict[str, float], rep: dict, prof: dict) -> dict:
    """The `cluster` block of a profile: per site, and per decode token."""
    cores = int(rep["cluster"]["cores"])
    rows = site_rows(stats, rep)
    steps = prof["decode_steps"]
    dec = [r for r in rows if r["graph"] == "decode"]
    par_names = {r["node"] for r in dec}
    # per token on core 0, which runs every share in turn in the counting run
    par_on_core0 = sum(o["instructions"] for o in prof["ops"] if o["name"] in par_names)
    work = sum(r["work"] for r in dec) / steps
    span = sum(r["span"] for r in dec) / steps
    npu_ops = [o for o in rep.get("engines", {}).get("ops", []) if o["graph"] == "decode" and o["engine"] == "npu"]
    npu_names = {o["node"] for o in npu_ops}
    # the NPU's functional model runs on core 0 in the emulator; its instructions are not the NPU's time
    npu_model = sum(o["instructions"] for o in prof["ops"] if o["name"] in npu_names)
    serial = prof["instructions_per_token"] - par_on_core0 - npu_model
    # on core 0 inside the split operators but outside the shares: the wrappers, slmc_parallel_for's
    # fork and join, and the serial part of an operator (RMSNorm's sum of squares)
    overhead = max(0.0, par_on_core0 - work)
    forks = sum(1 for r in dec if sum(r["core_instructions"][1:]) > 0)
    npu = None
    if npu_ops:
        cyc = sum(o["npu_cycles"] for o in npu_ops)
        npu = dict(operators=len(npu_ops), cycles_per_token=cyc,
                   energy_uj_per_token=sum(o["npu_energy_pj"] for o in npu_ops) / 1e6,
                   functional_model_instructions=npu_model,
                   critical_path_with_npu=serial + overhead + span + cyc,
                   basis="ESTIMATE: the NPU's cost model (sim/engine_cost.py), one instruction per cycle on the cores assumed; "
                         "the functional model's instructions on core 0 are left out")
    return dict(cores=cores, harts=int(stats.get("par_harts", 0)), sites=rows, npu=npu, estimate=_estimate(rep, prof, dec),
                per_token=dict(serial_instructions=serial, core0_in_split_ops=overhead,
                               parallel_work=work, parallel_span=span, forks=forks,
                               critical_path_instructions=serial + overhead + span,
                               one_core_equivalent=serial + overhead + work,
                               efficiency=work / (cores * span) if span else None))


def _estimate(rep: dict, prof: dict, dec: list[dict]) -> dict | None:
    """ESTIMATED cycles and tokens/s of the critical path, where the profile has a cycle estimate (the cycle
    model on the run's instruction mix): the build's cycles - what the shares beside the busiest one cost
    (work - span, at the split kernel's cycles per instruction in this run) + one fork/join per split call
    (the target's Cluster.fork_join_cycles) + the flash term as the profile has it (after the compute)."""
    from slmc.targets import get_target

    if prof.get("estimated_cycles_per_token") is None:
        return None
    t = get_target(rep["target"])
    if t.engines is None or not t.clock_hz:
        return None
    op_of = {o["name"]: o for o in prof["ops"]}
    saved = forks = 0.0
    for r in dec:
        if not r["calls"]:
            continue
        o = op_of.get(r["node"])
        cpi = (o["estimated_cycles"] / o["instructions"] if o and o["estimated_cycles"] and o["instructions"]
               else prof["estimated_cycles_per_token"] / prof["instructions_per_token"])
        saved += (r["work"] - r["span"]) / r["calls"] * cpi
        forks += 1 if sum(r["core_instructions"][1:]) > 0 else 0
    fj = t.engines.cluster.fork_join_cycles
    cycles = prof["estimated_cycles_per_token"] - saved + forks * fj
    flash = prof.get("estimated_flash_seconds_per_token", 0.0)
    out = dict(critical_path_cycles_per_token=cycles, fork_join_cycles=fj, forks_per_token=forks,
               flash_seconds_per_token=flash, estimated_tokens_per_s=1.0 / (cycles / t.clock_hz + flash),
               basis="ESTIMATE: the profile's cycles less the shares beside the busiest (at their kernel's cycles per "
                     f"instruction), plus {fj} cycles a fork/join (ASSUMED), plus the flash term after the compute")
    staging = rep.get("staging")
    if staging and t.flash is not None and t.flash.read_bytes_per_s and all(o["estimated_cycles"] is not None
                                                                            for o in prof["ops"]):
        from slmc.toolchain.staged_estimate import staged_estimate

        st = staged_estimate(_critical_ops(prof, dec, fj), prof["estimated_cycles_per_token"]
                             - sum(o["estimated_cycles"] for o in prof["ops"]), staging, t.clock_hz,
                             t.flash.read_bytes_per_s, max(0.0, prof.get("estimated_flash_bytes_per_token", 0.0)
                                                           - staging["bytes_per_step"]))
        out.update(estimated_tokens_per_s=1.0 / st["seconds"], flash_stall_seconds_per_token=st["stall_seconds"]
                   + st["in_place_flash_seconds"], estimated_tokens_per_s_not_overlapped=out["estimated_tokens_per_s"],
                   basis=out["basis"].replace(", plus the flash term after the compute", "") + " (per operator), with " + st["basis"])
    return out


def _critical_ops(prof: dict, dec: list[dict], fj: float) -> list[tuple[str, float]]:
    """Each operator's cycles per token on the critical path: its cycles less its sites' shares beside the
    busiest (at its cycles per instruction), plus a fork/join per split call. Operators that share a name
    (the quantizer's) share their sites' saving in proportion to their cycles."""
    adjust: dict[str, float] = {}
    total: dict[str, list[float]] = {}
    for o in prof["ops"]:
        c = total.setdefault(o["name"], [0.0, 0.0])
        c[0] += o["estimated_cycles"]
        c[1] += o["instructions"]
    for r in dec:
        if not r["calls"] or r["node"] not in total:
            continue
        cyc, ins = total[r["node"]]
        cpi = cyc / ins if ins else 1.0
        adjust[r["node"]] = adjust.get(r["node"], 0.0) - (r["work"] - r["span"]) / r["calls"] * cpi \
            + (fj if sum(r["core_instructions"][1:]) > 0 else 0)
    return [(o["name"], o["estimated_cycles"] + adjust.get(o["name"], 0.0) * (
        o["estimated_cycles"] / total[o["name"]][0] if total[o["name"]][0] else 0.0)) for o in prof["ops"]]


def cluster_lines(cl: dict, engines: dict | None = None) -> list[str]:
    """`slmc run --profile`'s per-core table of a multi-core build (plain text, one line per site),
    and where each operator ran when report.json has an engine plan."""
    cores = cl["cores"]
    out = [f"cluster: {cores} cores; instructions per decode token on each core (counted one share at a time), "
           "span = busiest core, efficiency = work / (cores x span)",
           f"{'operator':<26} {'split':<6} " + " ".join(f"{'core' + str(c):>8}" for c in range(cores))
           + f" {'span':>9} {'eff.':>5}"]
    for r in cl["sites"]:
        if r["graph"] != "decode" or not r["calls"]:
            continue
        per = [v / r["calls"] for v in r["core_instructions"]]
        eff = f"{r['efficiency']:.0%}" if r["efficiency"] is not None else "-"
        out.append(f"{r['node']:<26} {r['split']:<6} " + " ".join(f"{v:>8,.0f}" for v in per)
                   + f" {r['span'] / r['calls']:>9,.0f} {eff:>5}")
    pt = cl["per_token"]
    out.append(f"per token: serial {pt['serial_instructions']:,.0f} + core 0 in split operators (fork/join, "
               f"RMSNorm's sum) {pt['core0_in_split_ops']:,.0f} "
               f"+ span {pt['parallel_span']:,.0f} = critical path {pt['critical_path_instructions']:,.0f} "
               f"(one core: {pt['one_core_equivalent']:,.0f}; {pt['one_core_equivalent'] / pt['critical_path_instructions']:.2f}x)")
    if cl.get("estimate"):
        e = cl["estimate"]
        out.append(f"ESTIMATED: critical path {e['critical_path_cycles_per_token']:,.0f} cycles/token "
                   f"({e['forks_per_token']:.0f} fork/joins of {e['fork_join_cycles']} cycles) + flash "
                   f"{1e3 * e['flash_seconds_per_token']:.2f} ms = {e['estimated_tokens_per_s']:.1f} tokens/s")
    if cl.get("npu"):
        n = cl["npu"]
        out.append(f"NPU: {n['operators']} operators per token, {n['cycles_per_token']:,.0f} cycles and "
                   f"{n['energy_uj_per_token']:.2f} uJ per token; critical path with the NPU "
                   f"{n['critical_path_with_npu']:,.0f} ({n['basis']})")
    if engines:
        for a in engines["ops"]:
            if a["graph"] == "decode":
                out.append(f"engine {a['node']:<26} {a['engine']:<8} {a['reason']}")
        out.append(engines.get("note", ""))
    return out
