"""numpy twins of the multi-chip operators (kernels/link.py).

A collective has inputs on every chip, so its twin takes all of them: `COLLECTIVES[op](ins, attrs,
children, shape)` (per chip: its node's inputs and attributes) returns every chip's output, combining
in the order the link runtime does (children in the plan's order), so it is bit-identical to the C.
`reference/multichip.py` runs the chips' graphs in lockstep through them. Registered as
single-graph operators, a collective is the group of one chip: what a one-chip build computes.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from slmc.quant.q8 import round_half_away
from slmc.reference.registry import reference_op

f32 = np.float32
Tree = Sequence[Sequence[int]]  # children of every chip, in the order their messages are combined


def _tree_combine(parts: list[np.ndarray], children: Tree, combine: Callable[[np.ndarray, np.ndarray], np.ndarray]):
    dt = parts[0].dtype  # float32, or int64 (the partial sums of -q int8: exact in any order)

    def up(chip: int) -> np.ndarray:
        acc = parts[chip].astype(dt).copy()
        for c in children[chip]:
            acc = combine(acc, up(c)).astype(dt)
        return acc
    return up(0)


def _with_zeros(parts: list["np.ndarray | None"], shape: tuple[int, ...]) -> list[np.ndarray]:
    dt = next((np.asarray(p).dtype for p in parts if p is not None), np.dtype(f32))
    dt = dt if dt.kind in "iu" else np.dtype(f32)
    return [np.zeros(shape, dt) if p is None else np.asarray(p, dt) for p in parts]


def allreduce_sum(parts: list["np.ndarray | None"], children: Tree, shape: tuple[int, ...]) -> list[np.ndarray]:
    total = _tree_combine(_with_zeros(parts, shape), children, lambda a, b: a + b)
    return [total.copy() for _ in parts]


def allreduce_max(parts: list["np.ndarray | None"], children: Tree, shape: tuple[int, ...]) -> list[np.ndarray]:
    top = _tree_combine(_with_zeros(parts, shape), children, np.maximum)
    return [top.copy() for _ in parts]


def broadcast(parts: list["np.ndarray | None"], children: Tree, shape: tuple[int, ...]) -> list[np.ndarray]:
    assert parts[0] is not None, "chip 0 holds what is broadcast"
    p0 = np.asarray(parts[0])
    return [p0.astype(p0.dtype if p0.dtype.kind in "iu" else f32).copy() for _ in parts]


def _first(op):
    def fn(ins: list[list[Any]], attrs: list[dict], children: Tree, shape: tuple[int, ...]) -> list[np.ndarray]:
        return op([i[0] if i else None for i in ins], children, shape)
    return fn


def _segments(offset: int, k: int, group: int) -> list[tuple[int, int, bool, bool]]:
    """(local start, local stop, starts its group, ends its group) of each group a chip's columns touch."""
    out, g = [], offset // group
    while g * group < offset + k:
        a, b = max(g * group, offset), min((g + 1) * group, offset + k)
        out.append((a - offset, b - offset, g * group >= offset, (g + 1) * group <= offset + k))
        g += 1
    return out


def fold_q8(ins: list[list[Any]], attrs: list[dict], children: Tree, shape: tuple[int, ...]) -> list[np.ndarray]:
    """linear_q8's float half over the chips in depth-first order of the tree (the chips' column order)."""
    val = np.zeros(shape, f32)
    carry = np.zeros(shape, np.int64)

    def visit(chip: int) -> None:
        nonlocal val, carry
        dots, ws, xs = (ins[chip] + [None] * 4)[:3]
        if dots is not None:
            a = attrs[chip]
            for g, (_, _, starts, ends) in enumerate(_segments(a["offset"], a["k"], a["group"])):
                ival = dots[:, :, g].astype(np.int64) + (0 if starts else carry)
                if ends:
                    term = ((ival.astype(np.int32).astype(f32) * ws[None, :, g]).astype(f32) * xs[:, None, g]).astype(f32)
                    val = (val + term).astype(f32)
                    carry = np.zeros(shape, np.int64)
                else:
                    carry = ival
        for c in children[chip]:
            visit(c)

    visit(0)
    bias = ins[0][3] if len(ins[0]) > 3 else None
    out = (val + (bias if bias is not None else f32(0))).astype(f32)
    return [out.copy() for _ in ins]


COLLECTIVES: dict[str, Callable[..., list[np.ndarray]]] = {
    "allreduce_sum": _first(allreduce_sum), "allreduce_max": _first(allreduce_max), "broadcast": _first(broadcast),
    "fold_q8": fold_q8}


def _one_chip(op: str):
    def fn(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
        return COLLECTIVES[op]([list(ins)], [a], [[]], tuple(a["_out_shapes"][0]))[:1]
    return fn


for _op in COLLECTIVES:
    reference_op(_op)(_one_chip(_op))


@reference_op("q8_absmax")
def q8_absmax(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    x = ins[0].astype(f32)
    S, k = x.shape
    out = np.zeros(a["_out_shapes"][0], f32)
    groups = (a["offset"] + np.arange(k)) // a["group"]
    for g in np.unique(groups):
        out[:, g] = np.abs(x[:, groups == g]).max(axis=1)
    return [out]


@reference_op("quantize_q8_scaled")
def quantize_q8_scaled(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    x, amax = ins[0].astype(f32), ins[1].astype(f32)
    S, k = x.shape
    segs = _segments(a["offset"], k, a["group"])
    first = a["offset"] // a["group"]
    scale = (amax[:, first:first + len(segs)] / f32(127.0)).astype(f32)            # [S, segments]
    full = np.concatenate([np.repeat(scale[:, g:g + 1], b - a_, axis=1) for g, (a_, b, _, _) in enumerate(segs)], axis=1)
    safe = np.where(full == 0, f32(1), full).astype(f32)
    q = np.where(full == 0, 0, round_half_away((x / safe).astype(f32)))
    return [q.astype(np.int8), scale]


@reference_op("linear_q8_dots")
def linear_q8_dots(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    xq, wq = ins[0].astype(np.int64), ins[1].astype(np.int64)
    segs = _segments(a["offset"], xq.shape[1], a["group"])
    return [np.stack([(xq[:, None, s:e] * wq[None, :, s:e]).sum(-1)
                      for s, e, _, _ in segs], axis=-1).astype(np.int32)]
