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
interpolation, SiLU with a sigmoid table over [-8, 8) in steps of 1/32, RoPE with Q14 cos/sin tables.
Division rounds half away from zero; right shifts round half up."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from slmc.errors import SlmcError
from slmc.frontend.decoder import DecoderModel, Q8Tensor
from slmc.ir import ValueKind
from slmc.quant.q8 import ensure_q8

MARGIN = 1.25
EXP2_LUT = np.round(2.0 ** (-np.arange(257) / 256) * 2 ** 15).astype(np.int32)  # 2^(-i/256), Q15
SIGMOID_STEP_LOG2 = 5          # table step 1/32
SIGMOID_RANGE = 8              # table over [-8, 8)
SIGMOID_LUT = np.round(1 / (1 + np.exp(-np.arange(-SIGMOID_RANGE << SIGMOID_STEP_LOG2,
                                                  (SIGMOID_RANGE << SIGMOID_STEP_LOG2) + 1) / 32)) * 2 ** 15).astype(np.int32)
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


@dataclass(frozen=True)
class Formats:
    x: int                              # residual stream (int32)
    final_norm: int                     # final RMSNorm output (int16)
    logits: int                         # int32
    layers: tuple[LayerFormats, ...] = field(default_factory=tuple)


def _check_supported(model: DecoderModel) -> None:
    cfg = model.config
    if cfg.norm != "rms" or cfg.ffn != "swiglu" or cfg.pos != "rope":
        raise SlmcError("-q int8 supports Llama-style models (RMSNorm, SwiGLU, RoPE) only",
                        "use -q q8 or -q fp32 for this model")
    if model.bcls is not None or any(getattr(lw, b) is not None for lw in model.layers
                                     for b in ("bq", "bk", "bv", "bo", "b1", "b2", "b3")):
        raise SlmcError("-q int8 does not support biases in the projections yet", "use -q q8 or -q fp32")


def calibration_ids(model: DecoderModel, sequences: int = 2, length: int = 64, seed: int = 1234) -> list[list[int]]:
    """Data-free calibration: the fp32 model's own sampled text (temperature 1) from BOS, seeded."""
    from slmc.frontend.build import build_step_graph
    from slmc.reference.interp import new_state, run

    g = build_step_graph(model, 1, "fp32")
    rng = np.random.default_rng(seed)
    out = []
    length = min(length, model.config.seq_len)
    for _ in range(sequences):
        state, ids = new_state(g), [1]
        for p in range(length - 1):
            logits = run(g, {"tokens": np.array([ids[-1]], np.int32), "pos": np.array([p], np.int32)}, state)
            z = logits[g.outputs[0].name][0].astype(np.float64)
            pr = np.exp(z - z.max())
            ids.append(int(rng.choice(len(pr), p=pr / pr.sum())))
        out.append(ids)
    return out


def calibrate(model: DecoderModel, sequences: list[list[int]]) -> Formats:
    """Largest magnitude of every activation over the sequences (fp32 reference) -> formats."""
    from slmc.frontend.build import build_step_graph
    from slmc.reference.interp import new_state, run

    cfg = model.config
    _check_supported(model)
    g = build_step_graph(model, 1, "fp32")
    out_name = g.outputs[0].name
    mx: dict[str, float] = {}
    for ids in sequences:
        state = new_state(g)
        for p, t in enumerate(ids):
            env = run(g, {"tokens": np.array([t], np.int32), "pos": np.array([p], np.int32)}, state, keep=True)
            for k, v in env.items():
                if g.values[k].kind == ValueKind.TEMP and v.dtype == np.float32 and v.size:
                    mx[k] = max(mx.get(k, 0.0), float(np.abs(v).max()))

    def m(*names: str) -> float:
        return max(mx[n] for n in names)

    layers = []
    resid = ["x"]
    for i in range(cfg.n_layers):
        p = f"layers.{i}"
        resid += [f"{p}.x_att", f"{p}.x_ffn", f"{p}.wo_out", f"{p}.w2_out"]
        layers.append(LayerFormats(
            attn_norm=frac_bits(m(f"{p}.attn_norm_out"), 16), qk=frac_bits(m(f"{p}.wq_out", f"{p}.wk_out", f"{p}.q_rot",
                                                                             f"{p}.k_rot"), 16),
            v=frac_bits(m(f"{p}.wv_out", f"{p}.att"), 16), ffn_norm=frac_bits(m(f"{p}.ffn_norm_out"), 16),
            gate=frac_bits(m(f"{p}.w1_out", f"{p}.w3_out"), 16), hidden=frac_bits(m(f"{p}.ffn_act"), 16)))
    # the residual: int32 with room for RMSNorm's sum of squares in int64 (dim * x^2 < 2^62)
    x_max = m(*resid) * MARGIN
    fx = int(min(24, np.floor((62 - np.log2(cfg.dim)) / 2 - np.log2(x_max)), frac_bits(m(*resid), 32)))
    return Formats(x=fx, final_norm=frac_bits(m("final_norm_out"), 16), logits=frac_bits(m(out_name), 32, cap=16),
                   layers=tuple(layers))


_FORMATS: dict[int, tuple[object, Formats]] = {}


def formats_for(model: DecoderModel) -> Formats:
    """Calibrated formats of a model, cached by its embedding table (a compile that cuts the context
    rebuilds the graph of the same weights); a weak reference makes sure the id still names that table."""
    import weakref

    key = id(model.tok_emb)
    hit = _FORMATS.get(key)
    if hit is None or hit[0]() is not model.tok_emb:  # type: ignore[operator]
        _check_supported(model)
        _FORMATS[key] = (weakref.ref(model.tok_emb), calibrate(model, calibration_ids(model)))
    return _FORMATS[key][1]


def accuracy(model: DecoderModel, graph, formats: Formats, positions: int | None = None) -> dict:
    """Top-1 agreement with fp32 and mean KL(fp32 || int8) of the next-token distribution, teacher-forced
    over the fp32 model's greedy text from BOS (not the calibration text)."""
    from slmc.reference.decoder import reference_greedy, reference_logits
    from slmc.reference.interp import new_state, run

    n = positions or min(model.config.seq_len, 256 if model.n_params() < 5_000_000 else 64)
    ids = [1] + reference_greedy(model, [1], n - 1)
    ref = reference_logits(model, ids).astype(np.float64)
    state, rows = new_state(graph), []
    for p, t in enumerate(ids):
        out = run(graph, {"tokens": np.array([t], np.int32), "pos": np.array([p], np.int32)}, state)
        rows.append(out[graph.outputs[0].name][0])
    got = np.stack(rows).astype(np.float64) * 2.0 ** -formats.logits

    def logp(z: np.ndarray) -> np.ndarray:
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    lp, lq = logp(ref), logp(got)
    kl = float((np.exp(lp) * (lp - lq)).sum(axis=1).mean())
    return dict(positions=n, top1_agreement=float((ref.argmax(1) == got.argmax(1)).mean()), mean_kl=kl,
                sequence="fp32 greedy from BOS, teacher-forced", formats=dict(
                    x=formats.x, final_norm=formats.final_norm, logits=formats.logits,
                    layers=[lf.__dict__ for lf in formats.layers]))


def pack_rows4(q: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """linear_i8_rv32.c's blob order (the "rows4" order of quant/q8.py, multipliers kept int32): rows in
    blocks of four, [block][k/4][row][4 bytes], multipliers [block][group][row]; leftover rows row-major."""
    n, k = q.shape
    ng, b = m.shape[1], n // 4 * 4
    qb = q[:b].reshape(b // 4, 4, k // 4, 4).transpose(0, 2, 1, 3).reshape(b, k)
    mb = m[:b].reshape(b // 4, 4, ng).transpose(0, 2, 1).reshape(b, ng)
    return np.concatenate([qb, q[b:]]), np.concatenate([mb, m[b:]])


def unpack_rows4(q: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n, k = q.shape
    ng, b = m.shape[1], n // 4 * 4
    qb = q[:b].reshape(b // 4, k // 4, 4, 4).transpose(0, 2, 1, 3).reshape(b, k)
    mb = m[:b].reshape(b // 4, ng, 4).transpose(0, 2, 1).reshape(b, ng)
    return np.concatenate([qb, q[b:]]), np.concatenate([mb, m[b:]])
