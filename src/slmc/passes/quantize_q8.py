"""q8 quantization of a decoder's float step graph (frontend/build.py): llama2.c's runq.c numerics.

Rules:
- `linear(x, w[, b])` -> `quantize_q8(x)` + `linear_q8(xq, xs, wq, ws[, b])`: weights int8 in groups
  along each row with one float scale per group (quant/q8.py), the activation quantized at run time in
  the same groups. One quantize_q8 per (activation, group), shared by the products that read it (q, k
  and v read one). A constant with a `source` (the checkpoint's own Q8Tensor) is used as stored.
- `embedding(table, ids)` -> `embedding_q8`: rows dequantized as they are read.
- `moe_experts` -> `moe_experts_q8`: every expert's matrices in the same groups, stacked as they were.
- `layout`: the order the target's kernel reads its weights in ("rows4": linear_q8_dsp.c's blob order;
  "rows16": linear_q8_rows16.c's, a batched host step),
  used where the group is a multiple of 4 bytes. A table that is also the classifier is stored once,
  in the order the classifier's kernel reads; the embedding then reads that order too.
Constants are named after the float one (`w` -> `w.q`, `w.s`); every other node is copied as it is.
"""

from __future__ import annotations

from slmc.ir import DType, Graph, Node, TensorType, Value
from slmc.ir.rewrite import Rebuild
from slmc.ir.verify import verify
from slmc.quant.q8 import Q8Tensor, ensure_q8, pack_rows4, pack_rows16


def _q8(w: Value) -> Q8Tensor:
    return w.source if isinstance(w.source, Q8Tensor) else ensure_q8(w.data)  # type: ignore[arg-type]


def run(graph: Graph, layout: str = "") -> Graph:
    # the order each weight is stored in: the one its matrix product's kernel reads
    order = {id(n.inputs[1]): layout if _q8(n.inputs[1]).group % 4 == 0 else ""  # type: ignore[arg-type]
             for n in graph.nodes if n.op == "linear"}
    rb = Rebuild(graph)
    stored: dict[int, tuple[Value, Value, int, str]] = {}
    quantized: dict[tuple[int, int], tuple[Value, Value]] = {}

    def weights(w: Value) -> tuple[Value, Value, int, str]:
        if id(w) not in stored:
            q, lay = _q8(w), order.get(id(w), "")
            qq, qs = (pack_rows4(q.q, q.s) if lay == "rows4" else pack_rows16(q.q, q.s) if lay == "rows16"
                      else (q.q, q.s))
            stored[id(w)] = (rb.g.add_const(w.name + ".q", qq), rb.g.add_const(w.name + ".s", qs), q.group, lay)
        return stored[id(w)]

    def activations(x: Value, group: int) -> tuple[Value, Value]:
        if (id(x), group) not in quantized:
            xn = rb[x]
            assert xn is not None
            rows, k = xn.shape
            node = rb.g.add_node("quantize_q8", [xn], [TensorType((rows, k), DType.I8),
                                                       TensorType((rows, k // group), DType.F32)],
                                 {"group": group}, out_names=[f"{xn.name}_q", f"{xn.name}_s"])
            quantized[(id(x), group)] = (node.outputs[0], node.outputs[1])
        return quantized[(id(x), group)]

    def experts(w: Value) -> tuple[Value, Value, int]:
        """Stacked expert matrices [n_experts, rows, cols] quantized row by row like any matrix."""
        if isinstance(w.source, Q8Tensor):
            q = w.source
        else:
            e, r, c = w.shape
            flat = ensure_q8(w.data.reshape(e * r, c))  # type: ignore[union-attr]
            q = Q8Tensor(flat.q.reshape(e, r, c), flat.s.reshape(e, r, c // flat.group), flat.group)
        return rb.g.add_const(w.name + ".q", q.q), rb.g.add_const(w.name + ".s", q.s), q.group

    def step(n: Node) -> None:
        if n.op == "moe_experts":
            x, ids, wts, w1, w3, w2 = n.inputs
            (q1, s1, g), (q3, s3, _), (q2, s2, gh) = (experts(w) for w in (w1, w3, w2))  # type: ignore[arg-type]
            rb.copy(n, "moe_experts_q8", [rb[x], rb[ids], rb[wts], q1, s1, q3, s3, q2, s2],
                    attrs=dict(n.attrs, group=g, hidden_group=gh))
        elif n.op == "embedding":
            table, ids = n.inputs
            wq, ws, group, lay = weights(table)  # type: ignore[arg-type]
            rb.copy(n, "embedding_q8", [wq, ws, rb[ids]], attrs=dict(group=group, **({"layout": lay} if lay else {})))
        elif n.op == "linear":
            x, w, *bias = n.inputs
            b = [rb[v] for v in bias]
            wq, ws, group, lay = weights(w)  # type: ignore[arg-type]
            xq, xs = activations(x, group)  # type: ignore[arg-type]
            rb.copy(n, "linear_q8", [xq, xs, wq, ws, *b], attrs=dict(group=group, **({"layout": lay} if lay else {})))
        else:
            rb.copy(n)

    return verify(rb.run(step), after="the q8 quantization pass")
