"""The energy-latency picture of a `slmc dvfs` result (PNG)."""

from __future__ import annotations

from pathlib import Path


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    f = result["pareto_front"]
    ax.step([x["latency_per_token_s"] * 1e3 for x in f], [x["energy_per_token_j"] * 1e6 for x in f], where="post",
            marker=".", label="DVFS schedules (Pareto front, active energy)")
    for isa, m in (("arm", "s"), ("riscv", "^"), ("split", "D")):
        pts = [x for x in result["static_points"] if x["isa"] == isa]
        if pts:
            ax.scatter([x["latency_per_token_s"] * 1e3 for x in pts], [x["energy_per_token_j"] * 1e6 for x in pts],
                       marker=m, s=14, alpha=0.5, label=f"static points, {isa}")
    r = result["baselines"]["race_to_idle"]
    ax.scatter([r["latency_per_token_s"] * 1e3], [r.get("active_energy_j", 0) * 1e6], marker="*", s=120, c="red",
               label="race to idle (150 MHz, 1.10 V)", zorder=5)
    ax.set_xscale("log")
    ax.set_xlabel("latency per token (ms)")
    ax.set_ylabel("energy per token (uJ)")
    ax.set_title("RP2350 per-group DVFS (MODELLED energy, estimated cycles)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
