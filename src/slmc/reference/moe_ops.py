"""numpy twins of the mixture-of-experts kernels (kernels/c/moe_*.c)."""

from __future__ import annotations

from typing import Any

import numpy as np

from slmc.reference.llm_ops import linear, linear_q8, quantize_q8, swiglu
from slmc.reference.registry import reference_op

f32 = np.float32


@reference_op("moe_topk")
def moe_topk(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    """Softmax over the experts, the k most probable (ties: the lower expert), renormalised if asked. With the
    predictor's plan (input 1) and plan_row >= 0: the planned experts, their probabilities renormalised."""
    logits = ins[0].astype(f32)
    e = np.exp((logits - logits.max(axis=-1, keepdims=True)).astype(f32)).astype(f32)
    p = (e / np.cumsum(e, axis=-1, dtype=f32)[:, -1:]).astype(f32)
    planned = len(ins) > 1 and a.get("plan_row", -1) >= 0
    if planned:
        ids = ins[1][:p.shape[0], a["plan_row"], :a["k"]].astype(np.int32)
    else:
        ids = np.argsort(-p, axis=-1, kind="stable")[:, :a["k"]].astype(np.int32)
    w = np.take_along_axis(p, ids, axis=-1)
    if a["renorm"] or planned:
        w = (w / np.cumsum(w, axis=-1, dtype=f32)[:, -1:]).astype(f32)
    return [ids, w.astype(f32)]


@reference_op("moe_predict")
def moe_predict(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    """The expert predictor (frontend/expert_predictor.py's math) where `active`: plan[r][p] = the m best experts
    of predicted layer p for row r, written into the plan state in place (the output is the state). Its loads
    into the expert cache change no number, so they are not modelled here."""
    plan, h, w0, b0, w1, b1 = ins[:6]
    if a["active"]:
        h = h.astype(f32)
        ss = (np.cumsum(h * h, axis=-1, dtype=f32)[:, -1:] / f32(h.shape[-1]) + f32(a["eps"])).astype(f32)
        x = (h * (f32(1.0) / np.sqrt(ss))).astype(f32)
        y = linear([x, w0, b0], a)[0]
        if w1 is not None:
            y = linear([(y * (f32(1.0) / (f32(1.0) + np.exp(-y)))).astype(f32), w1, b1], a)[0]
        s = y.reshape(h.shape[0], a["n_pred"], a["n_experts"])
        plan[:h.shape[0]] = np.argsort(-s, axis=-1, kind="stable")[..., :a["m"]]
    return [plan]


@reference_op("moe_token_prefetch")
def moe_token_prefetch(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    """The experts of the layers before the predictor's input, looked up by token id in the trainer's table (a
    token outside it plans nothing: zeros). Its loads change no number."""
    tokens, table = ins[0], ins[1]
    plan = np.zeros((tokens.shape[0], *table.shape[1:]), np.int32)
    ok = (tokens >= 0) & (tokens < table.shape[0])
    plan[ok] = table[tokens[ok]]
    return [plan]


@reference_op("sigmoid_mul")
def sigmoid_mul(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    x, g = ins
    return [(x * (f32(1.0) / (f32(1.0) + np.exp(-g)))).astype(f32)]


def _mix(x: np.ndarray, ids: np.ndarray, w: np.ndarray, expert) -> np.ndarray:
    out = np.zeros_like(x, dtype=f32)
    for r in range(x.shape[0]):
        for j in range(ids.shape[1]):
            out[r] = (out[r] + w[r, j] * expert(int(ids[r, j]), x[r:r + 1])[0]).astype(f32)
    return out


@reference_op("moe_experts")
def moe_experts(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    x, ids, w, w1, w3, w2 = ins[:6]  # (an expert cache's pool and table: the same numbers, so not read)

    def expert(e: int, xr: np.ndarray) -> np.ndarray:
        h = swiglu([linear([xr, w1[e]], a)[0], linear([xr, w3[e]], a)[0]], a)[0]
        return linear([h, w2[e]], a)[0]

    return [_mix(x, ids, w, expert)]


@reference_op("moe_experts_q8")
def moe_experts_q8(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    x, ids, w, w1q, w1s, w3q, w3s, w2q, w2s = ins[:9]
    g, gh = a["group"], a["hidden_group"]

    def expert(e: int, xr: np.ndarray) -> np.ndarray:
        xq, xs = quantize_q8([xr], {"group": g})
        h = swiglu([linear_q8([xq, xs, w1q[e], w1s[e]], {"group": g})[0],
                    linear_q8([xq, xs, w3q[e], w3s[e]], {"group": g})[0]], a)[0]
        hq, hs = quantize_q8([h], {"group": gh})
        return linear_q8([hq, hs, w2q[e], w2s[e]], {"group": gh})[0]

    return [_mix(x, ids, w, expert)]
