"""Every stage in a stable text form that diffs cleanly (DESIGN.md rule 8, `slmc compile --dump-dir D`).

One line per thing, so a pass that changes one node changes one line of its dump:

    graph decode dynamic_rows
    input  tokens: i32[1]
    state  key_cache: f32[5,512,64]
    const  layers.0.wq: f32[64,64] #1f0c3a9d2e
    node   layers.0.wq_out = linear(layers.0.attn_norm_out: f32[1,64], layers.0.wq: f32[64,64]) -> f32[1,64] layer=0 role=q
    output logits: f32[1,512]

- constants appear by type and a short hash of their bytes, never their data (weights are megabytes,
  and a hash still shows which pass changed them); constants are sorted by name, so a pass that adds
  one inserts one line instead of shifting the rest;
- attributes are sorted by key; floats print with repr (exact round trip), arrays of more than a few
  elements by hash, anything else by type name (a repr with an id() would differ on every run);
- names come from model files, so one that is not plain (space, quote, control character) prints as a
  Python string literal: a hostile name can never split a line or forge another one.

A kernel binding (id(node) -> kernel) and a memory plan print the same way: one line per node, one
line per buffer. They are read through the fields named below, not imported, because ir/ is the bottom
package: kernels/ and plan/ sit above it (tests/test_imports.py).
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import re
from typing import Any, Callable, Mapping, Protocol, Sequence

import numpy as np

from slmc.ir.graph import Graph, Node, Value, ValueKind
from slmc.ir.types import DType, TensorType

HASH_CHARS = 10        # 40 bits: a collision between two versions of one tensor is not a practical worry
INLINE_ELEMENTS = 8    # attribute arrays up to this size print their values
_PLAIN = re.compile(r"[A-Za-z0-9_.:/\-\[\]]+")


class KernelLike(Protocol):
    """What the binding dump reads of a kernels/registry.py KernelSpec."""
    op: str
    c_file: str
    isa: str
    deps: tuple[str, ...]


def name(text: str) -> str:
    """A name as it appears in a dump: as is if plain, else a string literal (one line, unforgeable)."""
    return text if _PLAIN.fullmatch(text) else repr(text)


def digest(data: np.ndarray) -> str:
    """Short hash of an array's type, shape and bytes."""
    a = np.ascontiguousarray(data)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
    return "#" + h.hexdigest()[:HASH_CHARS]


def value(v: Any) -> str:
    """One attribute value, stable across runs and processes."""
    if v is None:
        return "None"
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    if isinstance(v, str):
        return name(v)
    if isinstance(v, enum.Enum):
        return v.name
    if isinstance(v, np.ndarray):
        if v.size <= INLINE_ELEMENTS and v.dtype.kind in "biuf":
            return f"{_array_type(v)}[{', '.join(value(x) for x in v.reshape(-1))}]"
        return f"{_array_type(v)}{digest(v)}"
    if isinstance(v, (list, tuple)):
        inner = ", ".join(value(x) for x in v)
        return f"[{inner}]" if isinstance(v, list) else f"({inner})"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{value(k)}: {value(v[k])}" for k in sorted(v, key=str)) + "}"
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return f"{type(v).__name__}({', '.join(f'{f.name}={value(getattr(v, f.name))}' for f in _fields(v))})"
    return f"<{type(v).__name__}>"


def _array_type(a: np.ndarray) -> str:
    """As the IR writes a tensor type (f32[2,3]), for dtypes the IR has."""
    try:
        return str(TensorType(tuple(a.shape), DType.from_numpy(a.dtype)))
    except ValueError:
        return f"{a.dtype.name}[{','.join(map(str, a.shape))}]"


def _fields(obj: Any) -> list[dataclasses.Field]:
    # fields that are callables (a Share's order function) say nothing stable; compare=False marks them
    return [f for f in dataclasses.fields(obj) if f.compare]


def _typed(v: Value | None) -> str:
    return "_" if v is None else f"{name(v.name)}: {v.type}"


def node_line(n: Node) -> str:
    attrs = " {" + ", ".join(f"{name(k)}={value(n.attrs[k])}" for k in sorted(n.attrs)) + "}" if n.attrs else ""
    layer, role = getattr(n, "layer", None), getattr(n, "role", None)
    outs = ", ".join(name(o.name) for o in n.outputs)
    types = ", ".join(str(o.type) for o in n.outputs)
    return (f"node   {outs} = {name(n.op)}({', '.join(_typed(v) for v in n.inputs)}) -> {types}{attrs}"
            + ("" if layer is None else f" layer={layer}") + ("" if role is None else f" role={role.value}")
            + ("" if n.name == outs else f" name={name(n.name)}"))


def print_graph(g: Graph) -> str:
    """The graph, one line per input, state, constant, node (in execution order) and output."""
    head = f"graph {name(g.name)}" + (" dynamic_rows" if g.dynamic_rows else "")
    lines = [head]
    lines += [f"input  {_typed(v)}" for v in g.inputs]
    values = sorted(g.values.values(), key=lambda v: v.name)
    lines += [f"state  {_typed(v)}" for v in values if v.kind == ValueKind.STATE]
    lines += [f"const  {_typed(v)} {digest(v.data) if v.data is not None else '#none'}"
              for v in values if v.kind == ValueKind.CONST]
    lines += [node_line(n) for n in g.nodes]
    lines += [f"output {_typed(v)}" for v in g.outputs]
    return "\n".join(lines) + "\n"


def print_binding(graphs: Sequence[Graph], binding: Mapping[int, KernelLike]) -> str:
    """Node -> kernel C file (and the ISA feature it needs, the files it calls into), per graph, in
    execution order; a node without a kernel (a view: no code, the planner aliases it) prints '-'.
    A node is named by its outputs, as in print_graph: node names need not be unique, value names are."""
    lines = []
    for g in graphs:
        lines.append(f"graph {name(g.name)}")
        for n in g.nodes:
            k = binding.get(id(n))
            label = f"{', '.join(name(o.name) for o in n.outputs)}: {name(n.op)}"
            if k is None:
                lines.append(f"bind   {label} -> -")
                continue
            deps = f" deps={','.join(k.deps)}" if k.deps else ""
            isa = "" if k.isa == "any" else f" isa={k.isa}"
            lines.append(f"bind   {label} -> {k.c_file}{isa}{deps}")
    return "\n".join(lines) + "\n"


def print_plan(plan: Any) -> str:
    """A memory plan (plan/plan.py MemoryPlan): its sizes, then one line per buffer (offset, size, live
    steps [first, last], alignment) in the planner's order, then each output planned over an input it
    consumes. The planning time is left out: it differs on every run."""
    skip = {"buffers", "offsets", "overlaps", "seconds"}
    head = [f"plan   {f.name}={value(getattr(plan, f.name))}" for f in _fields(plan) if f.name not in skip]
    # no column padding: one longer name would otherwise change every line of the diff
    rows = [f"buffer {name(b.name)} offset={off} size={b.size} live=[{b.first},{b.last}] align={b.align}"
            for b, off in zip(plan.buffers, plan.offsets)]
    shares = [f"share  {name(plan.buffers[o.out].name)} over {name(plan.buffers[o.inp].name)} at step {o.step} "
              f"offset in [{o.lo},{o.hi}]" for o in getattr(plan, "overlaps", ())]
    return "\n".join(head + rows + shares) + "\n"


def print_data(obj: Any, prefix: str = "") -> str:
    """Any other stage result (a DecoderModel, a partition or engine plan): one line per leaf field,
    dataclass fields in declaration order, dict keys sorted, arrays by type and hash."""
    lines: list[str] = []

    def walk(x: Any, path: str) -> None:
        if dataclasses.is_dataclass(x) and not isinstance(x, type) and not _is_leaf(x):
            for f in _fields(x):
                walk(getattr(x, f.name), f"{path}.{f.name}" if path else f.name)
        elif isinstance(x, Mapping):
            for k in sorted(x, key=str):
                walk(x[k], f"{path}[{value(k)}]")
        elif isinstance(x, (list, tuple)) and any(dataclasses.is_dataclass(e) or isinstance(e, Mapping) for e in x):
            for i, e in enumerate(x):
                walk(e, f"{path}[{i}]")
        else:
            lines.append(f"{path or '.'} = {value(x)}")

    walk(obj, prefix)
    return "\n".join(lines) + "\n"


def _is_leaf(x: Any) -> bool:
    # a quantized matrix is one tensor, not three lines (quant/q8.py Q8Tensor: q, s, group)
    return {f.name for f in dataclasses.fields(x)} == {"q", "s", "group"}


def summary(text: str) -> dict[str, int]:
    """How many lines of each kind a dump holds ("graph", "input", "state", "const", "node", "output",
    "bind", "buffer", ...): what a reader of the dump can count back without parsing it."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        kind = line.split(" ", 1)[0]
        if kind:
            out[kind] = out.get(kind, 0) + 1
    return out


def render(obj: Any, graphs: Sequence[Graph] | None = None) -> str:
    """The dump text of a stage result: a graph, graphs, a binding (with its graphs), a memory plan,
    text as it is, or any other dataclass."""
    if isinstance(obj, str):
        return obj if obj.endswith("\n") else obj + "\n"
    if isinstance(obj, Graph):
        return print_graph(obj)
    if isinstance(obj, (list, tuple)) and obj and all(isinstance(g, Graph) for g in obj):
        return "\n".join(print_graph(g) for g in obj)
    if isinstance(obj, Mapping) and graphs is not None:
        return print_binding(graphs, obj)
    if hasattr(obj, "buffers") and hasattr(obj, "offsets") and dataclasses.is_dataclass(obj):
        return print_plan(obj)
    return print_data(obj)


class Dumps:
    """The stage texts of one compile (`slmc compile --dump-dir D`): collected as the stages run, written
    by the driver at the end through output.py's folder rules. Disabled, `add` does nothing, so call sites
    need no test. Stage names order the files ("10-graphs", "11-bind")."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.files: dict[str, bytes] = {}

    def add(self, stage: str, obj: Any, graphs: Sequence[Graph] | None = None) -> None:
        if self.enabled:
            safe = re.sub(r"[^A-Za-z0-9._-]", "_", stage).lstrip(".") or "stage"
            self.files[f"{safe}.txt"] = render(obj, graphs).encode("utf-8")

    def on_pass(self, prefix: str) -> Callable[[str, Graph], None] | None:
        """A `run_pipeline` callback that adds the graph after each pass as PREFIX-N-PASS."""
        return (lambda name, g: self.add(f"{prefix}-{name}", g)) if self.enabled else None
