"""The sweep axes the RP2350 power model answers (sim/power.py, MODELLED):

- `opp` = "MHz@V": a point's latency and energy per token at that operating point instead of the default
  (150 MHz, 1.10 V): the exact cycles of its run at that clock, plus the weights it streams from flash at
  that clock's flash rate, the core drawing its active power throughout (PowerModel.run_cost).
- `dvfs_latency_ms`: `slmc dvfs`'s per-layer schedule under that latency budget (profiles of the model
  at the point's numerics on the point's ISA), compiled into the point's program as `--emit` does; the
  point's latency and energy are the schedule's.
"""

from __future__ import annotations

import re
from pathlib import Path

from slmc.errors import SlmcError

_OPP = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:MHz)?\s*@\s*(\d+(?:\.\d+)?)\s*V?\s*$", re.IGNORECASE)


def parse_opp(text: str) -> tuple[float, float]:
    """(MHz, volts) of "150MHz@1.10V" (or "150@1.1"), checked against the RP2350's rated operating points."""
    from slmc.sim.power import PowerModel

    m = _OPP.match(text)
    if not m:
        raise SlmcError(f"sweep spec: opp {text!r} is not MHz@V", 'e.g. opp = ["150MHz@1.10V", "75MHz@1.05V"]')
    mhz, v = float(m.group(1)), float(m.group(2))
    pm = PowerModel()
    rated = [(o.mhz, o.v) for o in pm.table(isas=("arm",))]
    if not any(abs(f - mhz) < 1e-6 and abs(u - v) < 1e-6 for f, u in rated):
        volts = sorted({u for _, u in rated})
        raise SlmcError(f"sweep spec: opp {text!r} is not an RP2350 operating point (rated voltages "
                        f"{volts[0]:.2f}-{volts[-1]:.2f} V, up to {pm.fmax_mhz(v) if pm.rated(v) else 0:g} MHz there)",
                        "pick a clock the PLLs give at a rated voltage, e.g. 150MHz@1.10V or 75MHz@1.05V")
    return mhz, v


def at_opp(cycles: float, flash_bytes: float, opp: str) -> tuple[float, float]:
    """(seconds, joules) per token at the operating point `opp`."""
    from slmc.sim.power import OPP, PowerModel

    mhz, v = parse_opp(opp)
    t, e, _, _ = PowerModel().run_cost(cycles, flash_bytes, OPP(v, mhz, "arm", 0.0, 1, True))
    return t, e


def dvfs_schedule(model: Path, target: str, numerics: str, steps: int, budget_ms: float) -> dict:
    """`slmc dvfs MODEL -q NUMERICS --isa ISA --latency-ms BUDGET --json`'s result for the point's target."""
    from slmc.dvfs_profile import profile_model
    from slmc.sim.dvfs import ISA_TARGETS, build_groups, solve
    from slmc.sim.power import PowerModel

    isa = {t: i for i, t in ISA_TARGETS.items()}.get(target)
    if isa is None:
        raise SlmcError(f"dvfs_latency_ms applies to the RP2350 targets, not '{target}'",
                        f"sweep it on {' or '.join(ISA_TARGETS.values())}")
    groups = build_groups(profile_model(model, numerics, steps))
    return solve(groups, PowerModel(), latency_s=budget_ms / 1e3, isas=(isa,))
