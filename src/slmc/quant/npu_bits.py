"""Mixed weight precision for the NPU (kernels/npu.py): the accuracy effect of FFN matrices (w1, w2,
w3) at fewer bits (symmetric, per q8 group): top-1 agreement with fp32 and mean KL(fp32 || q) of the
next-token distribution, teacher-forced over the fp32 model's greedy text from BOS, for q8 and for
the mixed build (its compiled graph through the reference interpreter, or FFN weights rounded from
fp32 when no graph is given)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from slmc.frontend.decoder import DecoderModel
from slmc.quant.q8 import group_for


def fake_quant(w: np.ndarray, bits: int) -> np.ndarray:
    """w (m, k) float, rounded to `bits`-bit integers per group of its rows, and back."""
    m, k = w.shape
    g = group_for(k)
    x = w.astype(np.float32).reshape(m, k // g, g)
    qmax = (1 << (bits - 1)) - 1
    amax = np.abs(x).max(axis=-1, keepdims=True)
    s = np.where(amax > 0, amax / qmax, 1.0).astype(np.float32)
    return (np.clip(np.round(x / s), -qmax, qmax) * s).astype(np.float32).reshape(m, k)


def with_ffn_bits(model: DecoderModel, bits: int) -> DecoderModel:
    layers = [replace(L, w1=fake_quant(L.w1, bits), w2=fake_quant(L.w2, bits),
                      w3=None if L.w3 is None else fake_quant(L.w3, bits)) for L in model.layers]
    return replace(model, layers=layers)


def graph_logits(graph, ids: list[int]) -> np.ndarray:
    """Logits of a decode step graph (the reference interpreter, the compiled C's numpy twin), teacher-forced."""
    from slmc.reference.interp import new_state, run

    state, rows = new_state(graph), []
    for p, t in enumerate(ids):
        out = run(graph, {"tokens": np.array([t], np.int32), "pos": np.array([p], np.int32)}, state)
        rows.append(out[graph.outputs[0].name][0])
    return np.stack(rows)


def ffn_bits_accuracy(model: DecoderModel, bits: int = 4, positions: int = 64, graph=None) -> dict:
    """`graph`: the compiled decode graph (NPU layout, weights re-quantized from the q8 ones as the
    build does) to score exactly; without it, the FFN weights are rounded from fp32 (fake_quant)."""
    from slmc.reference.decoder import reference_greedy, reference_logits

    if not isinstance(model.layers[0].w1, np.ndarray):
        raise ValueError("needs a float checkpoint")
    positions = min(positions, model.config.seq_len)
    ids = [1] + reference_greedy(model, [1], positions - 1)
    ref = reference_logits(model, ids).astype(np.float64)

    def score(m: "DecoderModel | None") -> dict:
        got = (reference_logits(m, ids, "q8") if m is not None else graph_logits(graph, ids)).astype(np.float64)
        lp = ref - ref.max(1, keepdims=True)
        lp -= np.log(np.exp(lp).sum(1, keepdims=True))
        lq = got - got.max(1, keepdims=True)
        lq -= np.log(np.exp(lq).sum(1, keepdims=True))
        return dict(top1_agreement=float((ref.argmax(1) == got.argmax(1)).mean()),
                    mean_kl=float((np.exp(lp) * (lp - lq)).sum(1).mean()))

    mixed = score(None) if graph is not None else score(with_ffn_bits(model, bits))
    return dict(positions=positions, ffn_bits=bits, q8=score(model), q8_ffn=mixed,
                basis="the compiled graph (numpy twin)" if graph is not None else "FFN weights rounded from fp32")
