"""The building blocks of a decoder, found in a folded ONNX graph: linear layers (a fused projection
split in pieces), RMSNorm/LayerNorm, attention around its Softmax, the feed-forward block, RoPE tables and
learned-position tables. A finder returns what it matched, or None / raises NotADecoder naming the place
where the structure departs; onnx_decoder.py assembles the blocks into a DecoderModel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from slmc.ir import Node, Value, ValueKind
from slmc.ir.ops import ONNX_VIEWS


class NotADecoder(Exception):
    """The graph does not have the shape of a decoder slmc knows; the message says where it stopped."""


@dataclass
class _Linear:
    x: Value                 # the input it reads
    w: np.ndarray            # (out, in), like torch.nn.Linear
    b: np.ndarray | None
    out: Value               # where its result (bias included) is, or a piece of a fused projection
    node: Node


def const(v: Value | None) -> np.ndarray | None:
    return v.data if v is not None and v.kind == ValueKind.CONST else None


def views_of(v: Value) -> list[Value]:
    """v and every value that is v seen through view operators."""
    out, todo = [], [v]
    while todo:
        u = todo.pop()
        out.append(u)
        todo += [o for n in u.users if n.op in ONNX_VIEWS for o in n.outputs]
    return out


def past_views(v: Value) -> Value:
    """v seen through a chain of view operators that are its only readers (a 2-D Gemm reshaped back)."""
    while len(v.users) == 1 and v.users[0].op in ONNX_VIEWS:
        v = v.users[0].outputs[0]
    return v


def _linear_at(n: Node) -> _Linear | None:
    """A MatMul or Gemm by a constant matrix (+ a constant bias) as a torch-style linear layer."""
    if n.op == "MatMul" and const(n.inputs[1]) is not None and n.inputs[1].data.ndim == 2:  # type: ignore[union-attr]
        w = n.inputs[1].data.T  # type: ignore[union-attr]
    elif n.op == "Gemm" and const(n.inputs[1]) is not None and not n.attrs.get("transA") \
            and n.attrs.get("alpha", 1.0) == 1.0 and n.attrs.get("beta", 1.0) == 1.0:
        w = n.inputs[1].data if n.attrs.get("transB") else n.inputs[1].data.T  # type: ignore[union-attr]
    else:
        return None
    x, out = n.inputs[0], n.outputs[0]
    b = const(n.inputs[2]) if n.op == "Gemm" and len(n.inputs) > 2 else None
    if b is None and len(out.users) == 1 and out.users[0].op == "Add":
        add = out.users[0]
        other = add.inputs[1] if add.inputs[0] is out else add.inputs[0]
        cb = const(other)
        if cb is not None and cb.size == w.shape[0] and cb.shape[-1] == w.shape[0]:
            b, out = cb.reshape(-1), add.outputs[0]
    return _Linear(x, np.ascontiguousarray(w, dtype=np.float32), None if b is None else b.astype(np.float32), out, n)  # type: ignore


def linears_reading(h: Value) -> list[_Linear]:
    """The linear layers that read h, with a fused projection (split along its outputs, by a Split or by
    Slices, whole or per head: GPT-NeoX's [.., heads, 3 * head_dim]) in pieces."""
    found: list[_Linear] = []
    for v in views_of(h):
        for n in v.users:
            lin = _linear_at(n)
            if lin is None or lin.x is not v:
                continue
            found += _pieces(lin) or [lin]
    return found


def _pieces(lin: _Linear) -> list[_Linear] | None:
    """A fused projection's parts, where a view of its output is cut along the last axis; None: not cut."""
    out = lin.w.shape[0]
    for seen in last_axis_views(lin.out):
        cuts = _cuts(seen)
        # per-head cuts only by a Split (GPT-NeoX): Slices of each head are RoPE's rotated part (partial rotary)
        if not cuts or out % seen.shape[-1] or (seen.shape[-1] != out and seen.users[0].op != "Split"):
            continue
        group = seen.shape[-1]  # the output features repeat in groups of this many (one group: no heads)
        if cuts[-1][0] + cuts[-1][1] != group or any(a + n != b for (a, n, _), (b, _, _) in zip(cuts, cuts[1:])):
            continue
        parts = []
        for start, size, piece in cuts:
            rows = np.concatenate([np.arange(g + start, g + start + size) for g in range(0, out, group)])
            parts.append(_Linear(lin.x, np.ascontiguousarray(lin.w[rows]),
                                 None if lin.b is None else lin.b[rows], piece, lin.node))
        return parts
    return None


def last_axis_views(v: Value) -> list[Value]:
    """v seen through views and through Transposes that keep its last axis last (GPT-NeoX's heads first)."""
    out, todo = [], [v]
    while todo:
        u = todo.pop()
        out.append(u)
        todo += [o for n in u.users for o in n.outputs if n.op in ONNX_VIEWS or (
            n.op == "Transpose" and list(n.attrs.get("perm", []))[-1:] == [len(u.shape) - 1])]
    return out


def _cuts(v: Value) -> list[tuple[int, int, Value]]:
    """(start, size, piece) of a Split of v along its last axis, or of Slices of it that tile that axis."""
    last = len(v.shape) - 1
    if len(v.users) == 1 and v.users[0].op == "Split" and v.users[0].attrs["axis"] % (last + 1) == last:
        starts = np.cumsum([0, *v.users[0].attrs["split"]])
        return [(int(a), int(n), o) for a, n, o in zip(starts, v.users[0].attrs["split"], v.users[0].outputs)]
    cuts = []
    for n in v.users:
        if n.op != "Slice" or n.inputs[0] is not v or [a % (last + 1) for a in n.attrs.get("axes", [])] != [last] \
                or n.attrs.get("steps", [1]) != [1]:
            return []
        start = int(n.attrs["starts"][0])
        cuts.append((start, n.outputs[0].shape[-1], n.outputs[0]))
    return sorted(cuts, key=lambda c: c[0]) if len(cuts) > 1 else []


def _ancestors_in(v: Value, targets: dict[int, _Linear]) -> set[int]:
    """Which of the target outputs v is computed from (the search stops at them)."""
    hit, seen, todo = set(), set(), [v]
    while todo:
        u = todo.pop()
        if id(u) in seen:
            continue
        seen.add(id(u))
        if id(u) in targets:
            hit.add(id(u))
        elif u.producer is not None:
            todo += [i for i in u.producer.inputs if i is not None and i.kind != ValueKind.CONST]
    return hit


def first_linear_after(v: Value, avoid: set[int]) -> _Linear:
    """The first linear layer downstream of v (breadth first), ignoring nodes in `avoid`."""
    seen, todo = set(), [v]
    while todo:
        u = todo.pop(0)
        for n in u.users:
            if id(n) in seen or id(n) in avoid:
                continue
            seen.add(id(n))
            lin = _linear_at(n)
            if lin is not None:
                return lin
            todo += n.outputs
    raise NotADecoder(f"no projection follows '{v.name}'")


def row_pick(h: Value) -> Value | None:
    """h [1, S, D] gathered along its sequence axis at constant indices (a traced logits_to_keep)."""
    for n in h.users:
        if n.op == "Gather" and n.inputs[0] is h and len(h.shape) == 3 and n.attrs.get("axis", 0) % 3 == 1 \
                and const(n.inputs[1]) is not None:
            return n.outputs[0]
    return None


def picked_rows(out: Value, seq: int) -> np.ndarray:
    """The positions whose logits the graph output holds: every one, or those a row_pick before the
    classifier keeps (walking back through views and the classifier's MatMul/Gemm and bias)."""
    u = out
    while u.producer is not None:
        n = u.producer
        if n.op == "Gather" and u is row_pick(n.inputs[0]):  # type: ignore[arg-type]
            return np.arange(seq)[n.inputs[1].data.reshape(-1)]  # type: ignore[union-attr]
        nxt = next((i for i in n.inputs if i is not None and i.kind != ValueKind.CONST), None)
        if nxt is None or not (n.op in ONNX_VIEWS or n.op in ("MatMul", "Gemm", "Add")):
            break
        u = nxt
    return np.arange(seq)


def _same_rows(u: Value, x: Value) -> bool:
    """u holds x's rows: the same features per row and the same number of them (OPT flattens [1, S, D])."""
    return u.shape[-1] == x.shape[-1] and int(np.prod(u.shape)) == int(np.prod(x.shape))


def stream_norm(x: Value) -> _Norm | None:
    """The norm reading the residual stream x, or a view of it with the same rows."""
    return next((nm for u in views_of(x) if _same_rows(u, x) for nm in norms_of(u)), None)


def residual(x: Value, y: Value) -> Value:
    """The Add of y to the residual stream x (either seen through views with the same rows as x)."""
    xs = {id(u) for u in views_of(x) if _same_rows(u, x)}
    for u in views_of(y):
        for n in u.users:
            ids = [id(i) for i in n.inputs]
            if n.op == "Add" and id(u) in ids and any(i in xs for i in ids if i != id(u)) \
                    and _same_rows(n.outputs[0], x):
                return n.outputs[0]
    raise NotADecoder(f"'{y.name}' is not added back to the residual stream '{x.name}'")


# ---- norms ---------------------------------------------------------------------------------------------

@dataclass
class _Norm:
    kind: str                # "rms" | "layer"
    w: np.ndarray
    b: np.ndarray | None
    eps: float
    out: Value


def _follow(v: Value, op: str) -> Node | None:
    return next((n for n in v.users if n.op == op), None)


def norm_of(x: Value) -> _Norm | None:
    """The (first) RMSNorm or LayerNorm over x's last axis."""
    found = norms_of(x)
    return found[0] if found else None


def norms_of(x: Value) -> list[_Norm]:
    """Every RMSNorm or LayerNorm over x's last axis (GPT-NeoX's parallel block has two)."""
    dim, found = x.shape[-1], []
    for n in x.users:
        if n.op == "LayerNormalization" and n.inputs[0] is x and n.attrs.get("axis", -1) % len(x.shape) == len(x.shape) - 1:
            w, b = const(n.inputs[1]), const(n.inputs[2]) if len(n.inputs) > 2 else None
            if w is not None:
                found.append(_Norm("layer", w.reshape(-1), None if b is None else b.reshape(-1),
                                   float(n.attrs.get("epsilon", 1e-5)), n.outputs[0]))
        square = (n.op == "Pow" and n.inputs[0] is x and const(n.inputs[1]) is not None
                  and float(n.inputs[1].data.reshape(-1)[0]) == 2.0) or (n.op == "Mul" and n.inputs[0] is x and n.inputs[1] is x)  # type: ignore
        if square:
            rms = _rms_tail(x, n.outputs[0], dim)
            if rms is not None:
                found.append(rms)
    return found


def _rms_tail(x: Value, sq: Value, dim: int) -> _Norm | None:
    """mean(x^2) -> + eps -> sqrt -> 1/. -> x * . -> * w (either operand order; w may be absent)."""
    mean = _follow(sq, "ReduceMean")
    if mean is None or mean.attrs.get("axes") not in ([-1], [len(x.shape) - 1]):
        return None
    add = _follow(mean.outputs[0], "Add")
    eps = const(add.inputs[1]) if add is not None else None
    if eps is None and add is not None:
        eps = const(add.inputs[0])
    sqrt = _follow(add.outputs[0], "Sqrt") if add is not None else None
    if eps is None or sqrt is None:
        return None
    r = sqrt.outputs[0]
    inv = _follow(r, "Reciprocal") or next((n for n in r.users if n.op == "Div" and n.inputs[1] is r), None)
    if inv is None:
        return None
    if inv.op == "Div" and inv.inputs[0] is x:          # x / sqrt(...)
        y = inv.outputs[0]
    else:
        if inv.op == "Div" and not np.all(const(inv.inputs[0]) == 1):
            return None
        mul = next((n for n in inv.outputs[0].users if n.op == "Mul" and x in n.inputs), None)
        if mul is None:
            return None
        y = mul.outputs[0]
    w = np.ones(dim, np.float32)
    scale = next((n for n in y.users if n.op == "Mul" and any(
        const(i) is not None and const(i).size == dim for i in n.inputs)), None)  # type: ignore[union-attr]
    if scale is not None:
        w = next(const(i) for i in scale.inputs if const(i) is not None).reshape(-1)  # type: ignore[union-attr]
        y = scale.outputs[0]
    return _Norm("rms", w.astype(np.float32), None, float(eps.reshape(-1)[0]), y)


# ---- attention and feed-forward --------------------------------------------------------------------------

def attention(h: Value) -> tuple[_Linear, _Linear, _Linear, Node, Node]:
    """q, k, v projections reading h, the score MatMul and the probability-times-values MatMul."""
    lins = {id(lin.out): lin for lin in linears_reading(h)}
    if len(lins) < 3:
        raise NotADecoder(f"{len(lins)} projection(s) read the normalised '{h.name}', attention needs q, k and v")
    soft = None
    seen, todo = set(), [lin.out for lin in lins.values()]
    while todo and soft is None:
        u = todo.pop(0)
        for n in u.users:
            if id(n) not in seen:
                seen.add(id(n))
                if n.op == "Softmax":
                    soft = n
                todo += n.outputs
    if soft is None:
        raise NotADecoder(f"no Softmax follows the projections of '{h.name}'")
    s = soft.inputs[0]
    while s is not None and s.producer is not None and s.producer.op != "MatMul":
        s = next((i for i in s.producer.inputs if i is not None and i.kind != ValueKind.CONST), None)
    if s is None or s.producer is None:
        raise NotADecoder(f"no score MatMul before Softmax '{soft.name}'")
    scores = s.producer
    p = _past_nan_guard(soft.outputs[0])
    av = next((n for n in p.users if n.op == "MatMul" and n.inputs[0] is p), None)
    if av is None:
        raise NotADecoder(f"Softmax '{soft.name}' does not weight values with a MatMul")
    q, k, v = (_ancestors_in(x, lins) for x in (scores.inputs[0], scores.inputs[1], av.inputs[1]))  # type: ignore[arg-type]
    if not (len(q) == len(k) == len(v) == 1):
        raise NotADecoder(f"cannot tell q, k and v apart around Softmax '{soft.name}'")
    return lins[q.pop()], lins[k.pop()], lins[v.pop()], scores, av


def _past_nan_guard(p: Value) -> Value:
    """Where(IsNaN(p), 0, p) after a Softmax (torch.onnx's scaled_dot_product_attention with a mask, for
    rows masked entirely): a causal decoder masks no row entirely, so the guard changes nothing there."""
    for n in p.users:
        if n.op != "IsNaN":
            continue
        for w in n.outputs[0].users:
            zero = const(w.inputs[1]) if w.op == "Where" else None
            if w.inputs[0] is n.outputs[0] and w.inputs[2] is p and zero is not None and not zero.any():
                return w.outputs[0]
    return p


def ffn(h: Value, avoid: frozenset[int] = frozenset()) -> tuple[str, _Linear, _Linear | None, _Linear]:
    """(activation, w1 (gate or up), w3 (up, gated FFNs only), w2 (down)) of the feed-forward block reading h;
    `avoid`: the nodes of projections reading h that are not the FFN's (Phi's attention, on the same norm)."""
    lins = [lin for lin in linears_reading(h) if id(lin.node) not in avoid]
    reads = {id(lin.node) for lin in lins} | set(avoid)
    down = first_linear_after(lins[0].out, reads) if lins else None
    if not lins or down is None or len(lins) > 2:
        raise NotADecoder(f"no feed-forward block reads '{h.name}'")
    regions = [_region(lin.out, down.node) for lin in lins]
    if len(lins) == 2:
        common = {id(n) for n in regions[0]} & {id(n) for n in regions[1]}
        acts = [_activation([n for n in r if id(n) not in common]) for r in regions]
        k = 0 if acts[0] else 1
        if not acts[k] or acts[1 - k]:
            raise NotADecoder(f"the gated feed-forward after '{h.name}' has no activation on one of its two branches")
        gated = {"silu": "swiglu", "gelu": "geglu", "gelu_tanh": "geglu_tanh"}.get(acts[k])
        if gated is None:
            raise NotADecoder(f"the gated feed-forward after '{h.name}' gates with {acts[k]}")
        return gated, lins[k], lins[1 - k], down
    act = _activation(regions[0])
    if act is None:
        raise NotADecoder(f"the feed-forward activation after '{h.name}' is none slmc knows "
                          f"({sorted({n.op for n in regions[0]})})")
    return act, lins[0], None, down


def _region(v: Value, stop: Node) -> list[Node]:
    """The nodes between v and `stop` (downstream of v, not past stop)."""
    between: list[Node] = []
    todo, seen = [v], set()
    while todo:
        u = todo.pop()
        for n in u.users:
            if id(n) not in seen and n is not stop:
                seen.add(id(n))
                between.append(n)
                todo += n.outputs
    return between


def _activation(nodes: list[Node]) -> str | None:
    """The activation these nodes compute, by the operator that tells it apart."""
    ops = {n.op for n in nodes}
    gelu = next((n for n in nodes if n.op == "Gelu"), None)
    if gelu is not None:
        return "gelu_tanh" if gelu.attrs.get("approximate", "none") == "tanh" else "gelu"
    for op, act in (("Tanh", "gelu_tanh"), ("Erf", "gelu"), ("Sigmoid", "silu"), ("Relu", "relu")):
        if op in ops:
            return act
    return None
