"""RoPE cos/sin tables for a DecoderConfig, with the frequency scalings of transformers' modeling_rope_utils.

`rope_tables(cfg)` is the one place the builders get their tables from. Without scaling it is llama2.c's
computation in float32 (run.c computes the same values at run time), step for step what build.py has always
done. With scaling, each kind follows transformers' float32 tensor arithmetic operation by operation
(`a / t` on a tensor is `t.reciprocal() * a` there, and Python scalars are rounded to float32 first), so the
tables agree with transformers' rotary embedding to the last bit or two.

Kinds, and why each is exact as one static table:
- linear: inv_freq / factor, for every position.
- llama3 (Llama 3.1/3.2): low frequencies divided by factor, high ones kept, a smooth ramp between; static.
- yarn: a ramp between interpolated and extrapolated frequencies, cos and sin times attention_factor; static.
- dynamic (NTK): transformers recomputes the base only once a sequence grows past max_position_embeddings;
  below that the tables are the unscaled ones (the base formula gives the base itself). DecoderConfig
  refuses a longer context.
- longrope (Phi-3 128k): short_factor up to original_max_position_embeddings, long_factor beyond, switched
  for the whole sequence by its current length: static only up to that length, which DecoderConfig enforces.
- explicit: the inverse frequencies (and attention factor) as given, read from the cos/sin tables an ONNX
  exporter baked into the graph (frontend/onnx_positions.py): whatever scaling made them, the graph's.
"""

from __future__ import annotations

import math

import numpy as np

from slmc.frontend.decoder import DecoderConfig, RopeScaling

F32 = np.float32


def rope_tables(cfg: DecoderConfig) -> tuple[np.ndarray, np.ndarray]:
    """cos/sin float32 [seq_len, rot_dim/2]: row p, column i is the rotation of frequency i at position p
    (rot_dim: the head size, or the rotated part of it with partial rotary, whose frequencies it spans)."""
    return tables(cfg.seq_len, cfg.rot_dim, cfg.rope_theta, cfg.rope_scaling)


def tables(seq_len: int, head_dim: int, theta: float, scaling: RopeScaling = RopeScaling()
           ) -> tuple[np.ndarray, np.ndarray]:
    """rope_tables without a DecoderConfig (the ONNX importer checks a graph's tables against these)."""
    freq = inv_freq(head_dim, theta, scaling)
    val = (np.arange(seq_len, dtype=F32)[:, None] * freq[None, :]).astype(F32)
    cos = np.cos(val.astype(np.float64)).astype(F32)
    sin = np.sin(val.astype(np.float64)).astype(F32)
    af = scaling.attention_factor
    if af != 1.0:
        cos, sin = (cos * F32(af)).astype(F32), (sin * F32(af)).astype(F32)
    return cos, sin


def inv_freq(head_dim: int, theta: float, s: RopeScaling = RopeScaling()) -> np.ndarray:
    """Inverse frequencies float32 [head_dim/2] after the scaling `s`."""
    if s.kind == "dynamic":
        theta = _dynamic_base(head_dim, theta, s)
    pos = _theta_powers(head_dim, theta)
    base = (F32(1.0) / pos).astype(F32)
    if s.kind in ("none", "dynamic"):
        return base
    if s.kind == "linear":
        return (base / F32(s.factor)).astype(F32)
    if s.kind == "llama3":
        return _llama3(base, s)
    if s.kind == "yarn":
        return _yarn(head_dim, theta, pos, s)
    if s.kind == "longrope":
        return (F32(1.0) / (np.asarray(s.short_factor, F32) * pos)).astype(F32)
    if s.kind == "explicit":
        return np.asarray(s.frequencies, F32)
    raise AssertionError(s.kind)  # DecoderConfig.validate admits only the kinds above


def _theta_powers(head_dim: int, theta: float) -> np.ndarray:
    """theta ** (2i / head_dim) in float32, the power taken in float64 (as llama2.c's run.c does in C)."""
    j = np.arange(0, head_dim, 2, dtype=F32) / F32(head_dim)
    return np.power(np.float64(theta), j.astype(np.float64)).astype(F32)


def _dynamic_base(head_dim: int, theta: float, s: RopeScaling) -> float:
    # transformers' _compute_dynamic_ntk_parameters at seq_len = max_position_embeddings (what it uses at
    # every length up to that): the ratio is 1, so the base stays; computed the same way all the same
    mpe = s.original_max_positions
    ratio = (s.factor * mpe / mpe) - (s.factor - 1)
    return theta if ratio == 1.0 or head_dim <= 2 else theta * ratio ** (head_dim / (head_dim - 2))


def _llama3(inv: np.ndarray, s: RopeScaling) -> np.ndarray:
    factor, old = F32(s.factor), F32(s.original_max_positions)
    low_wl = F32(s.original_max_positions / s.low_freq_factor)
    high_wl = F32(s.original_max_positions / s.high_freq_factor)
    wavelen = ((F32(1.0) / inv) * F32(2 * math.pi)).astype(F32)
    scaled = np.where(wavelen > low_wl, (inv / factor).astype(F32), inv)
    smooth = (((F32(1.0) / wavelen) * old - F32(s.low_freq_factor)) / F32(s.high_freq_factor - s.low_freq_factor))
    smooth = smooth.astype(F32)
    smoothed = (((F32(1.0) - smooth) * scaled) / factor + smooth * scaled).astype(F32)
    medium = ~(wavelen < high_wl) & ~(wavelen > low_wl)
    return np.where(medium, smoothed, scaled).astype(F32)


def _yarn(head_dim: int, theta: float, pos: np.ndarray, s: RopeScaling) -> np.ndarray:
    extrapolation = (F32(1.0) / pos).astype(F32)
    interpolation = (F32(1.0) / (pos * F32(s.factor))).astype(F32)

    def correction_dim(rotations: float) -> float:
        return (head_dim * math.log(s.original_max_positions / (rotations * 2 * math.pi))) / (2 * math.log(theta))

    low, high = correction_dim(s.beta_fast), correction_dim(s.beta_slow)
    if s.truncate:
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, head_dim - 1)
    if low == high:
        high += 0.001  # transformers' guard against a zero-width ramp
    ramp = np.clip((np.arange(head_dim // 2, dtype=F32) - F32(low)) / F32(high - low), 0, 1).astype(F32)
    extra = (F32(1.0) - ramp).astype(F32)
    return (interpolation * (F32(1.0) - extra) + extrapolation * extra).astype(F32)


def yarn_attention_factor(factor: float, mscale: float | None, mscale_all_dim: float | None) -> float:
    """transformers' default YaRN attention factor (when config.json gives none)."""
    def get(scale: float, m: float = 1.0) -> float:
        return 1.0 if scale <= 1 else 0.1 * m * math.log(scale) + 1.0

    if mscale and mscale_all_dim:
        return float(get(factor, mscale) / get(factor, mscale_all_dim))
    return get(factor)


def longrope_attention_factor(factor: float, original_max_positions: int) -> float:
    """transformers' default LongRoPE attention factor (when config.json gives none)."""
    return 1.0 if factor <= 1.0 else math.sqrt(1 + math.log(factor) / math.log(original_max_positions))
