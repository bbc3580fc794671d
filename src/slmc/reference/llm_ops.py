"""numpy twins of the language-model kernels (kernels/c/*.c). float32 throughout, like the C."""

from __future__ import annotations

from typing import Any

import numpy as np

from slmc.quant.npu import unpack_npu
from slmc.quant.q8 import quantize_activations, unpack_rows4, unpack_rows16
from slmc.reference import kv_int8
from slmc.reference.registry import reference_op

f32 = np.float32


@reference_op("embedding")
def embedding(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    table, ids = ins
    return [table[ids.astype(np.int64)].astype(f32)]


@reference_op("embedding_q8")
def embedding_q8(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    q, s, ids = ins
    if a.get("layout") == "rows4":  # a tied table in linear_q8_dsp.c's blob order
        q, s = unpack_rows4(q, s)
    if a.get("layout") == "rows16":  # a tied table in linear_q8_rows16.c's order
        q, s = unpack_rows16(q, s)
    g = a["group"]
    rows = q[ids.astype(np.int64)].astype(f32).reshape(len(ids), -1, g)
    return [(rows * s[ids.astype(np.int64)][:, :, None]).reshape(len(ids), -1).astype(f32)]


@reference_op("pos_embedding")
def pos_embedding(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    table, pos = ins
    p = int(pos[0])
    return [table[p:p + a["_out_shapes"][0][0]].astype(f32)]


@reference_op("rmsnorm")
def rmsnorm(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    """`head_dim`: each group of that many features normed on its own (qk-norm), the weight [head_dim]."""
    x, w = ins
    shape, hd = x.shape, a.get("head_dim", 0)
    if hd:
        x = x.reshape(-1, hd)
    ss = np.mean(x.astype(f32) * x, axis=-1, keepdims=True, dtype=f32) + f32(a["eps"])
    return [(w * (x * (f32(1.0) / np.sqrt(ss)))).astype(f32).reshape(shape)]


@reference_op("layernorm")
def layernorm(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    x, w, b = ins
    mean = np.mean(x, axis=-1, keepdims=True, dtype=f32)
    var = np.mean((x - mean) ** 2, axis=-1, keepdims=True, dtype=f32)
    return [((x - mean) / np.sqrt(var + f32(a["eps"])) * w + b).astype(f32)]


@reference_op("linear")
def linear(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    x, w = ins[0], ins[1]
    y = (x.astype(np.float64) @ w.astype(np.float64).T)
    if len(ins) > 2 and ins[2] is not None:
        y = y + ins[2]
    return [y.astype(f32)]


@reference_op("quantize_q8")
def quantize_q8(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    q, s = quantize_activations(ins[0], a["group"])
    return [q, s]


@reference_op("linear_q8")
def linear_q8(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    xq, xs, wq, ws = ins[:4]
    if a.get("layout") == "rows4":  # the blob order of linear_q8_dsp.c: same values, same sums
        wq, ws = unpack_rows4(wq, ws)
    if a.get("layout") == "rows16":  # linear_q8_rows16.c's order (a batched host step): same values, same sums
        wq, ws = unpack_rows16(wq, ws)
    if a.get("layout") == "npu":  # the NPU's bit-planes (quant/npu.py): same values, same sums
        wq = unpack_npu(wq, xq.shape[-1])
    g = a["group"]
    S, K = xq.shape
    N = wq.shape[0]
    # integer dot product per group (exact), then rescaled by both scales, summed in group order
    xi = xq.astype(np.int32).reshape(S, 1, K // g, g)
    wi = wq.astype(np.int32).reshape(1, N, K // g, g)
    dots = (xi * wi).sum(axis=-1, dtype=np.int32)  # [S, N, G]
    terms = dots.astype(f32) * ws[None, :, :] * xs[:, None, :]
    y = np.zeros((S, N), dtype=f32)
    for gi in range(K // g):
        y = (y + terms[:, :, gi]).astype(f32)
    if len(ins) > 4 and ins[4] is not None:
        y = (y + ins[4]).astype(f32)
    return [y]


@reference_op("rope")
def rope(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    """`rot_dim` (partial rotary): the first rot_dim features of each head turn, the rest pass through."""
    x, pos, cos, sin = ins
    S, F = x.shape
    hd = a["head_dim"]
    rot = a.get("rot_dim", hd)
    p0 = int(pos[0])
    c = cos[p0:p0 + S][:, None, :]
    s = sin[p0:p0 + S][:, None, :]
    out = x.reshape(S, F // hd, hd).copy()
    v = out[..., :rot]
    if a["interleaved"]:
        x0, x1 = v[..., 0::2], v[..., 1::2]
    else:
        x0, x1 = v[..., : rot // 2], v[..., rot // 2:]
    y0 = x0 * c - x1 * s
    y1 = x0 * s + x1 * c
    if a["interleaved"]:
        v[..., 0::2], v[..., 1::2] = y0, y1
    else:
        v[..., : rot // 2], v[..., rot // 2:] = y0, y1
    return [out.reshape(S, F).astype(f32)]


@reference_op("kv_write")
def kv_write(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    cache, x, pos = ins
    p = int(pos[0])
    if cache.dtype == np.int8:  # int8 storage: records of head_dim values and a scale (kv_write_i8.c)
        return [kv_int8.kv_write(cache, x, p, x.shape[1] // ((cache.shape[1] - x.shape[1]) // kv_int8.SCALE_BYTES))]
    if cache.dtype == np.uint16:  # fp16 storage: binary16 bits, rounded to nearest even like kv_write_f16.c
        with np.errstate(over="ignore"):
            x = x.astype(f32).astype(np.float16).view(np.uint16)
    cache[p:p + x.shape[0]] = x  # in place: the output aliases the cache state
    return [cache]


@reference_op("attention")
def attention(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    q, kc, vc, pos = ins
    if kc.dtype == np.int8:  # int8 storage, integer attention (attention_i8kv.c)
        return [kv_int8.attention(q, kc, vc, int(pos[0]), a)]
    if kc.dtype == np.uint16:  # fp16 storage (attention_f16kv.c): every half converts to float exactly
        kc, vc = kc.view(np.float16).astype(f32), vc.view(np.float16).astype(f32)
    S = q.shape[0]
    nh, nkv, hd = a["n_heads"], a["n_kv_heads"], a["head_dim"]
    p0 = int(pos[0])
    T = p0 + S
    qh = q.reshape(S, nh, hd).transpose(1, 0, 2)                                   # [nh, S, hd]
    kh = np.repeat(kc[:T].reshape(T, nkv, hd).transpose(1, 0, 2), nh // nkv, 0)   # [nh, T, hd]
    vh = np.repeat(vc[:T].reshape(T, nkv, hd).transpose(1, 0, 2), nh // nkv, 0)
    sc = (qh @ kh.transpose(0, 2, 1)) / np.sqrt(f32(hd))                           # [nh, S, T]
    if a.get("softcap"):                                                           # Gemma 2
        cap = f32(a["softcap"])
        sc = (np.tanh((sc / cap).astype(f32)) * cap).astype(f32)
    t, at = np.arange(T)[None, :], (p0 + np.arange(S))[:, None]
    seen = t <= at                                                                 # token s sees 0..p0+s
    if a.get("window"):                                                            # ... its last `window` of them
        seen &= t > at - a["window"]
    sc = np.where(seen, sc, -np.inf)
    e = np.exp(sc - sc.max(axis=-1, keepdims=True))
    out = (e / e.sum(axis=-1, keepdims=True)) @ vh                                 # [nh, S, hd]
    return [out.transpose(1, 0, 2).reshape(S, nh * hd).astype(f32)]


@reference_op("add")
def add(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    return [(ins[0] + ins[1]).astype(f32)]


@reference_op("swiglu")
def swiglu(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    g, u = ins
    return [(g * (f32(1.0) / (f32(1.0) + np.exp(-g))) * u).astype(f32)]


@reference_op("linear_swiglu")
def linear_swiglu(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    """linear_swiglu_f32.c: swiglu(gate, linear(x, w, b)); inputs [x, w, b or None, gate]."""
    x, w, b, gate = ins
    return swiglu([gate, linear([x, w, b], a)[0]], a)


@reference_op("linear_swiglu_q8")
def linear_swiglu_q8(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    """The q8 FFN pair (kernels/ffn_pair.py): swiglu(gate, linear_q8(xq, xs, wq, ws, b)); inputs [xq, xs, wq, ws,
    b or None, gate]."""
    xq, xs, wq, ws, b, gate = ins
    return swiglu([gate, linear_q8([xq, xs, wq, ws, b], a)[0]], a)


@reference_op("linear_q8_by_row")
def linear_q8_by_row(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    """linear_q8 run one token row at a time (kernels/ffn_pair.py): the same values."""
    return linear_q8(ins, a)


@reference_op("quantize_linear_q8")
def quantize_linear_q8(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    """quantize_q8 then linear_q8, row by row (kernels/ffn_pair.py); inputs [x, wq, ws[, b]]."""
    xq, xs = quantize_q8([ins[0]], a)
    return linear_q8([xq, xs, *ins[1:]], a)


@reference_op("gelu")
def gelu(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    return [_gelu64(ins[0], bool(a.get("approximate"))).astype(f32)]


def _gelu64(x: np.ndarray, approximate: bool) -> np.ndarray:
    x = x.astype(np.float64)
    if approximate:
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    from math import erf

    return 0.5 * x * (1 + np.vectorize(erf)(x / np.sqrt(2)))


@reference_op("geglu")
def geglu(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    """gelu(gate) * up (geglu_f32.c)."""
    g, u = ins
    return [(_gelu64(g, bool(a.get("approximate"))).astype(f32) * u).astype(f32)]


@reference_op("relu")
def relu(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    return [np.maximum(ins[0], f32(0.0)).astype(f32)]


@reference_op("silu")
def silu(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    x = ins[0]
    return [(x * (f32(1.0) / (f32(1.0) + np.exp(-x)))).astype(f32)]


@reference_op("scale")
def scale(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    return [(ins[0] * f32(a["factor"])).astype(f32)]


@reference_op("softcap")
def softcap(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    cap = f32(a["cap"])
    return [(np.tanh((ins[0] / cap).astype(f32)) * cap).astype(f32)]
