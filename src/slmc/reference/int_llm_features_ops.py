"""numpy twins of the integer-only kernels of the decoder features beyond Llama (-q int8; kernels/c:
layernorm_i.c, bias_i.c, scale_i.c, gelu_i.c, relu_i.c, narrow_i.c, softcap_i.c, pos_embedding_i8.c), in
int64 and bit-identical to the C, with int_llm_ops.py's rounding helpers. (rmsnorm_i per head and into int32,
rope_i's partial rotary and attention_i's window and soft-cap are in int_llm_ops.py with their kernels.)"""

from __future__ import annotations

from typing import Any

import numpy as np

from slmc.reference.int_llm_ops import I64, isqrt, rdiv, rshift_round, sat, sigmoid_q15, softcap_q
from slmc.reference.registry import reference_op


@reference_op("layernorm_i")
def layernorm_i(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    x, w, b = ins
    dim = x.shape[1]
    out = np.zeros(x.shape, np.int16)
    for r in range(x.shape[0]):
        xr = x[r].astype(I64)
        d = xr - int(rdiv(int(xr.sum()), dim))
        sd = max(1, isqrt(int((d * d).sum()) // dim + a["eps"]))
        y = rdiv((d * w.astype(I64)) << I64(a["f_out"]), I64(sd) << I64(a["f_w"])) + b.astype(I64)
        out[r] = sat(y, np.int16)
    return [out]


@reference_op("bias_i")
def bias_i(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    x, b = ins
    return [sat(x.astype(I64) + b.astype(I64)[None, :], np.int16 if a["out_bits"] == 16 else np.int32)]


@reference_op("scale_i")
def scale_i(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    return [sat(rshift_round(ins[0].astype(I64) * I64(a["m"]), a["shift"]), np.int32)]


@reference_op("gelu_i")
def gelu_i(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    g, lut = ins
    phi = sigmoid_q15(g, a["f_in"], lut, a["step_log2"], a["range"])  # the same grid, Phi's table
    return [sat(rshift_round(g.astype(I64) * phi, 15 + a["f_in"] - a["f_out"]), np.int16)]


@reference_op("relu_i")
def relu_i(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    v, s = np.maximum(ins[0].astype(I64), 0), a["f_in"] - a["f_out"]
    return [sat(rshift_round(v, s) if s >= 0 else v << I64(-s), np.int16)]


@reference_op("softcap_i")
def softcap_i(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    x, lut = ins
    z = rshift_round(x.astype(I64) * I64(a["m"]), a["shift"])
    return [sat(softcap_q(z, lut, a["capq"], a["step_log2"], a["range"]), np.int32)]


@reference_op("narrow_i")
def narrow_i(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    v, s = ins[0].astype(I64), a["f_in"] - a["f_out"]
    return [sat(rshift_round(v, s) if s >= 0 else v << I64(-s), np.int16)]


@reference_op("pos_embedding_i8")
def pos_embedding_i8(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    q, m, pos = ins
    n, g = a["_out_shapes"][0][0], a["group"]
    idx = int(pos[0]) + np.arange(n)
    rows = q[idx].astype(I64).reshape(n, -1, g) * m[idx].astype(I64)[:, :, None]
    return [sat(rshift_round(rows, a["shift"]).reshape(n, -1), np.int32)]
