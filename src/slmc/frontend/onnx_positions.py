"""Positions in a folded decoder graph: whether a value depends on the token ids, the learned-position
tables gathered at indices the sequence length alone decides, and the RoPE tables multiplied into q.
"""

from __future__ import annotations

import math

import numpy as np

from slmc.frontend.decoder import RopeScaling
from slmc.frontend.onnx_blocks import NotADecoder, const
from slmc.ir import Graph, Value, ValueKind


def data_dependent(v: Value) -> bool:
    """Whether v depends on the values (not only the shapes) of a graph input."""
    seen, todo = set(), [v]
    while todo:
        u = todo.pop()
        if id(u) in seen:
            continue
        seen.add(id(u))
        if u.kind == ValueKind.INPUT:
            return True
        if u.producer is not None and u.producer.op not in ("Shape", "Size"):
            todo += [i for i in u.producer.inputs if i is not None]
    return False


def position_tables(g: Graph) -> list[np.ndarray]:
    """Constant tables gathered at indices that depend on the sequence length only (learned positions).
    Read before folding: folding leaves only the rows the probe length needs."""
    return [n.inputs[0].data for n in g.nodes  # type: ignore[union-attr]
            if n.op == "Gather" and const(n.inputs[0]) is not None and n.inputs[0].data.ndim == 2  # type: ignore
            and not data_dependent(n.inputs[1])]  # type: ignore[arg-type]


def rope_of(q_out: Value, scores_in: Value, seq: int, hd: int) -> tuple[float, bool, int, RopeScaling] | None:
    """(theta, interleaved, rotated features, scaling) from the cos/sin tables multiplied into q on its way to the
    scores (the rotated features: hd, or the first few of each head: partial rotary). Tables of the standard
    frequencies for some base give that base and no scaling; other tables (llama3, YaRN, LongRoPE, linear: any
    scaling the exporter baked in) give their own frequencies and attention factor (RopeScaling "explicit")."""
    tables, seen, todo = [], set(), [scores_in]
    while todo:
        u = todo.pop()
        if id(u) in seen or u is q_out or u.producer is None:
            continue
        seen.add(id(u))
        n = u.producer
        if n.op == "Mul":
            tables += [c.reshape(seq, c.shape[-1]) for c in map(const, n.inputs)
                       if c is not None and c.ndim >= 2 and c.size == seq * c.shape[-1] and c.shape[-1] <= hd
                       and c.shape[-1] % 2 == 0 and c.shape[-2] == seq]
        todo += [i for i in n.inputs if i is not None and i.kind != ValueKind.CONST]
    sin = next((t for t in tables if np.all(np.abs(t[0]) < 1e-6) and np.any(t != 0)), None)
    if sin is None:
        return None
    rot = sin.shape[1]
    half = rot // 2
    if np.array_equal(sin[:, :half], sin[:, half:]):
        interleaved, cols = False, slice(0, half)
    elif np.array_equal(sin[:, 0::2], sin[:, 1::2]):
        interleaved, cols = True, slice(0, None, 2)
    else:
        raise NotADecoder("the RoPE sin table pairs neither (i, i + d/2) nor (2i, 2i + 1)")
    if half < 2 or seq < 2:
        raise NotADecoder("the RoPE base cannot be read from so short a table")
    freqs = sin[1, cols]
    f = float(np.arcsin(np.float64(freqs[half - 1])))       # theta ** (-2 (half - 1) / rot)
    theta = float(f"{f ** (-rot / (2.0 * (half - 1))):.5g}") if f > 0 else 10000.0
    from slmc.frontend.rope import tables as rope_tables

    _, want = rope_tables(seq, rot, theta)
    if np.abs(want - sin[:, cols]).max() <= 1e-4:
        return theta, interleaved, rot, RopeScaling()
    cos = next((t for t in tables if t.shape == sin.shape and t[0, 0] > 0 and np.all(t[0] == t[0, 0])), None)
    if cos is None:
        raise NotADecoder("the RoPE sin table is not the standard one for any base and no cos table starts at a "
                          "constant: the rotary embedding is not read")
    scaling = _explicit(sin[:, cols].astype(np.float64), cos[:, cols].astype(np.float64))
    got_cos, got_sin = rope_tables(seq, rot, theta, scaling)
    if max(np.abs(got_sin - sin[:, cols]).max(), np.abs(got_cos - cos[:, cols]).max()) > 1e-4:
        raise NotADecoder("the RoPE tables are not a rotation at fixed frequencies per position: the rotary "
                          "embedding is not read")
    return theta, interleaved, rot, scaling


def _explicit(sin: np.ndarray, cos: np.ndarray) -> RopeScaling:
    """The frequencies (float32) and attention factor of tables sin[t, i] = a sin(t f_i), cos[t, i] = a cos(t f_i):
    f_i from the angle at position 1, refined by the angle at the last position (its error shrinks with t)."""
    a = float(cos[0, 0])
    f1 = np.arctan2(sin[1], cos[1])
    t = sin.shape[0] - 1
    last = np.arctan2(sin[t], cos[t])
    f = (last + 2 * np.pi * np.round((f1 * t - last) / (2 * np.pi))) / t
    if not (np.all(np.isfinite(f)) and np.all(f > 0) and math.isfinite(a) and a > 0):
        raise NotADecoder("the RoPE tables do not rotate at positive frequencies")
    return RopeScaling(kind="explicit", attention_factor=float(np.float32(a)),
                       frequencies=tuple(float(x) for x in f.astype(np.float32)))
