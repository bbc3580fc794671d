"""model.c's layer loop, as llama2.c's forward() runs its layers.

A decoder's step function runs the nodes before the layers, then

    for (int l = 0; l < SLMC_N_LAYERS; l++) {
        const struct slmc_layer *const w = &slmc_layers[l];
        ... layer 0's kernel calls, with w->wq_q for its weights and w->key_cache for its cache ...
    }

then the nodes after. `slmc_layers` is a const table (flash on an MCU) with one row per layer: the address
of each weight that differs from layer to layer and of the layer's KV cache. Activations and scratch are
layer 0's named pointers: the memory plan gives every layer layer 0's offsets, and what a layer hands on
(the residual stream) the offset of what layer 0 reads (plan/layers.py), so each layer writes the next
one's input where it read its own.

The loop is used only where it provably makes the same calls as the unrolled form: each layer's calls are
written with its own table row in place of its weights and cache, and must come out as the same text as
layer 0's, over buffers at the same offsets. Otherwise (a tiled build whose tiles differ per layer, a
--cores build that numbers its call sites per layer, a DVFS schedule that differs per layer) the graph is
written out layer by layer, and the report's notes say why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from slmc.codegen.weights import WeightEntry
from slmc.cquote import Names, c_comment, comment
from slmc.ir import Value, ValueKind
from slmc.plan.layers import Layers, is_int
from slmc.plan.lifetimes import buffer_name, scratch_name, storage_root

if TYPE_CHECKING:
    from slmc.codegen.emit_c import _Function

LOOP_VARS = frozenset({"l", "w"})   # the loop's own locals: no tensor of a looped graph takes these names


def layer_free(name: str) -> str:
    """A name of layer 0's without its layer: layers.0.wq.q -> wq.q, key_cache_0 -> key_cache."""
    return re.sub(r"^layers\.0\.|_0$", "", name) or name


@dataclass(frozen=True)
class Member:
    name: str
    ctype: str                   # e.g. "const int8_t *"
    rows: tuple[str, ...]        # each layer's initializer
    state: tuple[str, ...] = ()  # the KV cache state of each layer (slmc_reset clears them through the table)
    nbytes: int = 0


@dataclass
class LayerTable:
    """`struct slmc_layer` and its rows, one table for every graph's loop (decode and prefill read the same rows).
    A column is the constant (or state) one input of one node reads in each layer; equal columns are one member."""

    count: int
    count_c: str                 # SLMC_N_LAYERS, or the number where model.h has no such define
    members: dict[tuple, Member] = field(default_factory=dict)   # column -> member, in the order first used
    _names: dict[tuple, str] = field(default_factory=dict)       # column -> member name, stable once given
    _idents: Names = field(default_factory=Names)

    def name_for(self, column: tuple, base: str) -> str:
        if column not in self._names:
            self._names[column] = self._idents.add(layer_free(base))
        return self._names[column]

    def lines(self) -> list[str]:
        if not self.members:
            return []
        ms = list(self.members.values())
        rows = [r for m in ms for r in m.rows]
        out = ["/* what differs from layer to layer: its weights (in weights.bin) and its KV cache (in the arena);",
               "   each step function's loop runs layer l with row l */",
               "#define SLMC_WEIGHT(type, offset) ((const type *)(slmc_weights + (offset)))"]
        if any(r.startswith("SLMC_WEIGHT_RAM(") for r in rows):
            out.append("#define SLMC_WEIGHT_RAM(type, offset) ((const type *)(slmc_weights_ram + (offset)))")
        if any(r.startswith("SLMC_ARENA(") for r in rows):
            out.append("#define SLMC_ARENA(type, offset) ((type *)(slmc_arena + (offset)))")
        out += ["struct slmc_layer {", *(f"    {m.ctype}{m.name};" for m in ms), "};",
                f"static const struct slmc_layer slmc_layers[{self.count_c}] = {{"]
        out += [f"    {{{', '.join(m.rows[i] for m in ms)}}}, /* layer {i} */" for i in range(self.count)]
        return out + ["};", ""]

    def reset_lines(self) -> list[str]:
        """slmc_reset's loop over the KV caches in the table."""
        states = [m for m in self.members.values() if m.state]
        if not states:
            return []
        return [f"    for (int l = 0; l < {self.count_c}; l++) {{",
                *(f"        memset(slmc_layers[l].{m.name}, 0, {m.nbytes});" for m in states), "    }"]

    def states(self) -> set[str]:
        return {s for m in self.members.values() for s in m.state}


def _row(e: WeightEntry) -> str:
    return f"{'SLMC_WEIGHT_RAM' if e.region == 'ram' else 'SLMC_WEIGHT'}({e.dtype.c}, {e.offset})"


def _columns(fn: "_Function", lay: Layers, table: LayerTable) -> tuple[dict[tuple, Member], list[dict[int, str]]]:
    """The members one graph's loop needs, and per layer: id(constant or state) -> `w->member`."""
    found: dict[tuple, Member] = {}
    subst: list[dict[int, str]] = [{} for _ in range(lay.count)]
    for k in range(lay.size):
        for j, v0 in enumerate(lay.node(0, k).inputs):
            if v0 is None or storage_root(v0).kind not in (ValueKind.CONST, ValueKind.STATE):
                continue
            roots = [storage_root(lay.node(i, k).inputs[j]) for i in range(lay.count)]  # type: ignore[arg-type]
            r0 = roots[0]
            if r0.kind == ValueKind.CONST:
                ents = tuple(fn.weights.by_value[id(r)] for r in roots)
                if len(set(ents)) == 1:   # the same constant in every layer (RoPE's tables): its own symbol
                    continue
                col: tuple = ("const", ents)
                member = Member(table.name_for(col, r0.name), f"const {r0.dtype.c} *",
                                tuple(_row(fn.weights.entries[e]) for e in ents))
            else:
                names = tuple(r.name for r in roots)
                if len(set(names)) == 1:
                    continue
                col = ("state", names)
                member = Member(table.name_for(col, r0.name), f"{r0.dtype.c} *",
                                tuple(f"SLMC_ARENA({r.dtype.c}, {fn.plan.offset_of(r.name)})" for r in roots),
                                names, r0.nbytes)
            found.setdefault(col, member)
            for i, r in enumerate(roots):
                subst[i][id(r)] = f"w->{member.name}"
    return found, subst


def _attr_columns(lay: Layers, table: LayerTable) -> tuple[dict[tuple, Member], list[dict[tuple[int, str], str]]]:
    """Integer attributes that differ from layer to layer (an int8 layer's calibrated shifts) as table members,
    and per layer: (id(node), attribute) -> `w->member` for the kernels' CallContext.attr."""
    found: dict[tuple, Member] = {}
    subst: list[dict[tuple[int, str], str]] = [{} for _ in range(lay.count)]
    for k in range(lay.size):
        nodes = [lay.node(i, k) for i in range(lay.count)]
        for key in nodes[0].attrs:
            values = tuple(int(n.attrs[key]) for n in nodes) if is_int(nodes[0].attrs[key]) else ()
            if len(set(values)) < 2:
                continue
            wide = any(not -2**31 <= v < 2**31 for v in values)
            col = ("attr", k, key, values)
            member = Member(table.name_for(col, f"{nodes[0].name}.{key}"), "int64_t " if wide else "int32_t ",
                            tuple(f"{v}LL" if wide else str(v) for v in values))
            found[col] = member
            for i, n in enumerate(nodes):
                subst[i][(id(n), key)] = f"w->{member.name}"
    return found, subst


def graph_calls(fn: "_Function", lay: Layers, table: LayerTable) -> list[str] | str:
    """All statements of fn's graph, its layers as one loop; or why they cannot be (then nothing is kept)."""
    if table.count != lay.count:
        return f"it has {lay.count} layers, the table {table.count}"
    if LOOP_VARS & {e.symbol for e in fn.weights.entries}:
        return "a weight is named like a local of the loop"
    g = fn.graph
    members, subst = _columns(fn, lay, table)
    attr_members, attr_subst = _attr_columns(lay, table)
    members.update(attr_members)
    out: list[str] = []
    for node in g.nodes[:lay.start]:
        out += fn.statements(node, node.name)
    carried = {id(lay.handed(i, c)): fn.expr(c.into) for c in lay.carries for i in range(lay.count)}
    for k in range(lay.size):  # layer 0's values and scratch named without their layer: layers.0.wq_out -> wq_out
        fn.rename[id(lay.node(0, k))] = layer_free(lay.node(0, k).name)
        for v in lay.node(0, k).outputs:
            fn.rename[id(v)] = layer_free(v.name)
    fn.subst, fn.attr_subst = {**subst[0], **carried}, attr_subst[0]
    body, calls = [], []
    into = {c.at[0]: c.into.name for c in lay.carries}
    for k in range(lay.size):
        label = layer_free(lay.node(0, k).name)
        if k in into:  # it writes the next layer's input in place of this one's
            label += f", the next layer's {into[k]}"
        body += fn.statements(lay.node(0, k), label)
        calls.append(fn.statements(lay.node(0, k)))
    own = [{} for _ in range(lay.count)]  # per layer: id(own buffer) -> layer 0's name for it
    for i in range(1, lay.count):
        own[i] = {id(r): fn.expr(lay.counterpart(r)) for r in _own(lay, i)}
    scratch0 = {k: fn.scratches[id(lay.node(0, k))][0] for k in range(lay.size) if id(lay.node(0, k)) in fn.scratches}
    why = _same_memory(fn, lay)
    for i in range(1, lay.count):
        if why:
            break
        fn.subst, fn.attr_subst = {**subst[i], **own[i], **carried}, attr_subst[i]
        fn.scratch_subst = {id(lay.node(i, k)): name for k, name in scratch0.items()}
        for k in range(lay.size):
            mine = fn.statements(lay.node(i, k))
            if mine != calls[k]:
                why = (f"the C of {lay.node(i, k).name!r} is not that of {lay.node(0, k).name!r} "
                       f"({_difference(' '.join(mine), ' '.join(calls[k]))})")
                break
    fn.subst, fn.scratch_subst, fn.attr_subst = {}, {}, {}
    if why:
        return why
    for col, m in members.items():
        table.members.setdefault(col, m)
    out += [f"    for (int l = 0; l < {table.count_c}; l++) {{ {comment(f'layers 0 .. {lay.count - 1}')}",
            "        const struct slmc_layer *const w = &slmc_layers[l];",
            *("    " + line.replace("\n", "\n    ") for line in body), "    }"]
    fn.subst = {id(lay.handed(lay.count - 1, c)): fn.expr(c.into) for c in lay.carries}  # the last layer's hand-on
    for node in g.nodes[lay.end:]:
        out += fn.statements(node, node.name)
    fn.subst = {}
    return out


def _own(lay: Layers, i: int) -> list[Value]:
    """Layer i's own buffers (not what it hands on, not views of others)."""
    handed = {c.at for c in lay.carries}
    return [v for k in range(lay.size) for o, v in enumerate(lay.node(i, k).outputs)
            if storage_root(v) is v and (k, o) not in handed]


def _same_memory(fn: "_Function", lay: Layers) -> str:
    """Why some buffer or scratch of a layer does not lie where layer 0's does (or ""): the plan's promise,
    checked again where the loop relies on it."""
    g, plan = fn.graph, fn.plan
    pairs = [(buffer_name(g, c.into), buffer_name(g, lay.handed(i, c))) for c in lay.carries for i in range(lay.count)]
    for i in range(1, lay.count):
        pairs += [(buffer_name(g, lay.counterpart(v)), buffer_name(g, v)) for v in _own(lay, i)]
        pairs += [(scratch_name(g, lay.node(0, k)), scratch_name(g, lay.node(i, k))) for k in range(lay.size)]
    for a, b in pairs:
        if plan.offset_if(a) != plan.offset_if(b):
            return f"the memory plan puts {c_comment(b)!r} elsewhere than {c_comment(a)!r}"
    return ""


def _difference(a: str, b: str, around: int = 24) -> str:
    """Where two calls first differ: `... a ...` against `... b ...`."""
    i = next((j for j, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    lo = max(0, i - around)
    return f"...{a[lo:i + around]}... against ...{b[lo:i + around]}..."


def unrolled_note(graph: str, count: int, why: str) -> str:
    return f"model.c writes the {count} layers of the {graph} step out one by one: {why}"
