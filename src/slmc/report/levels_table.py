"""The multi-level plan in words: one line per level and a per-operator table of tiles and traffic
(report.json's `levels`, written by plan/levels.py)."""

from __future__ import annotations


def levels_summary(rep: dict) -> str:
    """What `slmc compile` prints after a multi-level compile."""
    lv = rep["levels"]
    secs = rep.get("timings", {}).get("planner_seconds", {})  # the planner's wall-clock time: console only
    lines = []
    for u in lv["placement"]:
        cap = f"{u['capacity']:,}" if u["capacity"] else "unbounded"
        proof = "optimal" if u["optimal"] and u["gap_bytes"] == 0 else (
            "proven optimal" if u["optimal"] else f"gap {u['gap_bytes']:,} B to the bound {u['best_bound']:,}")
        lines.append(f"{u['level']}: {u['used']:,} of {cap} B ({u['holds']}); lower bound {u['lower_bound']:,}, "
                     f"{proof}, {u['planner']}" + (f", {secs[u['level']]:.2f} s" if u["level"] in secs else ""))
    for g, moved in lv["bytes_moved"].items():
        if moved:
            parts = ", ".join(f"{k} {v:,}" for k, v in moved.items())
            lines.append(f"{g} step moves {parts} B (compulsory {lv['compulsory_bytes'][g]:,} B); "
                         f"{sum(1 for t in lv['tiles'] if t['graph'] == g)} operators tiled")
    if lv.get("in_place"):
        lines.append(f"{len(lv['in_place'])} row-wise operators read L2 in place (one row does not fit L1), "
                     f"e.g. {lv['in_place'][0]}")
    return "\n".join(lines)


def tile_rows(rep: dict) -> list[list[str]]:
    """Header + one row per tiled operator: tile shapes, loop order, calls and bytes moved per link."""
    lv = rep.get("levels") or {}
    links = sorted({k for t in lv.get("tiles", []) for k in t["moved"]})
    rows = [["graph", "operator", "op", "order", "w tile", "x tile", "out tile", "L1 bytes", "calls",
             *[f"{k} B" for k in links], "moved B", "compulsory B"]]
    for t in lv.get("tiles", []):
        rows.append([t["graph"], t["node"], t["op"], t["order"] + (" (double-buffered)" if t["double_buffered"] else ""),
                     "x".join(map(str, t["w_tile"])), "x".join(map(str, t["x_tile"])), "x".join(map(str, t["out_tile"])),
                     f"{sum(b['bytes'] for b in t['l1_buffers']):,}", str(t["calls"]),
                     *[f"{t['moved'].get(k, 0):,}" for k in links], f"{t['bytes_moved']:,}", f"{t['compulsory_bytes']:,}"])
    return rows
