"""One chip's share of a decoder's step graph: `run(graph, plan, chip)` over the graph of any numerics
(frontend/build.py's float graph, or after passes/quantize_q8.py or passes/quantize_int8.py), for the
partition plan/partition.py chose. Nodes are found by role (ir/roles.py).

Rules:
- Q rows by the chip's query heads, K/V rows (and the KV cache) by its KV heads, GATE/UP rows by its
  FFN slice: the weight's rows (and scales, multipliers, bias) are sliced, and what follows (rope,
  attention, the activation) takes the narrower shape. A chip with no heads (or no FFN slice) drops
  that side of the block and adds nothing to the sum.
- O and DOWN columns by the same ranges, then summed over the chips, the way the product's numerics
  need: fp32 `allreduce_sum` of partial products (bias on one chip); q8 the exact `fold_q8` of int32
  dots per group (preceded, where a group of Wo's input spans chips, by `allreduce_max` of the group
  maxima, so every chip quantizes with one chip's scales); int8 `linear_i8_partial` int64 sums,
  `allreduce_sum`, then the shift (`requant_i64`). q8 and int8 chips are bit-identical to one chip.
- QK_NORM (per-head qk-norm, q's attention scale) like ROPE: the sliced input's shape, the [head_dim]
  weight whole; a qk-norm over the whole projection (OLMo 2) is refused. POST_NORM (a sublayer's output
  normed after the sum) and RESIDUAL run on every chip over the full width.
- EMBED on chip 0 only, then `broadcast` to every chip; FINAL_NORM and CLASSIFIER on chip 0 only,
  so only chip 0's graph has an output. All chips reach the same collectives in the same order
  (reference/multichip.py checks it).
Weights are sliced after quantization, so a chip's q8 groups, scales and integer multipliers are the
whole matrix's. Split products must be in row-major order (a partitioned build asks for no layout).
"""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np

from slmc.errors import SlmcError
from slmc.ir import DType, Graph, Node, TensorType, Value, ValueKind
from slmc.ir.rewrite import Rebuild
from slmc.ir.roles import Role
from slmc.ir.verify import verify

ATTENTION_SIDE = frozenset({Role.ATTN_NORM, Role.Q, Role.K, Role.V, Role.QK_NORM, Role.ROPE, Role.KV_WRITE,
                            Role.ATTENTION})
FFN_SIDE = frozenset({Role.FFN_NORM, Role.GATE, Role.UP, Role.FFN_ACT})
ROOT_ONLY = frozenset({Role.EMBED, Role.FINAL_NORM, Role.CLASSIFIER})


# What the pass reads of a partition: plan/partition.py's ChipPlan and PartitionPlan have these fields
# (named here, not imported: plan/ sits above passes/).
class ChipShare(Protocol):
    @property
    def chip(self) -> int: ...
    @property
    def heads(self) -> tuple[int, int]: ...
    @property
    def kv_heads(self) -> tuple[int, int]: ...
    @property
    def ffn(self) -> tuple[int, int]: ...
    @property
    def root(self) -> bool: ...
    @property
    def n_heads(self) -> int: ...
    @property
    def n_kv_heads(self) -> int: ...
    @property
    def n_ffn(self) -> int: ...


class PartitionPlan(Protocol):
    @property
    def head_dim(self) -> int: ...
    @property
    def chips(self) -> Sequence[ChipShare]: ...
    @property
    def q8_max_sync(self) -> bool: ...
    @property
    def wo_bias_chip(self) -> int: ...
    @property
    def w2_bias_chip(self) -> int: ...


class _Chip:
    def __init__(self, graph: Graph, plan: PartitionPlan, chip: int) -> None:
        self.rb, self.plan, self.ch = Rebuild(graph), plan, plan.chips[chip]
        ch, hd = self.ch, plan.head_dim
        heads, kv = (ch.heads[0] * hd, ch.heads[1] * hd), (ch.kv_heads[0] * hd, ch.kv_heads[1] * hd)
        self.rows = {Role.Q: heads, Role.K: kv, Role.V: kv, Role.GATE: ch.ffn, Role.UP: ch.ffn}
        self.cols = {Role.O: heads, Role.DOWN: ch.ffn}
        self.skip = ((ATTENTION_SIDE if not ch.n_heads else frozenset()) | (FFN_SIDE if not ch.n_ffn else frozenset())
                     | (ROOT_ONLY if not ch.root else frozenset()))
        self.embedded: set[int] = set()     # ids of the values the embedding computes (chip 0's)

    def const(self, v: Value, part: np.ndarray) -> Value:
        return self.rb.g.add_const(v.name, np.ascontiguousarray(part))

    def step(self, n: Node) -> None:
        rb = self.rb
        if n.role is Role.EMBED:
            self.embedded.update(id(o) for o in n.outputs)
        else:
            for v in n.inputs:  # the first reader of the embedded tokens: chip 0 sends them to every chip
                if v is not None and id(v) in self.embedded:
                    self.embedded.discard(id(v))
                    layer, rb.g.layer = rb.g.layer, None
                    rb.map[id(v)] = rb.g.op("broadcast", [rb.map.get(id(v))], v.type, name="x_all")
                    rb.g.layer = layer
        if n.role in self.skip:
            rb.drop(n)
        elif n.role in self.cols:
            if n.op == "bias_i":  # -q int8: the bias after the chips' sum, which every chip holds: on each alike
                rb.copy(n)
            elif n.op != "quantize_q8":  # (the q8 sum quantizes its input its own way)
                self.summed(n, *self.cols[n.role])
        elif n.role in self.rows and n.op != "quantize_q8":  # (q, k and v read the whole input)
            r0, r1 = self.rows[n.role]
            _row_major(n)
            rows, width = n.outputs[0].shape
            # the weight's rows, and those of its scales, multipliers and bias
            ins = [self.const(v, v.data[r0:r1]) if v is not None and v.kind is ValueKind.CONST and v.shape[0] == width
                   else rb[v] for v in n.inputs]
            rb.copy(n, inputs=ins, types=[TensorType((rows, r1 - r0), n.outputs[0].dtype)])
        elif n.role is Role.KV_WRITE:
            cache = n.inputs[0]
            k0, k1 = self.rows[Role.K]
            width = k1 - k0
            if cache.dtype is DType.I8:  # --kv-cache int8: a record of head_dim values and a scale per KV head
                from slmc.reference.kv_int8 import SCALE_BYTES

                kv = n.inputs[1].shape[-1]  # type: ignore[union-attr]
                hd = kv // ((cache.shape[-1] - kv) // SCALE_BYTES)  # type: ignore[union-attr]
                width = width // hd * (hd + SCALE_BYTES)
            state = rb.g.add_state(cache.name, (cache.shape[0], width), cache.dtype)  # type: ignore[union-attr]
            rb.map[id(cache)] = state
            rb.copy(n, types=[state.type])
        elif n.role is Role.ATTENTION:
            h0, h1 = self.rows[Role.Q]
            rb.copy(n, types=[TensorType((n.outputs[0].shape[0], h1 - h0), n.outputs[0].dtype)],
                    attrs=dict(n.attrs, n_heads=self.ch.n_heads, n_kv_heads=self.ch.n_kv_heads))
        elif n.role in (Role.ROPE, Role.QK_NORM, Role.FFN_ACT):  # the shape of the (sliced) input
            if n.op in ("rmsnorm", "rmsnorm_i") and not (n.attrs.get("head_dim") or n.attrs.get("group")):
                raise SlmcError(f"{n.name}: a qk-norm over the whole projection (OLMo 2) needs every head's "
                                "queries on one chip", "compile without --chips")
            first = rb[n.inputs[0]]
            assert first is not None
            rb.copy(n, types=[TensorType(first.shape, n.outputs[0].dtype)])
        else:
            rb.copy(n)

    def summed(self, n: Node, c0: int, c1: int) -> None:
        """n's product over the chip's columns [c0, c1), summed over the chips."""
        rb, g = self.rb, self.rb.g
        _row_major(n)
        x, w = n.inputs[0], n.inputs[1] if n.op != "linear_q8" else n.inputs[2]
        x = x.producer.inputs[0] if n.op == "linear_q8" else x  # type: ignore[union-attr]  # the float input
        xin = None if x.producer.role in self.skip else rb[x]  # type: ignore[union-attr]
        m, base = n.outputs[0].shape, n.name.removesuffix("_out")
        out = TensorType(m, n.outputs[0].dtype)
        if n.op == "linear":
            b = n.inputs[2] if len(n.inputs) > 2 else None
            bias_chip = self.plan.wo_bias_chip if n.role is Role.O else self.plan.w2_bias_chip
            part = None if xin is None else g.op("linear", [xin, self.const(w, w.data[:, c0:c1]), *(
                [rb[b]] if b is not None and self.ch.chip == bias_chip else [])], out, name=n.name)  # type: ignore
            rb.map[id(n.outputs[0])] = g.op("allreduce_sum", [part], out, name=f"{base}_sum")
        elif n.op == "linear_i8":
            wm, group = n.inputs[2], n.attrs["group"]
            part = None
            if xin is not None and c1 > c0:
                first, last = c0 // group, (c1 - 1) // group
                part = g.op("linear_i8_partial", [xin, self.const(w, w.data[:, c0:c1]), self.const(
                    wm, wm.data[:, first:last + 1])], TensorType(m, DType.I64), name=f"{base}_part",  # type: ignore
                    offset=c0, group=group)
            total = g.op("allreduce_sum", [part], TensorType(m, DType.I64), name=f"{base}_sum")
            rb.map[id(n.outputs[0])] = g.op("requant_i64", [total], out, name=n.name, shift=n.attrs["shift"])
        elif n.op == "linear_q8":
            rb.map[id(n.outputs[0])] = self.fold_q8(n, xin, c0, c1, base)
        else:
            raise SlmcError(f"a partition cannot split {n.op} by columns", "compile without --chips")

    def fold_q8(self, n: Node, x: Value | None, c0: int, c1: int, base: str) -> Value:
        """q8 `x @ w[:, c0:c1].T` summed over the chips exactly as one chip's linear_q8 sums it: int32
        dots per group here (linear_q8_dots), the floats added in column order (fold_q8)."""
        g, group = self.rb.g, n.attrs["group"]
        wq, ws = n.inputs[2], n.inputs[3]
        rows, m = n.outputs[0].shape
        sync = n.role is Role.O and self.plan.q8_max_sync
        amax = None
        if sync:  # a group of Wo's input spans chips: agree on its maximum first
            src, n_groups = n.inputs[0].producer.inputs[0], wq.shape[1] // group  # type: ignore[union-attr]
            t = TensorType((rows, n_groups), DType.F32)
            amax = None if x is None else g.op("q8_absmax", [x], t, name=f"{src.name}_absmax", offset=c0, group=group)
            amax = g.op("allreduce_max", [amax], t, name=f"{src.name}_absmax_all")
        ins: list[Value | None] = [None, None, None, None]
        if x is not None:
            k, first, last = c1 - c0, c0 // group, (c1 - 1) // group
            i8 = TensorType((rows, k), DType.I8)
            if amax is None:
                node = g.add_node("quantize_q8", [x], [i8, TensorType((rows, k // group), DType.F32)],
                                  {"group": group}, out_names=[f"{x.name}_q", f"{x.name}_s"])
            else:
                node = g.add_node("quantize_q8_scaled", [x, amax], [i8, TensorType((rows, last - first + 1), DType.F32)],
                                  {"offset": c0, "group": group}, out_names=[f"{x.name}_q", f"{x.name}_s"])
            dots = g.op("linear_q8_dots", [node.outputs[0], self.const(wq, wq.data[:, c0:c1])],  # type: ignore
                        TensorType((rows, m, last - first + 1), DType.I32), name=f"{base}_dots", offset=c0, group=group)
            ins[:3] = [dots, self.const(ws, ws.data[:, first:last + 1]), node.outputs[1]]  # type: ignore[union-attr]
        if len(n.inputs) > 4 and n.inputs[4] is not None and self.ch.root:  # the fold's root adds the bias
            ins[3] = self.rb[n.inputs[4]]
        return g.op("fold_q8", ins, TensorType((rows, m), DType.F32), name=f"{base}_sum", k=c1 - c0, offset=c0,
                    group=group, carry=int(sync))


def _row_major(n: Node) -> None:
    if n.attrs.get("layout"):
        raise SlmcError(f"a partition cannot split {n.name}'s weights stored in the '{n.attrs['layout']}' order",
                        "quantize a partitioned model without a kernel layout")


def run(graph: Graph, plan: PartitionPlan, chip: int) -> Graph:
    c = _Chip(graph, plan, chip)
    return verify(c.rb.run(c.step), after="the partition pass")
