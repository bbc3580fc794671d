"""int8: integer-only inference of a language model (`slmc compile MODEL -q int8`).

Post-training quantization: the fp32 model runs on calibration sequences through slmc's own reference
interpreter; the largest magnitude of every activation picks its fixed-point format (a power-of-two
scale, so adds need no rescaling), with a 25% margin. Weights are int8 in the q8 groups (64, halved
until the group divides the row); each (row, group) scale becomes an integer multiplier with a shared
right shift, so a matrix product is int8 x int16 products summed per group in int32, multiplied by
the group's multiplier and summed in int64. Formats (F = fractional bits, value = integer * 2^-F):

- residual stream: int32, one format `fx` for the whole network
- norm outputs, q/k/v and the KV cache, attention and FFN outputs: int16, a format per tensor and layer
- gate/up products: int32; logits: int32 with `fl` fractional bits

Non-linear functions use integer forms with the same semantics in C and numpy (reference/int_llm_ops.py):
RMSNorm with an exact integer square root, softmax with exp2 from a 257-entry Q15 table and linear
interpolation, SiLU with a sigmoid table over [-8, 8) in steps of 1/32 (GELU and GeGLU: the same grid
holding Phi(x), so gelu(x) = x * Phi(x)), LayerNorm like RMSNorm around an integer mean, RoPE with Q14
cos/sin tables, soft-capping cap * tanh(v / cap) with a tanh table on the sigmoid's grid. Biases are
int32 in their output's format, added after the product; a multiplier (Gemma's and Granite's) is an
integer multiplier and a shift, except q's attention scale, which attention_i's softmax constant takes.
Division rounds half away from zero; right shifts round half up.

This module holds the numerics (formats, integer weights, tables, blob order) the builder, the kernels
and the numpy twins share; calibration, which runs the fp32 model, is frontend/calibrate.py."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from slmc.errors import SlmcError
from slmc.quant.q8 import Q8Tensor, ensure_q8, pack_rows, unpack_rows

MARGIN = 1.25
EXP2_LUT = np.round(2.0 ** (-np.arange(257) / 256) * 2 ** 15).astype(np.int32)  # 2^(-i/256), Q15
SIGMOID_STEP_LOG2 = 5          # table step 1/32
SIGMOID_RANGE = 8              # table over [-8, 8)
SIGMOID_LUT = np.round(1 / (1 + np.exp(-np.arange(-SIGMOID_RANGE << SIGMOID_STEP_LOG2,
                                                  (SIGMOID_RANGE << SIGMOID_STEP_LOG2) + 1) / 32)) * 2 ** 15).astype(np.int32)
# GELU's Phi(x) (x * Phi(x) = gelu(x)) on the sigmoid table's grid, Q15: erf (exact GELU) and tanh forms
_GRID = np.arange(-SIGMOID_RANGE << SIGMOID_STEP_LOG2, (SIGMOID_RANGE << SIGMOID_STEP_LOG2) + 1) / 32
_ERF = np.vectorize(__import__("math").erf)
GELU_LUT = np.round(0.5 * (1 + _ERF(_GRID / np.sqrt(2))) * 2 ** 15).astype(np.int32)
GELU_TANH_LUT = np.round(0.5 * (1 + np.tanh(np.sqrt(2 / np.pi) * (_GRID + 0.044715 * _GRID ** 3))) * 2 ** 15
                         ).astype(np.int32)
TANH_LUT = np.round(np.tanh(_GRID) * 2 ** 15).astype(np.int32)  # soft-capping: tanh on the same grid, Q15
CAP_FRAC = 16                  # soft-capping: score / cap (or logit / cap) in Q16 before the tanh table
CAP_MULT_BITS = 20             # its multiplier stays below 2^20 (scores up to 2^38 times it fit int64)
ROPE_FRAC = 14
MULT_BITS = 24                 # integer multipliers of the matrix products stay below 2^24


def frac_bits(maxabs: float, bits: int, cap: int = 24) -> int:
    """Fractional bits of a signed `bits`-bit integer holding magnitudes up to maxabs * MARGIN."""
    if not np.isfinite(maxabs):
        raise SlmcError("an activation is not finite on the calibration data", "check the model's weights")
    maxabs = max(maxabs, 1e-6)
    return int(min(cap, np.floor(np.log2((2 ** (bits - 1) - 1) / (maxabs * MARGIN)))))


@dataclass(frozen=True)
class IntWeights:
    """int8 weights in groups with integer multipliers: y = (sum_g acc_g * m[r, g] + 2^(shift-1)) >> shift."""
    q: np.ndarray      # int8 [rows, cols]
    m: np.ndarray      # int32 [rows, cols // group]
    group: int
    shift: int


def int_weights(w: "np.ndarray | Q8Tensor", f_in: int, f_out: int) -> IntWeights:
    """The q8 groups of w with each scale s turned into round(s * 2^(f_out - f_in + shift))."""
    t = ensure_q8(w)
    real = t.s.astype(np.float64) * 2.0 ** (f_out - f_in)
    top = float(real.max()) if real.size else 1.0
    shift = int(np.floor(np.log2((2 ** MULT_BITS - 1) / max(top, 1e-30))))
    if shift < 1:
        raise SlmcError(f"a weight scale is too large for integer-only form (shift {shift})",
                        "use -q q8 for this model")
    return IntWeights(t.q.astype(np.int8), np.round(real * 2.0 ** shift).astype(np.int32), t.group, min(shift, 62))


@dataclass(frozen=True)
class LayerFormats:
    attn_norm: int     # attention RMSNorm output (int16)
    qk: int            # q and k, before and after RoPE, and the key cache (int16)
    v: int             # v, the value cache and the attention output (int16)
    ffn_norm: int      # FFN RMSNorm output (int16)
    gate: int          # w1 and w3 outputs (int32)
    hidden: int        # SwiGLU output (int16)
    qk_raw: int = 0    # with qk-norm: q and k before it (int32 holding 24 bits: sums of squares fit int64)


@dataclass(frozen=True)
class Formats:
    x: int                              # residual stream (int32)
    final_norm: int                     # final RMSNorm output (int16)
    logits: int                         # int32
    x16: int = 0                        # the residual read as int16 by a projection with no norm before it
    layers: tuple[LayerFormats, ...] = field(default_factory=tuple)


def pack_rows4(q: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """linear_i8_rv32.c's blob order (the "rows4" order of quant/q8.py, multipliers kept int32): rows in
    blocks of four, [block][k/4][row][4 bytes], multipliers [block][group][row]; leftover rows row-major."""
    if m.size and (m.min() < 0 or m.max() >= 2 ** MULT_BITS):  # linear_i8_rv32.c's group-4 path relies on it
        raise SlmcError(f"an int8 multiplier lies outside [0, 2^{MULT_BITS})", "re-quantize the model with -q int8")
    return pack_rows(q, m, 4)


def unpack_rows4(q: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return unpack_rows(q, m, 4)
