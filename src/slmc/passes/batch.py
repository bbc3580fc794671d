"""Batch a decoder step over B rows so that each row may belong to a different sequence (ACRoBat's
auto-batching, MLSys 2024, at compile time): `slmc compile --batch B`.

The input is a step graph over R rows (frontend/build.py with seq = R, after quantization; R, the step's row
budget, is B unless --batch-rows or the fit stage make it fewer), with inputs tokens i32[R] and pos i32[1] (the
position of the first row) and one KV cache per layer. The output graph, `step`, takes tokens i32[R], pos i32[R]
and slot i32[R]: row s is the token of the sequence whose KV cache is slot slot[s], at that sequence's position
pos[s]. The cache states hold B slots, slot after slot.

Rules, decided from the graph and the kernel registry (KernelSpec.batch), not from a list of operators:
- A node that reads neither `pos` nor a KV cache, whose kernels are row-wise (`batch == "rows"`: row s of
  each output depends only on row s of each activation and on constants) and whose activations are all
  [B, ...]: copied as it is. Its constants (the weights) are shared by every row, so one call reads each
  weight once for all B rows, whichever sequences they belong to.
- A node that reads `pos` or a KV cache (RoPE, learned positions, the KV write, attention): replaced by its
  per-row form (kernels/batch.py), the operator whose kernels declare `batch == "of:<op>"`, which reads pos
  per row and, where it reads a cache, `slot` per row (appended as its last input): each row finds its own
  position and its own slot in place, nothing is copied into a batch. Its attributes say which inputs are
  which: base_op, pos_input (index), row_inputs and cache_inputs (bit masks of input indices), slot_len.
- A row-wise node whose operator has a multi-row kernel (KernelSpec.shared_rows: the matrix products) gets
  the attribute shared_rows = B, so the binding picks that kernel: it loads (and widens) each weight once and
  uses it for several rows, where the single-sequence kernels load it once per row.
- Anything else (a node with no per-row form, or whose kernels do not declare themselves row-wise) stops the
  pass with an error naming the operator.
After the pass, `logits_tail` finds the nodes after the blocks whose outputs only become the logits (the final
norm, its quantizer, the classifier): a row that wants no logits skips them (slmc_step_rows, codegen/batch_api.py).
"""

from __future__ import annotations

from slmc.errors import SlmcError
from slmc.ir import DType, Graph, Node, TensorType, Value, ValueKind
from slmc.ir.ops import ALIASES
from slmc.ir.rewrite import Rebuild
from slmc.ir.verify import verify
from slmc.kernels.batch_linear import has_shared_rows
from slmc.kernels.registry import REGISTRY

MAX_BATCH = 64


def _root(v: Value) -> Value:
    while v.producer is not None and v.producer.op in ALIASES:
        v = v.producer.inputs[ALIASES[v.producer.op]]  # type: ignore[assignment]
    return v


def _dtype(n: Node) -> DType:
    first = next((v for v in n.inputs if v is not None), None)
    return first.dtype if first is not None else n.outputs[0].dtype


def row_wise(n: Node) -> bool:
    """Every kernel that could run this node says its rows are independent (KernelSpec.batch == "rows")."""
    specs = [k for k in REGISTRY if k.op == n.op and k.dtype == _dtype(n) and k.where(n)]
    return bool(specs) and all(k.batch == "rows" for k in specs)


def per_row_op(n: Node) -> str | None:
    """The operator whose kernels are the per-row form of n's (KernelSpec.batch == "of:<op>")."""
    return next((k.op for k in REGISTRY if k.batch == f"of:{n.op}"), None)


def run(graph: Graph, rows: int, slots: int | None = None) -> Graph:
    """rows: the step's rows (R); slots: the KV slots (B >= R; None: R)."""
    slots = rows if slots is None else slots
    names = [v.name for v in graph.inputs]
    if names != ["tokens", "pos"] or not graph.dynamic_rows:
        raise SlmcError(f"--batch applies to a decoder step graph, not to '{graph.name}' (inputs {names})",
                        "omit --batch for this model")
    tokens, pos = graph.inputs
    if tokens.shape != (rows,):
        raise SlmcError(f"the step graph has {tokens.shape[0]} rows, --batch asks for {rows}", "this is a bug in slmc")
    rb = Rebuild(graph)
    rb.g.name = "step"
    new_pos = rb[pos]
    assert new_pos is not None
    new_pos.type = TensorType((rows,), DType.I32)   # a value of the new graph no node reads yet
    slot = rb.g.add_input("slot", (rows,), DType.I32)
    slot_len = {}
    for v in graph.states():  # B caches, slot after slot
        rb.map[id(v)] = rb.g.add_state(v.name, (slots * v.shape[0], *v.shape[1:]), v.dtype)
        slot_len[id(v)] = v.shape[0]

    def step(n: Node) -> None:
        reads_pos = any(v is pos for v in n.inputs)
        caches = [_root(v) for v in n.inputs if v is not None and _root(v).kind is ValueKind.STATE]
        if reads_pos or caches:
            into = per_row_op(n)
            if into is None:
                raise SlmcError(f"operator '{n.op}' ({n.name}) reads the step's position or KV cache and has no "
                                "per-row form for --batch", "omit --batch for this model")
            ins = [rb[v] for v in n.inputs]
            cache_at = [i for i, v in enumerate(n.inputs) if v is not None and _root(v).kind is ValueKind.STATE]
            row_at = [i for i, v in enumerate(n.inputs) if v is not None and v is not pos and i not in cache_at
                      and v.kind is not ValueKind.CONST]
            if any(n.inputs[i].shape[0] != rows for i in row_at):  # type: ignore[union-attr]
                raise SlmcError(f"operator '{n.op}' ({n.name}) has an input that is not one row per token",
                                "omit --batch for this model")
            attrs = dict(n.attrs, base_op=n.op, pos_input=next((i for i, v in enumerate(n.inputs) if v is pos), -1),
                         row_inputs=sum(1 << i for i in row_at), cache_inputs=sum(1 << i for i in cache_at))
            if caches:
                ins.append(slot)
                attrs["slot_len"] = slot_len[id(caches[0])]
            types = [rb[_root(n.outputs[0])].type] if n.op in ALIASES else None  # type: ignore[union-attr]
            rb.copy(n, into, ins, types, attrs)
        else:
            acts = [v for v in n.inputs if v is not None and v.kind is not ValueKind.CONST]
            if not row_wise(n) or any(not v.shape or v.shape[0] != rows for v in acts):
                raise SlmcError(f"operator '{n.op}' ({n.name}) is not row-wise over the step's rows, so rows of "
                                "different sequences cannot share its call", "omit --batch for this model")
            # a product whose kernels have a multi-row form reads each weight once for all rows (kernels/batch_linear.py)
            rb.copy(n, attrs=dict(n.attrs, shared_rows=rows) if rows > 1 and has_shared_rows(n.op) else None)

    return verify(rb.run(step), after="the batching pass")


def batched(graph: Graph) -> bool:
    """A step graph this pass wrote: rows of any sequence (tokens, pos, slot per row)."""
    return graph.dynamic_rows and [v.name for v in graph.inputs] == ["tokens", "pos", "slot"]


def logits_tail(graph: Graph) -> tuple[list[Node], list[Value]]:
    """The nodes after the last decoder block whose outputs become only the logits (the final norm, its quantizer,
    the classifier), and the row values they read from before them (the residual stream): a row whose logits
    nobody reads can skip these nodes (slmc_step_rows, codegen/batch_api.py). Decided from the graph: the longest
    run of nodes at the end that lie outside the blocks (layer None), are row-wise and not per-row (read no
    position, slot or cache), and whose every output goes only to later nodes of the run or out of the graph as
    the logits. Every node's rows are independent, so its wanted rows, moved to the front in order, compute the
    bits they compute among all rows. Empty when the run would read something other than rows of activations."""
    rows = graph.inputs[0].shape[0]
    outs = {id(v) for v in graph.outputs}
    tail: list[Node] = []
    inside: set[int] = set()
    for n in reversed(graph.nodes):
        acts = [v for v in n.inputs if v is not None and v.kind is not ValueKind.CONST]
        ok = (n.layer is None and "base_op" not in n.attrs and row_wise(n)
              and all(v.shape and v.shape[0] == rows and _root(v).kind is ValueKind.TEMP for v in acts)
              and all(o.shape and o.shape[0] == rows and o.kind is ValueKind.TEMP
                      and (o.users or id(o) in outs) and all(id(u) in inside for u in o.users) for o in n.outputs))
        if not ok:
            break
        tail.insert(0, n)
        inside.add(id(n))
    made = {id(o) for n in tail for o in n.outputs}
    reads = [v for n in tail for v in n.inputs
             if v is not None and v.kind is not ValueKind.CONST and id(v) not in made]
    boundary = list({id(v): v for v in reads}.values())
    if not tail or any(v.producer is None for v in boundary):
        return [], []
    return tail, boundary


def explain(graph: Graph, rows: int) -> list[str]:
    """report.json's lines on what a batched step graph shares across rows and what it runs per row."""
    per_row_ops = {k.op: k.batch[3:] for k in REGISTRY if k.batch.startswith("of:")}  # per-row op -> its kernel's op
    shared = sorted({n.op for n in graph.nodes if n.op not in per_row_ops})
    per_row = sorted({f"{per_row_ops[n.op]} -> {n.op}" for n in graph.nodes if n.op in per_row_ops})
    multi = sorted({n.op for n in graph.nodes if n.attrs.get("shared_rows")})
    tail = [n.op for n in logits_tail(graph)[0]]
    return [f"one call runs up to {rows} rows, each of any sequence: {', '.join(shared)} are row-wise with weights "
            "shared by every row (one read of each weight per call)"
            + (f"; {', '.join(multi)} run multi-row kernels that load and widen each weight once for several rows"
               if multi else ""),
            f"per row, at the row's own position and KV slot, read in place: {', '.join(per_row)}"] + (
        [f"after the blocks, only the rows that want logits run {', '.join(tail)} (slmc_step_rows; main.c asks for "
         "the rows it samples); the others skip them"] if tail else [])
