"""numpy twins of the int8 KV cache (--kv-cache int8): kv_write_i8.c and attention_i8kv.c (attention_i8kv_dsp.c
computes the same bits). Every step is integer arithmetic or one float32 operation per element in the C's
order, so the twin is bit-exact against the C given the same inputs, on every target (IEEE float32 with
contraction off; no libm call: the kernels' exp is their own polynomial, written out here too).

The cache state is int8 [seq_len, n_kv_heads * (head_dim + 2)]: per position and KV head one record of
head_dim int8 values and the record's scale as binary16 (2 bytes, little-endian; SCALE_BYTES), so a record's
values and scale are read together. Quantization as q8's: scale = max|x| / 127 in float32, q = x / scale
rounded half to even (an all-zero head: scale 0, zeros); the scale is stored rounded to binary16 (numpy's
float32 -> float16, nearest even: slmc_i8kv_half) and read back exactly, so attention uses the rounded scale."""

from __future__ import annotations

from typing import Any

import numpy as np

f32 = np.float32
SCALE_BYTES = 2  # a record's scale: binary16 (SLMC_I8KV_SCALE)
LOG2E = f32(1.44269504)
# 2^f on (-1, 0]: degree 4, c0 = 1 exactly (relative error under 4e-6); attention_i8kv.c's I8KV_C1..C4
EXP2_POLY = (f32(0.6930635571479797), f32(0.23945681750774384), f32(0.05322372913360596),
             f32(0.006831980310380459))


def quantize_heads(x: np.ndarray, hd: int) -> tuple[np.ndarray, np.ndarray]:
    """[rows, F] float -> int8 [rows, F], scales f32 [rows, F / hd]: per head, as kv_write_i8.c's i8kv_quantize."""
    g = x.astype(f32).reshape(x.shape[0], -1, hd)
    scale = (np.abs(g).max(axis=2) / f32(127.0)).astype(f32)
    safe = np.where(scale == 0, f32(1), scale).astype(f32)
    q = np.rint((g / safe[:, :, None]).astype(f32))  # the C's (v + 1.5 * 2^23) - 1.5 * 2^23: half to even
    q = np.where(scale[:, :, None] == 0, 0, q)
    return q.astype(np.int8).reshape(x.shape), scale


def pack(q: np.ndarray, s: np.ndarray, hd: int) -> np.ndarray:
    rows = q.shape[0]
    with np.errstate(over="ignore"):
        half = s.astype(f32).astype("<f2")
    rec = np.concatenate([q.reshape(rows, -1, hd), half.reshape(rows, -1, 1).view(np.int8)], axis=2)
    return rec.reshape(rows, -1)


def unpack(cache: np.ndarray, hd: int) -> tuple[np.ndarray, np.ndarray]:
    """int8 [T, n_kv * (hd + 2)] -> values int8 [T, n_kv, hd], scales f32 [T, n_kv] (binary16, exact in float32)."""
    rec = cache.reshape(cache.shape[0], -1, hd + SCALE_BYTES)
    return rec[:, :, :hd], np.ascontiguousarray(rec[:, :, hd:]).view("<f2")[:, :, 0].astype(f32)


def kv_write(cache: np.ndarray, x: np.ndarray, pos: int, hd: int) -> np.ndarray:
    q, s = quantize_heads(x, hd)
    cache[pos:pos + x.shape[0]] = pack(q, s, hd)  # in place: the output aliases the cache state
    return cache


def exp2(x: np.ndarray) -> np.ndarray:
    """slmc_i8kv_exp2 (slmc_kernels.h): 2^x for x <= 0 as 2^n * p(f), x clamped at -125 (fmaxf), n = trunc(x), f = x - n."""
    x = np.fmax(x.astype(f32), f32(-125.0)).astype(f32)
    n = x.astype(np.int32)                                     # C's (int)x: toward zero
    f = (x - n.astype(f32)).astype(f32)
    p = EXP2_POLY[3]
    for c in (EXP2_POLY[2], EXP2_POLY[1], EXP2_POLY[0], f32(1.0)):
        p = (p * f + c).astype(f32)
    two = ((n + 127).astype(np.uint32) << np.uint32(23)).view(f32)
    return (p * two).astype(f32)


def softcap(score: np.ndarray, cap: float) -> np.ndarray:
    """cap * tanh(score / cap), tanh(y) = sign(y) (1 - e) / (1 + e), e = 2^((-2|y|) log2(e)) (slmc_i8kv_softcap)."""
    c = f32(cap)
    y = (score / c).astype(f32)
    e = exp2(((f32(-2.0) * np.abs(y)).astype(f32) * LOG2E).astype(f32))
    r = ((f32(1.0) - e) / (f32(1.0) + e)).astype(f32)
    return (np.where(y < 0, -r, r) * c).astype(f32)


def qmax(count: int) -> int:
    """The largest softmax weight as an integer: 32767, or less where count weights times 127 could overflow int32."""
    return min(32767, 2147483647 // (127 * count))


def attention(q: np.ndarray, kc: np.ndarray, vc: np.ndarray, pos: int, a: dict[str, Any]) -> np.ndarray:
    S = q.shape[0]
    nh, nkv, hd = a["n_heads"], a["n_kv_heads"], a["head_dim"]
    T = pos + S
    qq, sq = quantize_heads(q, hd)                                                 # [S, nh*hd], [S, nh]
    kq, sk = unpack(kc[:T], hd)
    vq, sv = unpack(vc[:T], hd)
    g = nh // nkv
    kq, sk = np.repeat(kq, g, axis=1), np.repeat(sk, g, axis=1)                    # [T, nh, hd], [T, nh]
    vq, sv = np.repeat(vq, g, axis=1), np.repeat(sv, g, axis=1)
    dots = np.einsum("shd,thd->sht", qq.reshape(S, nh, hd).astype(np.int64), kq.astype(np.int64)).astype(np.int32)
    c = (sq / np.sqrt(f32(hd))).astype(f32)                                        # [S, nh]
    if a.get("softcap"):                                                           # natural units, capped
        sc = (dots.astype(f32) * (sk.T[None, :, :] * c[:, :, None]).astype(f32)).astype(f32)
        sc = (softcap(sc, a["softcap"]) * LOG2E).astype(f32)
    else:                                                                          # in units of log2(e)
        c2 = (c * LOG2E).astype(f32)
        sc = (dots.astype(f32) * (sk.T[None, :, :] * c2[:, :, None]).astype(f32)).astype(f32)   # [S, nh, T]
    t, at = np.arange(T)[None, :], (pos + np.arange(S))[:, None]
    seen = t <= at
    if a.get("window"):
        seen &= t > at - a["window"]
    seen = np.broadcast_to(seen[:, None, :], sc.shape)
    mx = np.where(seen, sc, -np.inf).max(axis=-1, keepdims=True).astype(f32)
    e = np.where(seen, exp2((sc - mx).astype(f32)), f32(0.0)).astype(f32)
    total = np.add.accumulate(e, axis=-1, dtype=f32)[..., -1]                      # in position order, as the C
    w = np.where(seen, (e * sv.T[None, :, :]).astype(f32), f32(0.0)).astype(f32)
    wmax = w.max(axis=-1)                                                          # [S, nh]
    count = seen[:, 0, :].sum(axis=-1)                                             # positions each row sees
    qm = np.array([qmax(int(n)) for n in count], dtype=np.int32)[:, None]          # [S, 1]
    live = wmax > 0
    inv = (qm.astype(f32) / np.where(live, wmax, f32(1.0))).astype(f32)
    wq = np.where(seen, ((w * inv[:, :, None]).astype(f32) + f32(0.5)).astype(f32).astype(np.int32), 0)
    acc = np.einsum("sht,thd->shd", wq.astype(np.int64), vq.astype(np.int64)).astype(np.int32)
    fac = ((np.where(live, wmax, f32(0.0)) / qm.astype(f32)).astype(f32) / total).astype(f32)
    fac = np.where(live, fac, f32(0.0)).astype(f32)
    out = (acc.astype(f32) * fac[:, :, None]).astype(f32)
    return out.reshape(S, nh * hd)
