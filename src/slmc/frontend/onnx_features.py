"""The structural features beyond the Llama block, found in a folded decoder graph (DecoderConfig's
fields of the same names): an embedding multiplier (Gemma's sqrt(d)), learned positions at an offset
(OPT's 2), qk-norm (an RMSNorm over each head of q and k: Qwen3; over the whole projection: OLMo 2), and
the scale of the attention scores (GPT-Neo's 1, Gemma's query_pre_attn_scalar), whatever the exporter
split it into (q and k each times d^-1/4, the scores divided by sqrt(d), q times it before the heads).
"""

from __future__ import annotations

import numpy as np

from slmc.frontend.onnx_blocks import NotADecoder, _Norm, const, last_axis_views, norm_of
from slmc.ir import Node, Value, ValueKind
from slmc.ir.ops import ONNX_VIEWS


def _scalar(n: Node) -> tuple[float, Value] | None:
    """(factor, data input) of a Mul or Div of a value by a scalar constant."""
    if n.op not in ("Mul", "Div") or len(n.inputs) != 2:
        return None
    cs = [const(i) for i in n.inputs]
    k = 1 if cs[1] is not None else 0
    c, data = cs[k], n.inputs[1 - k]
    if c is None or c.size != 1 or data is None or data.kind == ValueKind.CONST or (n.op == "Div" and k == 0):
        return None
    f = float(c.reshape(-1)[0])
    return (1.0 / f if n.op == "Div" else f), data


def embed_scale(x: Value) -> tuple[float, Value]:
    """The embedding times a constant before anything reads it (Gemma: sqrt(dim)), and the scaled value."""
    return scaled(x)


def scaled(y: Value) -> tuple[float, Value]:
    """y times a constant on its way on (Granite's residual multiplier on each sublayer's output, its logits
    divided by logits_scaling), and the scaled value; (1, y) where nothing scales it."""
    if len(y.users) == 1:
        s = _scalar(y.users[0])
        if s is not None and s[1] is y:
            return s[0], y.users[0].outputs[0]
    return 1.0, y


def learned_positions(x: Value, tables: list[np.ndarray], seq: int, dim: int) -> tuple[np.ndarray, Value] | None:
    """A position table added to the token embedding x: the table from the row position 0 reads (OPT
    starts at row 2), and the sum."""
    for n in list(x.users):
        c = next((const(i) for i in n.inputs if const(i) is not None), None) if n.op == "Add" else None
        if c is None or c.size != seq * dim:
            continue
        rows = c.reshape(seq, dim)
        for t in tables:
            if t.ndim != 2 or t.shape[1] != dim or t.shape[0] < seq:
                continue
            for off in range(min(4, t.shape[0] - seq + 1)):
                if np.array_equal(t[off:off + seq], rows):
                    return t[off:], n.outputs[0]
    return None


def qk_norm(proj: Value, hd: int) -> tuple[str, _Norm] | None:
    """The RMSNorm on a q or k projection's output: over each head ("head") or the whole ("full")."""
    for v in last_axis_views(proj):  # [1, S, H, hd], or transposed to [1, H, S, hd] first (Gemma 3)
        if v.shape[-1] == hd and len(v.shape) == 4:
            norm = norm_of(v)
            if norm is not None:
                return "head", norm
    norm = norm_of(proj) if len(proj.shape) == 3 else None
    return ("full", norm) if norm is not None and norm.kind == "rms" else None


def softcap(y: Value) -> tuple[float, Value]:
    """cap * tanh(y / cap) after y (Gemma 2's soft-capping of scores and logits): (cap, its result); (0, y)
    where y is not capped."""
    if len(y.users) == 1:
        s = _scalar(y.users[0])
        t = y.users[0].outputs[0] if s is not None and s[1] is y else None
        if t is not None and len(t.users) == 1 and t.users[0].op == "Tanh":
            th = t.users[0].outputs[0]
            m = _scalar(th.users[0]) if len(th.users) == 1 else None
            if m is not None and m[1] is th and m[0] > 0 and abs(m[0] * s[0] - 1.0) < 1e-6:  # type: ignore[index]
                return m[0], th.users[0].outputs[0]
    return 0.0, y


def score_scale(scores: Node, soft: Node) -> tuple[float, float]:
    """(scale, cap): the factor q.k is multiplied by before the Softmax (scalar Muls/Divs on q's and k's way
    to the score MatMul, through views, and between it and the Softmax), and the soft-cap after it (0: none)."""
    f, cap = 1.0, 0.0
    for v in scores.inputs[:2]:
        while v is not None and v.producer is not None:
            n = v.producer
            s = _scalar(n)
            if s is not None:
                f, v = f * s[0], s[1]
            elif n.op in ONNX_VIEWS or n.op in ("Transpose", "Expand"):  # moves values, keeps their scale
                v = n.inputs[0]
            else:
                break
    u = scores.outputs[0]
    while u is not soft.inputs[0]:
        if len(u.users) != 1:
            raise NotADecoder(f"the scores '{u.name}' of Softmax '{soft.name}' are read twice")
        n = u.users[0]
        c, capped = softcap(u) if not cap else (0.0, u)
        s = _scalar(n)
        if c:
            cap, u = c, capped
        elif s is not None and not cap:
            f, u = f * s[0], n.outputs[0]
        elif n.op in ("Add", "Where", *ONNX_VIEWS) and u in n.inputs:
            u = n.outputs[0]
        else:
            raise NotADecoder(f"the scores of Softmax '{soft.name}' pass through {n.op} '{n.name}', which slmc does "
                              "not read from ONNX")
    return f, cap
