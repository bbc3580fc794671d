"""numpy twins of the integer-only language-model kernels (kernels/c/*_i*.c, -q int8; quant/int8.py).

Everything is computed in int64 and must equal the C bit for bit: `>>` is arithmetic (floor),
rshift_round(v, s) = (v + 2^(s-1)) >> s, rdiv rounds half away from zero, isqrt is the exact floor
square root, and results saturate to their storage type."""

from __future__ import annotations

from typing import Any

import numpy as np

from slmc.reference.registry import reference_op

I64 = np.int64


def rshift_round(v: Any, s: int) -> np.ndarray:
    v = np.asarray(v, I64)
    return (v + (I64(1) << I64(s - 1))) >> I64(s) if s > 0 else v


def rdiv(n: Any, d: Any) -> np.ndarray:
    """n / d rounded half away from zero, d > 0."""
    n, d = np.asarray(n, I64), np.asarray(d, I64)
    q = (np.abs(n) + d // 2) // d
    return np.where(n < 0, -q, q)


def isqrt(n: int) -> int:
    import math

    return math.isqrt(max(int(n), 0))


def sat(v: np.ndarray, dtype: Any) -> np.ndarray:
    info = np.iinfo(dtype)
    return np.clip(v, info.min, info.max).astype(dtype)


def lut_interp(lut: np.ndarray, i: np.ndarray, f: np.ndarray) -> np.ndarray:
    """lut[i] + (lut[i+1] - lut[i]) * f / 256, the product rounded half up (f in 0..255)."""
    lo, hi = lut.astype(I64)[i], lut.astype(I64)[i + 1]
    return lo + (((hi - lo) * f + 128) >> 8)


@reference_op("embedding_i8")
def embedding_i8(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    q, m, ids = ins
    g, idx = a["group"], ids.astype(np.int64)
    rows = q[idx].astype(I64).reshape(len(idx), -1, g) * m[idx].astype(I64)[:, :, None]
    return [sat(rshift_round(rows, a["shift"]).reshape(len(idx), -1), np.int32)]


@reference_op("rmsnorm_i")
def rmsnorm_i(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    """`group` (qk-norm per head): each group of that many features normed on its own; the output is int16
    or, where the graph says (a post-norm feeding the residual), int32, divided `up` bits coarser."""
    x, w = ins
    shape, dt = x.shape, np.int32 if a.get("out_bits") == 32 else np.int16
    x = x.reshape(-1, a.get("group") or shape[1])
    out = np.zeros(x.shape, dt)
    for r in range(x.shape[0]):
        xr = x[r].astype(I64)
        ss = int((xr * xr).sum())
        rms = max(1, isqrt(ss // x.shape[1] + a["eps"]))
        up = a.get("up", 0)
        out[r] = sat(rdiv((xr * w.astype(I64)) << I64(a["f_out"] - up), I64(rms) << I64(a["f_w"])) << I64(up), dt)
    return [out.reshape(shape)]


@reference_op("linear_i8")
def linear_i8(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    x, q, m = ins
    if a.get("layout") == "rows4":  # linear_i8_rv32.c's blob order: same values, same sums
        from slmc.quant.int8 import unpack_rows4

        q, m = unpack_rows4(q, m)
    g = a["group"]
    rows, cols = q.shape
    qq = q.astype(I64).reshape(rows, cols // g, g)
    out = []
    for r in range(x.shape[0]):
        acc = (qq * x[r].astype(I64).reshape(1, cols // g, g)).sum(-1)   # int32 per group
        out.append(rshift_round((acc * m.astype(I64)).sum(-1), a["shift"]))
    return [sat(np.stack(out), np.int16 if a["out_bits"] == 16 else np.int32)]


@reference_op("rope_i")
def rope_i(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    x, pos, cos, sin = ins
    hd = a["head_dim"]
    half = a.get("rot_dim", hd) // 2
    n, cols = x.shape
    j = np.arange(half)
    first = (2 * j) if a["interleaved"] else j
    second = first + 1 if a["interleaved"] else j + half
    out = x.copy()  # partial rotary: the features past rot_dim pass through
    for r in range(n):
        c, s = cos[int(pos[0]) + r].astype(I64), sin[int(pos[0]) + r].astype(I64)
        for h in range(0, cols, hd):
            u, v = x[r, h + first].astype(I64), x[r, h + second].astype(I64)
            out[r, h + first] = sat(rshift_round(u * c - v * s, a["frac"]), np.int16)
            out[r, h + second] = sat(rshift_round(u * s + v * c, a["frac"]), np.int16)
    return [out]


def exp2_neg(u: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """2^(-u / 65536) in Q15 for u >= 0."""
    n, r = u >> 16, u & 0xFFFF
    v = lut_interp(lut, r >> 8, r & 0xFF)
    return np.where(n > 30, 0, v >> np.minimum(n, 30))


def softcap_q(z: np.ndarray, lut: np.ndarray, capq: int, step_log2: int, rng: int) -> np.ndarray:
    """cap * tanh(z / 65536) in the format capq holds cap in (slmc_kernels.h's slmc_softcap_q)."""
    return rshift_round(sigmoid_q15(z, 16, lut, step_log2, rng) * I64(capq), 15)


@reference_op("attention_i")
def attention_i(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    """attention_i.c: q narrowed so the scores fit int32, exp2 table softmax, probabilities in Q15."""
    q, kc, vc, pos, lut = ins[:5]
    tanh = ins[5] if len(ins) > 5 else None  # soft-capping (attention_i.c's tanh_lut)
    H, G, hd = a["n_heads"], a["n_kv_heads"], a["head_dim"]
    rep, qs, qm = H // G, a["q_shift"], a["q_max"]
    out = np.zeros(q.shape, np.int16)
    for r in range(q.shape[0]):
        p = int(pos[0]) + r
        p0 = p - a["window"] + 1 if 0 < a.get("window", 0) <= p else 0
        for h in range(H):
            g = h // rep
            k = kc[p0:p + 1, g * hd:(g + 1) * hd].astype(I64)
            v = vc[p0:p + 1, g * hd:(g + 1) * hd].astype(I64)
            s = k @ np.clip(rshift_round(q[r, h * hd:(h + 1) * hd], qs), -qm, qm)
            if tanh is not None:
                s = softcap_q(rshift_round(s * I64(a["cap_m"]), a["cap_shift"]), tanh, a["capq"], a["step_log2"],
                              a["range"])
            t = s.max() - s
            e = exp2_neg(((np.minimum(t, a["t_cap"]) << I64(a["t_shift"])) * I64(a["c"])) >> I64(32), lut)
            e[t >= a["t_cap"]] = 0  # from t_cap on (where attention_attrs clipped it too)
            inv = ((1 << 47) - 1) // int(e.sum())
            pr = (e * I64(inv) + I64(1 << 31)) >> I64(32)
            num = pr @ v
            out[r, h * hd:(h + 1) * hd] = sat(rshift_round(num, 15 + a["f_v"] - a["f_out"]), np.int16)
    return [out]


@reference_op("add_i32")
def add_i32(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    return [sat(ins[0].astype(I64) + ins[1].astype(I64), np.int32)]


def sigmoid_q15(g: np.ndarray, f: int, lut: np.ndarray, step_log2: int, rng: int) -> np.ndarray:
    """sigmoid(g * 2^-f) in Q15 from the table over [-rng, rng) in steps of 2^-step_log2."""
    t = np.clip(g.astype(I64), -(rng << f), (rng << f) - 1) + (rng << f)
    pos = t << step_log2                       # in units of 2^-f table steps
    i = pos >> f
    frac = ((pos & ((1 << f) - 1)) << 8) >> f if f > 0 else np.zeros_like(pos)
    return lut_interp(lut, i, frac)


@reference_op("swiglu_i")
def swiglu_i(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    g, u, lut = ins
    f = a["f_in"]
    sg = sigmoid_q15(g, f, lut, a["step_log2"], a["range"])
    silu = rshift_round(g.astype(I64) * sg, 15)
    return [sat(rshift_round(silu * u.astype(I64), 2 * f - a["f_out"]), np.int16)]


@reference_op("linear_swiglu_i8")
def linear_swiglu_i8(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    """The int8 FFN pair (kernels/ffn_pair.py): swiglu_i(gate, linear_i8(x, q, m), lut); inputs [x, q, m, gate, lut]."""
    x, q, m, gate, lut = ins
    return swiglu_i([gate, linear_i8([x, q, m], a)[0], lut], a)


@reference_op("linear_i8_partial")
def linear_i8_partial(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    """Columns [offset, offset + k) of linear_i8 without the final shift; m: the groups they touch."""
    x, q, m = ins
    k, group, offset = q.shape[1], a["group"], a["offset"]
    g = (offset + np.arange(k)) // group - offset // group
    out = np.zeros((x.shape[0], q.shape[0]), I64)
    for r in range(x.shape[0]):
        prod = q.astype(I64) * x[r].astype(I64)[None, :]               # [rows, k]
        acc = np.zeros((q.shape[0], m.shape[1]), I64)
        for j in range(m.shape[1]):
            acc[:, j] = prod[:, g == j].sum(axis=1)                      # int32 per group
        out[r] = (acc * m.astype(I64)).sum(axis=1)
    return [out]


@reference_op("requant_i64")
def requant_i64(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    return [sat(rshift_round(ins[0], a["shift"]), np.int32)]


from slmc.reference import int_llm_features_ops  # noqa: E402,F401  (the features beyond Llama)
