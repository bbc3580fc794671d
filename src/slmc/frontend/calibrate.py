"""Calibration and accuracy of reduced-precision builds, measured by running the fp32 model on the
numpy interpreter (frontend/logits.py):

- `-q int8`: data-free calibration (the fp32 model's own sampled text picks every activation's
  fixed-point format, quant/int8.py) and the integer graph's agreement with fp32;
- the NPU's FFN weights at fewer bits (quant/npu.py): agreement with fp32 of q8 and of the mixed build.

These need the step builder and the interpreter, so they sit in frontend/, above quant/ and reference/,
whose numerics they use; quant/ itself stays free of any model-level code so the builders, kernels and
numpy twins can share it.
"""

from __future__ import annotations

import weakref
from dataclasses import replace

import numpy as np

from slmc.errors import SlmcError
from slmc.frontend.build import build_float_graph
from slmc.frontend.decoder import DecoderModel
from slmc.frontend.logits import graph_logits, reference_greedy, reference_logits
from slmc.ir import Graph, Node
from slmc.ir.roles import Role
from slmc.quant.int8 import MARGIN, Formats, LayerFormats, frac_bits
from slmc.quant.npu import fake_quant
from slmc.reference.interp import new_state, run


# the structural features (DecoderConfig.features()) -q int8 has no integer form of yet
INT8_REFUSED: tuple[str, ...] = ()


def _check_supported(model: DecoderModel) -> None:
    """Refuse, in one line naming it, what passes/quantize_int8.py has no integer form of: experts, soft-capping."""
    cfg = model.config
    if cfg.n_experts:
        raise SlmcError("-q int8 does not support mixture-of-experts models yet", "use -q q8 or -q fp32")
    beyond = [f for f in cfg.features() if f in INT8_REFUSED]
    if beyond:
        raise SlmcError(f"-q int8 does not support {', '.join(beyond)} yet", "use -q q8 or -q fp32 for this model")


def calibration_ids(model: DecoderModel, sequences: int = 2, length: int = 64, seed: int = 1234) -> list[list[int]]:
    """Data-free calibration: the fp32 model's own sampled text (temperature 1) from BOS, seeded."""
    g = build_float_graph(model, 1)
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


# the values that share one format: calibration takes the largest magnitude over each group of roles
_SHARED = {Role.EMBED: "x", Role.O: "x", Role.DOWN: "x", Role.RESIDUAL: "x", Role.POST_NORM: "x",
           Role.ATTN_NORM: "attn_norm", Role.Q: "qk", Role.K: "qk", Role.ROPE: "qk", Role.QK_NORM: "qk", Role.V: "v",
           Role.ATTENTION: "v", Role.FFN_NORM: "ffn_norm", Role.GATE: "gate", Role.UP: "gate", Role.FFN_ACT: "hidden",
           Role.FINAL_NORM: "final_norm", Role.CLASSIFIER: "logits"}


def _group(n: Node) -> str | None:
    """The format group of n's output (None: a value the int8 graph does not hold: q's attention scale,
    which attention_i folds into its softmax constant)."""
    if n.role is Role.QK_NORM and n.op == "scale":
        return None
    if n.role in (Role.Q, Role.K) and any(u.role is Role.QK_NORM and u.op == "rmsnorm" for u in n.outputs[0].users):
        return "qk_raw"  # before qk-norm: int32
    return _SHARED.get(n.role)  # type: ignore[arg-type]


def calibrate(model: DecoderModel, sequences: list[list[int]]) -> Formats:
    """Largest magnitude of every activation over the sequences (fp32 reference) -> formats, grouped by the
    role of the node computing it (ir/roles.py): the groups passes/quantize_int8.py gives one format."""
    cfg = model.config
    _check_supported(model)
    g = build_float_graph(model, 1)
    group = {o.name: (n.layer if _group(n) != "x" else None, _group(n))
             for n in g.nodes if _group(n) is not None for o in n.outputs}
    mx: dict[tuple[int | None, str], float] = {}
    for ids in sequences:
        state = new_state(g)
        for p, t in enumerate(ids):
            env = run(g, {"tokens": np.array([t], np.int32), "pos": np.array([p], np.int32)}, state, keep=True)
            for k, v in env.items():
                if k in group and v.size:
                    mx[group[k]] = max(mx.get(group[k], 0.0), float(np.abs(v).max()))

    layers = []
    for i in range(cfg.n_layers):
        f = {name: frac_bits(mx.get((i, name), 1.0), 16) for name in ("attn_norm", "qk", "v", "ffn_norm", "hidden")}
        f["gate"] = frac_bits(mx[(i, "gate")], 16)
        layers.append(LayerFormats(**f, qk_raw=frac_bits(mx.get((i, "qk_raw"), 1.0), 24)))
    # the residual: int32 with room for RMSNorm's sum of squares in int64 (dim * x^2 < 2^62)
    x_max = mx[(None, "x")] * MARGIN
    fx = int(min(24, np.floor((62 - np.log2(cfg.dim)) / 2 - np.log2(x_max)), frac_bits(mx[(None, "x")], 32)))
    return Formats(x=fx, x16=frac_bits(mx[(None, "x")], 16), final_norm=frac_bits(mx[(None, "final_norm")], 16),
                   logits=frac_bits(mx[(None, "logits")], 32, cap=16), layers=tuple(layers))


_FORMATS: dict[int, tuple[object, Formats]] = {}


def formats_for(model: DecoderModel) -> Formats:
    """Calibrated formats of a model, cached by its embedding table (a compile that cuts the context
    rebuilds the graph of the same weights); a weak reference makes sure the id still names that table."""
    key = id(model.tok_emb)
    hit = _FORMATS.get(key)
    if hit is None or hit[0]() is not model.tok_emb:  # type: ignore[operator]
        _check_supported(model)
        _FORMATS[key] = (weakref.ref(model.tok_emb), calibrate(model, calibration_ids(model)))
    return _FORMATS[key][1]


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _agreement(ref: np.ndarray, got: np.ndarray) -> dict:
    """Top-1 agreement and mean KL(ref || got) of the next-token distributions, row by row."""
    lp, lq = _log_softmax(ref), _log_softmax(got)
    return dict(top1_agreement=float((ref.argmax(1) == got.argmax(1)).mean()),
                mean_kl=float((np.exp(lp) * (lp - lq)).sum(axis=1).mean()))


def accuracy(model: DecoderModel, graph: Graph, formats: Formats, positions: int | None = None) -> dict:
    """Top-1 agreement with fp32 and mean KL(fp32 || int8) of the next-token distribution, teacher-forced
    over the fp32 model's greedy text from BOS (not the calibration text)."""
    n = positions or min(model.config.seq_len, 256 if model.n_params() < 5_000_000 else 64)
    ids = [1] + reference_greedy(model, [1], n - 1)
    ref = reference_logits(model, ids).astype(np.float64)
    got = graph_logits(graph, ids).astype(np.float64) * 2.0 ** -formats.logits
    agree = _agreement(ref, got)
    return dict(positions=n, top1_agreement=agree["top1_agreement"], mean_kl=agree["mean_kl"],
                max_logit_error=float(np.abs(got - ref).max()), max_logit=float(np.abs(ref).max()),
                sequence="fp32 greedy from BOS, teacher-forced", formats=dict(
                    x=formats.x, final_norm=formats.final_norm, logits=formats.logits,
                    layers=[lf.__dict__ for lf in formats.layers]))


def with_ffn_bits(model: DecoderModel, bits: int) -> DecoderModel:
    """The model with its FFN matrices (w1, w2, w3) rounded to `bits`-bit integers per q8 group."""
    layers = [replace(L, w1=fake_quant(L.w1, bits), w2=fake_quant(L.w2, bits),
                      w3=None if L.w3 is None else fake_quant(L.w3, bits)) for L in model.layers]
    return replace(model, layers=layers)


def ffn_bits_accuracy(model: DecoderModel, bits: int = 4, positions: int = 64, graph: Graph | None = None) -> dict:
    """Mixed weight precision for the NPU: the accuracy effect of FFN matrices at fewer bits (symmetric,
    per q8 group), top-1 agreement with fp32 and mean KL(fp32 || q), teacher-forced over the fp32 model's
    greedy text from BOS, for q8 and for the mixed build. `graph`: the compiled decode graph (NPU layout,
    weights re-quantized from the q8 ones as the build does) to score exactly; without it, the FFN
    weights are rounded from fp32 (fake_quant)."""
    if not isinstance(model.layers[0].w1, np.ndarray):
        raise ValueError("needs a float checkpoint")
    positions = min(positions, model.config.seq_len)
    ids = [1] + reference_greedy(model, [1], positions - 1)
    ref = reference_logits(model, ids).astype(np.float64)

    def score(m: "DecoderModel | None") -> dict:
        got = reference_logits(m, ids, "q8") if m is not None else graph_logits(graph, ids)  # type: ignore[arg-type]
        return _agreement(ref, got.astype(np.float64))

    mixed = score(None) if graph is not None else score(with_ffn_bits(model, bits))
    return dict(positions=positions, ffn_bits=bits, q8=score(model), q8_ffn=mixed,
                basis="the compiled graph (numpy twin)" if graph is not None else "FFN weights rounded from fp32")
