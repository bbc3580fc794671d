"""RP2350 power, operating points and switching costs, all from rp2350_power.json.

Every number here is MODELLED (see the data file's `source` fields); nothing is measured on a chip.
Power is at the battery side of the core regulator: core power / regulator efficiency.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

DATA = Path(__file__).with_name("rp2350_power.json")
ISAS = ("arm", "riscv")


@dataclass(frozen=True, order=True)
class OPP:
    """One operating point: core voltage, clk_sys (PLL output / integer divider) and ISA."""
    v: float
    mhz: float
    isa: str
    pll_mhz: float
    div: int
    official: bool

    @property
    def label(self) -> str:
        return f"{self.isa}@{self.mhz:g}MHz/{self.v:.2f}V" + ("" if self.official else "*")

    def as_dict(self) -> dict:
        return dict(voltage_v=self.v, voltage_mv=round(self.v * 1000), clock_mhz=self.mhz, khz=round(self.mhz * 1000),
                    isa=self.isa, pll_mhz=self.pll_mhz, divider=self.div, official=self.official)


class PowerModel:
    def __init__(self, params: dict | None = None):
        self.p = params if params is not None else json.loads(DATA.read_text())

    # ---- voltage / clock table -------------------------------------------------------------
    def voltages(self) -> list[float]:
        r = self.p["regulator"]
        n = int(round((r["max_v"] - r["min_v"]) / r["step_v"]))
        return [round(r["min_v"] + i * r["step_v"], 2) for i in range(n + 1)]

    def rated(self, v: float) -> bool:
        r = self.p["regulator"]
        return r["rated_min_v"] - 1e-9 <= v <= r["rated_max_v"] + 1e-9

    def fmax_mhz(self, v: float) -> float:
        """Highest clk_sys at voltage v: the rated clock across the rated range, an alpha-power law
        (anchored at the rated minimum voltage) outside it."""
        f, r = self.p["fmax"], self.p["regulator"]
        if self.rated(v):
            return f["rated_mhz"]
        vt, a, v0 = f["vt_v"], f["alpha"], r["rated_min_v"]
        if v <= vt:
            return 0.0
        k = f["rated_mhz"] / ((v0 - vt) ** a / v0)
        return k * (v - vt) ** a / v

    def clocks(self) -> list[tuple[float, float, int]]:
        """(clk_sys MHz, PLL MHz, divider); one representation per clock, preferring the 150 MHz PLL."""
        seen: dict[float, tuple[float, float, int]] = {}
        plls = sorted(self.p["clocks"]["plls_mhz"].items(), key=lambda kv: (float(kv[0]) != 150.0, float(kv[0])))
        for pll, divs in plls:
            for d in divs:
                f = round(float(pll) / d, 6)
                seen.setdefault(f, (f, float(pll), int(d)))
        return sorted(seen.values())

    def table(self, unofficial: bool = False, isas: tuple[str, ...] = ISAS) -> list[OPP]:
        """Every (voltage, clock, ISA) with clock <= f_max(voltage); unofficial voltages only if asked."""
        out = []
        for v in self.voltages():
            ok = self.rated(v)
            if not ok and not unofficial:
                continue
            fm = self.fmax_mhz(v)
            for f, pll, d in self.clocks():
                if f <= fm + 1e-9:
                    for isa in isas:
                        out.append(OPP(v, f, isa, pll, d, ok))
        return out

    def in_table(self, o: OPP, unofficial: bool = False) -> bool:
        return o in set(self.table(unofficial, (o.isa,)))

    # ---- power -----------------------------------------------------------------------------
    @cached_property
    def eff(self) -> float:
        return self.p["regulator"]["efficiency"]

    def active_w(self, v: float, mhz: float, cores: int = 1) -> float:
        """Battery-side power with `cores` cores running at (v, mhz): static current constant (power ~ V),
        dynamic power ~ V^2 f per running core (the static part is the chip's, counted once)."""
        c = self.p["core_current"]
        vr = c["reference_v"]
        static = c["static_ma_at_1v1"] * 1e-3 * v
        dyn = c["dynamic_ma_per_mhz_at_1v1"] * 1e-3 * mhz * vr * (v / vr) ** 2
        return (static + cores * dyn) / self.eff

    def idle_w(self) -> float:
        i = self.p["idle"]
        return i["current_ma"] * 1e-3 * i["voltage_v"] / self.eff

    # ---- flash -----------------------------------------------------------------------------
    def clkdiv(self, mhz: float) -> int:
        return max(1, math.ceil(mhz / self.p["flash"]["sck_max_mhz"] - 1e-9))

    def flash_bytes_per_s(self, mhz: float) -> float:
        fl = self.p["flash"]
        return mhz * 1e6 / self.clkdiv(mhz) * fl["bytes_per_sck"]

    # ---- operator groups -------------------------------------------------------------------
    def run_cost(self, cycles: float, flash_bytes: float, o: OPP) -> tuple[float, float, float, float]:
        """(seconds, joules, compute seconds, flash seconds) of a group at point o; flash stalls not
        overlapped with compute, the core drawing its active current throughout."""
        tc = cycles / (o.mhz * 1e6)
        tf = flash_bytes / self.flash_bytes_per_s(o.mhz) if flash_bytes else 0.0
        t = tc + tf
        return t, self.active_w(o.v, o.mhz) * t, tc, tf

    # ---- switching -------------------------------------------------------------------------
    def switch_cost(self, a: OPP, b: OPP) -> tuple[float, float]:
        """(seconds, joules) of going from point a to point b; (0, 0) when a == b.

        Order: raise the voltage first (then wait), change the clock, lower the voltage last. An ISA
        change is a reboot, then the same voltage and clock steps."""
        s = self.p["switching"]
        t = e = 0.0
        if a.isa != b.isa:
            t += s["isa_change_s"]
            e += s["isa_change_s"] * self.active_w(max(a.v, b.v), s["pll_change_mhz"])
        if b.v > a.v + 1e-9:
            t += s["voltage_raise_s"]
            e += s["voltage_raise_s"] * self.active_w(b.v, a.mhz)
        elif b.v < a.v - 1e-9:
            t += s["voltage_lower_s"]
            e += s["voltage_lower_s"] * self.active_w(a.v, b.mhz)
        if a.pll_mhz != b.pll_mhz:
            t += s["pll_change_s"]
            e += s["pll_change_s"] * self.active_w(max(a.v, b.v), s["pll_change_mhz"])
        elif a.div != b.div:
            t += s["divider_change_s"]
            e += s["divider_change_s"] * self.active_w(max(a.v, b.v), max(a.mhz, b.mhz))
        return t, e
