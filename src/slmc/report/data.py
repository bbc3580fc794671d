"""Typed views of report.json (written by `slmc compile`) and of an optional run profile.

The pictures and the page read only these dataclasses, so a renamed key in report.json breaks
one parser here rather than three renderers. The profile format is still settling (another
`slmc run --json` may add it), so its parser accepts the few spellings it may plausibly take.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slmc.errors import SlmcError

_LAYER = re.compile(r"(?:^|[./])layers?\.(\d+)\.")


@dataclass(frozen=True)
class BufferRow:
    name: str
    offset: int
    size: int
    first: int
    last: int
    kind: str       # "kv" (state, live throughout), "scratch" (a kernel's workspace) or "activation"
    layer: int | None

    @property
    def end(self) -> int:
        return self.offset + self.size


@dataclass(frozen=True)
class OpRow:
    name: str
    op: str
    kernel: str
    macs: int
    layer: int | None
    instructions: float | None = None


@dataclass(frozen=True)
class Profile:
    """What a run measured; `ops` may be empty when only the total is known."""
    source: str
    instructions_per_token: float | None
    ops: tuple[OpRow, ...]
    target: str | None
    tokens_per_s: float | None


@dataclass(frozen=True)
class Report:
    model: str
    target: str
    numerics: str
    planner: str
    arena_bytes: int
    lower_bound_bytes: int           # the bound the plan is held to: under memory sharing where it was on
    weights_bytes: int
    kv_cache_bytes: int
    macs_per_token: int
    attention_macs_per_position: int | None
    graphs: tuple[str, ...]
    graph_steps: tuple[int, ...]     # time steps (nodes) of each graph, in time-axis order
    prefill_chunk: int
    buffers: tuple[BufferRow, ...]
    ops: tuple[OpRow, ...]
    config: dict[str, Any]
    params: int | None
    source: str | None
    notes: tuple[str, ...]
    instructions_per_token: float | None
    memory: dict[str, Any]           # report.json's per-memory fit, as the compiler checked it ({} if none)
    conventional_bound_bytes: int = 0  # the peak of whole live tensors (== lower_bound_bytes without sharing)

    @property
    def steps(self) -> int:
        return sum(self.graph_steps)

    @property
    def activation_bytes(self) -> int:
        return self.arena_bytes - self.kv_cache_bytes


def layer_of(name: str) -> int | None:
    m = _LAYER.search(name)
    return int(m.group(1)) if m else None


def _op_layers(names: list[str]) -> list[int | None]:
    """Layer of each node; unnamed helper nodes (e.g. `quantize_q8`) belong to a layer only
    when the named nodes on both sides of them do, so the final norm's helpers stay outside."""
    own = [layer_of(n) for n in names]
    out = list(own)
    for i, lay in enumerate(own):
        if lay is not None:
            continue
        prev = next((own[j] for j in range(i - 1, -1, -1) if own[j] is not None or _named(names[j])), None)
        nxt = next((own[j] for j in range(i + 1, len(own)) if own[j] is not None or _named(names[j])), None)
        out[i] = prev if prev is not None and prev == nxt else None
    return out


def _named(name: str) -> bool:
    """A node named after its output value (as opposed to a generic helper named after its op)."""
    return "." in name or name.endswith("_out") or name in ("x", "logits")


def _kv_names(rows: list[dict], kv_bytes: int, end: int) -> set[str]:
    """The state buffers. The planner lists them first, each live over the whole axis; take the
    leading run of such rows that adds up to kv_cache_bytes, and fall back to names saying cache."""
    picked: list[str] = []
    total = 0
    for r in rows:
        if total >= kv_bytes or r["first"] != 0 or r["last"] != end:
            break
        picked.append(r["name"])
        total += r["size"]
    if kv_bytes and total == kv_bytes:
        return set(picked)
    return {r["name"] for r in rows if "cache" in r["name"] and r["first"] == 0 and r["last"] == end}


def _graph_steps(raw: dict, n_ops: int, n_steps: int) -> tuple[int, ...]:
    if raw.get("graph_steps"):
        return tuple(int(s) for s in raw["graph_steps"])
    graphs = raw.get("graphs") or ["graph"]
    if len(graphs) == 1:
        return (n_steps,)
    # Without an explicit count, the decode graph has one step per bound node (views aside);
    # decode and prompt graphs are built by one function, so an even split is the other guess.
    if n_ops < n_steps and (n_steps - n_ops) % (len(graphs) - 1) == 0:
        rest = (n_steps - n_ops) // (len(graphs) - 1)
        return (n_ops, *([rest] * (len(graphs) - 1)))
    each = n_steps // len(graphs)
    return (*([each] * (len(graphs) - 1)), n_steps - each * (len(graphs) - 1))


def parse_report(raw: dict) -> Report:
    try:
        rows = list(raw["buffers"])
        raw_ops = list(raw.get("ops", []))
        n_steps = max((int(r["last"]) for r in rows), default=-1) + 1
        kv = _kv_names(rows, int(raw.get("kv_cache_bytes", 0)), n_steps - 1)
        buffers = tuple(BufferRow(
            name=str(r["name"]), offset=int(r["offset"]), size=int(r["size"]), first=int(r["first"]),
            last=int(r["last"]), kind="kv" if r["name"] in kv else "scratch" if str(r["name"]).endswith(".scratch")
            else "activation", layer=layer_of(str(r["name"]))) for r in rows)
        layers = _op_layers([str(o["name"]) for o in raw_ops])
        ops = tuple(OpRow(str(o["name"]), str(o["op"]), str(o.get("kernel", "")), int(o.get("macs", 0)), lay,
                          float(o["instructions"]) if o.get("instructions") is not None else None)
                    for o, lay in zip(raw_ops, layers))
        return Report(
            model=str(raw.get("model", "?")), target=str(raw.get("target", "?")), numerics=str(raw.get("numerics", "?")),
            planner=str(raw.get("planner", "?")), arena_bytes=int(raw["arena_bytes"]),
            lower_bound_bytes=int(raw.get("shared_lower_bound_bytes", raw.get("lower_bound_bytes", raw["arena_bytes"]))),
            conventional_bound_bytes=int(raw.get("lower_bound_bytes", raw["arena_bytes"])),
            weights_bytes=int(raw.get("weights_bytes", 0)), kv_cache_bytes=int(raw.get("kv_cache_bytes", 0)),
            macs_per_token=int(raw.get("macs_per_token", 0)),
            attention_macs_per_position=raw.get("attention_macs_per_position"),
            graphs=tuple(raw.get("graphs") or ["graph"]), graph_steps=_graph_steps(raw, len(raw_ops), n_steps),
            prefill_chunk=int(raw.get("prefill_chunk", 0)), buffers=buffers, ops=ops,
            config=dict(raw.get("config", {})), params=raw.get("params"), source=raw.get("source"),
            notes=tuple(raw.get("notes", [])), instructions_per_token=raw.get("instructions_per_token"),
            memory=dict(raw.get("memory") or {}))
    except (KeyError, TypeError, ValueError) as e:
        raise SlmcError(f"report.json lacks or garbles {e}", "recompile with `slmc compile`") from None


def load_report(project: Path) -> Report:
    path = Path(project) / "report.json"
    if not path.is_file():  # not there, or a FIFO/device that would block
        raise SlmcError(f"{project} is not an slmc output folder (no report.json)", "run `slmc compile MODEL -o DIR` first")
    try:
        return parse_report(json.loads(path.read_text()))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        if not isinstance(e, json.JSONDecodeError):
            raise SlmcError(f"{path} is not valid JSON", "recompile with `slmc compile`") from None
        raise SlmcError(f"{path} is not valid JSON ({e.msg}, line {e.lineno})", "recompile with `slmc compile`") from None


_OP_LIST_KEYS = ("ops", "per_op", "op_instructions", "breakdown", "kernels")


def parse_profile(raw: dict, report: Report, source: str) -> Profile:
    """`raw` is the object `slmc run --json` prints (or report.json itself). The per-op list is
    any list of objects carrying `instructions`, under the first key of _OP_LIST_KEYS that has one."""
    entries: list[dict] = []
    for key in (*_OP_LIST_KEYS, *raw.keys()):
        val = raw.get(key)
        if isinstance(val, list) and val and all(isinstance(e, dict) and "instructions" in e for e in val):
            entries = val
            break
    by_name = {o.name: o for o in report.ops}
    names = [str(e.get("name", "")) for e in entries]
    layers = _op_layers(names)
    ops = []
    for e, name, lay in zip(entries, names, layers):
        known = by_name.get(name)
        op = str(e.get("op") or (known.op if known else name or "?"))
        ops.append(OpRow(name or op, op, str(e.get("kernel", known.kernel if known else "")),
                         int(e.get("macs", known.macs if known else 0)), lay, float(e["instructions"])))
    ipt = raw.get("instructions_per_token")
    return Profile(source, float(ipt) if ipt is not None else None, tuple(ops),
                   raw.get("target"), raw.get("tokens_per_s"))


def load_profile(project: Path, report: Report, explicit: Path | None) -> Profile | None:
    """The explicit file, else PROJECT/profile.json, else instruction counts inside report.json."""
    path = explicit if explicit is not None else Path(project) / "profile.json"
    if explicit is not None and not path.exists():
        raise SlmcError(f"profile '{path}' does not exist", "pass the JSON that `slmc run --json` printed")
    if path.exists():
        if not path.is_file():  # a folder, or a FIFO that would block
            raise SlmcError(f"profile '{path}' is not a regular file", "pass the JSON that `slmc run --json` printed")
        try:
            raw = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise SlmcError(f"{path} is not valid JSON ({e.msg}, line {e.lineno})",
                            "pass the output of `slmc run --json`") from None
        except (UnicodeDecodeError, RecursionError, OSError):
            raise SlmcError(f"cannot read '{path}' as JSON", "pass the output of `slmc run --json`") from None
        if not isinstance(raw, dict):
            raise SlmcError(f"{path} holds no JSON object", "pass the output of `slmc run --json`")
        return parse_profile(raw, report, path.name)
    if report.instructions_per_token is not None or any(o.instructions is not None for o in report.ops):
        return Profile("report.json", report.instructions_per_token,
                       tuple(o for o in report.ops if o.instructions is not None), report.target, None)
    return None


@dataclass(frozen=True)
class Capacity:
    """What the target offers per memory level; None where slmc knows no limit."""
    sram_bytes: int | None
    flash_bytes: int | None


def target_capacity(name: str) -> Capacity:
    from slmc.targets import get_target

    try:
        t = get_target(name)
    except SlmcError:       # a report from a build with targets this one lacks
        return Capacity(None, None)
    return Capacity(getattr(t, "sram_bytes", None), getattr(t, "flash_bytes", None))
