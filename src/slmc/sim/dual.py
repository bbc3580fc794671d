"""Dual-ISA mode of the RP2350 scheduler (`slmc dvfs --isa dual`).

Core 0 runs as a Cortex-M33 and core 1 as a Hazard3 at the same time (they share the core voltage
and clk_sys). Each group of operators runs on one of them ("arm", "riscv") or "split": every
matrix-vector product's rows are divided between the two cores in proportion to their measured
speed on that operator (exact instruction counts through each ISA's cycle model), so both finish
together; the group's other operators run on the core that is faster for them. Moving between the
three is a hand-off between running cores, not a reboot. Parameters: rp2350_power.json, "dual".
"""

from __future__ import annotations

from dataclasses import replace

from slmc.sim.dvfs import Group, group_name
from slmc.sim.power import OPP, PowerModel

DUAL_ISAS = ("arm", "riscv", "split")
LINEAR = ("linear", "linear_q8")


def split_rows(c_arm: float, c_riscv: float) -> tuple[float, float]:
    """(share of the rows on the M33, cycles of the split product) for an operator that takes c_arm
    cycles on the M33 alone and c_riscv on the Hazard3 alone: equal finishing times."""
    share = c_riscv / (c_arm + c_riscv)
    return share, c_arm * share


def dual_groups(groups: list[Group], profiles: dict, sync_cycles: float) -> tuple[list[Group], dict[str, float]]:
    """The groups with a "split" entry in their cycles and instructions (both cores' together), and each
    group's share of matrix-product rows on the M33 (weighted by the product's split cycles)."""
    rep = profiles["arm"]["report"]
    keys = ("arm", "riscv", "arm_i", "riscv_i", "split", "split_i", "both", "arm_rows")
    lin = {g.name: dict.fromkeys(keys, 0.0) for g in groups}
    ops = {isa: profiles[isa]["profile"]["ops"] for isa in ("arm", "riscv")}
    cur = None
    for i, op in enumerate(rep["ops"]):
        cur = group_name(op.get("layer"), op.get("role"), cur)
        if op["op"] not in LINEAR:
            continue
        a, r = ops["arm"][i], ops["riscv"][i]
        share, both = split_rows(a["estimated_cycles"], r["estimated_cycles"])
        d = lin[cur]
        d["arm"] += a["estimated_cycles"]
        d["riscv"] += r["estimated_cycles"]
        d["arm_i"] += a["instructions"]
        d["riscv_i"] += r["instructions"]
        d["split"] += both + sync_cycles
        d["split_i"] += share * a["instructions"] + (1 - share) * r["instructions"]
        d["both"] += both
        d["arm_rows"] += share * both
    out, shares = [], {}
    for g in groups:
        d = lin[g.name]
        # the group's other operators on the core that is faster for them
        rest = min(("arm", "riscv"), key=lambda isa: g.cycles[isa] - d[isa])
        cycles = dict(g.cycles, split=g.cycles[rest] - d[rest] + d["split"])
        instr = dict(g.instructions, split=g.instructions[rest] - d[f"{rest}_i"] + d["split_i"])
        out.append(replace(g, cycles=cycles, instructions=instr))
        shares[g.name] = d["arm_rows"] / d["both"] if d["both"] else 1.0
    return out, shares


class DualPowerModel(PowerModel):
    """PowerModel with both cores up: "split" points run two cores; ISA changes are hand-offs."""

    def table(self, unofficial: bool = False, isas: tuple[str, ...] = DUAL_ISAS) -> list[OPP]:
        return super().table(unofficial, isas)

    def run_cost(self, cycles: float, flash_bytes: float, o: OPP) -> tuple[float, float, float, float]:
        t, e, tc, tf = super().run_cost(cycles, flash_bytes, o)
        if o.isa == "split":
            e = self.active_w(o.v, o.mhz, cores=2) * t
        return t, e, tc, tf

    def switch_cost(self, a: OPP, b: OPP) -> tuple[float, float]:
        if a.isa == b.isa:
            return super().switch_cost(a, b)
        t, e = super().switch_cost(a, replace(b, isa=a.isa))
        h = self.p["dual"]["handoff_s"]
        return t + h, e + h * self.active_w(max(a.v, b.v), max(a.mhz, b.mhz))
