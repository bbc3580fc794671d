"""The attention window of each layer of a decoder, read from the masks in its folded ONNX graph.

A decoder recognised at a short probe length (onnx_import.PROBE_SEQ tokens) cannot show a sliding
window: at 5 tokens a window of 4096 (Mistral) or 8 masks nothing beyond the causal mask, and the model
read from it would attend to every position, so its logits would be wrong from the window on. The masks
depend on the sequence length only, so they are read from the graph imported again at a long probe
length (the model's context, at most MASK_PROBE positions: `--context` can only lower it). Which values
are masks is read on the folded graph at the short probe: constants [.., S, S] added to the scores (0 /
-inf) or choosing them by a Where, between the score MatMul and the Softmax (`recipes`); only the part of
the graph that computes them is then imported at the long length (onnx_import's `at(seq, keep)`: the
attention itself at L positions would be far beyond slmc's size limits) and evaluated. Each mask must be
causal, and either full or a band of W positions (itself included, DecoderConfig.sliding_window);
anything else is NotADecoder.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from slmc.frontend.onnx_blocks import NotADecoder, const
from slmc.ir import Graph, Node, ValueKind

MASK_PROBE = 2048     # positions the masks are read at: a window of this or more masks nothing in the context
MIN_MASK_PROBE = 256  # masks too big at MASK_PROBE are read at half as many, down to this many
VERIFY_WINDOW = 64    # a window up to this long is also verified by running the graph past it


def softmaxes(g: Graph, seq: int) -> list[Node]:
    """The attention Softmax of each layer, in graph order (scores [.., seq, seq])."""
    return [n for n in g.nodes if n.op == "Softmax" and tuple(n.inputs[0].shape[-2:]) == (seq, seq)]  # type: ignore


@dataclass(frozen=True)
class Mask:
    """One mask on the way from an attention's score MatMul to its Softmax: the graph value that holds it
    (a constant once folded), and how it applies: "add" (0 / -inf, or a constant per row on what it lets
    through), "keep" (a Where choosing the scores where it is true), "drop" (where it is false)."""
    name: str
    how: str


def recipes(g: Graph, seq: int) -> list[tuple[str, list[Mask]]]:
    """(Softmax name, its masks) for each attention, read on the folded graph at a short probe length."""
    out = []
    for soft in softmaxes(g, seq):
        u, masks = soft.inputs[0], []
        while u is not None and u.producer is not None and u.producer.op != "MatMul":
            n = u.producer
            data = [i for i in n.inputs if i is not None and i.kind != ValueKind.CONST]
            if n.op == "Add" and len(data) == 1:
                c = next(i for i in n.inputs if const(i) is not None)
                if c.data.ndim >= 2 and c.shape[-2:] == (seq, seq):  # type: ignore[union-attr]
                    masks.append(Mask(c.name, "add"))
            if n.op == "Where" and const(n.inputs[0]) is not None and len(data) == 1:
                c = n.inputs[0]
                if len(c.shape) >= 2 and c.shape[-2:] == (seq, seq):  # type: ignore[union-attr]
                    fill = const(n.inputs[2] if n.inputs[1] is data[0] else n.inputs[1])
                    if fill is None or not np.all(fill < -1e9):
                        _bad(soft.name, "its Where mask (the masked positions are not set to -inf)")
                    masks.append(Mask(c.name, "keep" if n.inputs[1] is data[0] else "drop"))  # type: ignore[union-attr]
            u = data[0] if data else None
        if not masks:
            raise NotADecoder(f"Softmax '{soft.name}' has no causal mask (the attention sees later positions)")
        out.append((soft.name, masks))
    return out


def allowed(soft: str, masks: list[Mask], values: dict[str, np.ndarray]) -> np.ndarray:
    """[L, L] booleans: which key positions each query position may see through these masks, their values
    at L positions in `values` (GPT-Neo's local mask is a Where beside the causal Add: all of them count)."""
    out, adds = None, []
    for mk in masks:
        c = _one(values[mk.name], soft)
        m = c > -1e9 if mk.how == "add" else c.astype(bool) if mk.how == "keep" else ~c.astype(bool)
        if mk.how == "add":
            adds.append(c)
        out = m if out is None else out & m
    assert out is not None
    for c in adds:  # finite values must not weigh the positions a row sees (GPT-Neo adds 1 to all of them)
        on = np.where(out, c, np.nan)
        with np.errstate(all="ignore"):
            if np.any(np.nanmax(on, axis=1) != np.nanmin(on, axis=1)):
                _bad(soft, "its additive mask, which weighs the positions it lets through differently")
    return out


def _one(m: np.ndarray, soft: str) -> np.ndarray:
    """The [L, L] mask every head shares."""
    flat = m.reshape(-1, *m.shape[-2:])
    if not (flat == flat[:1]).all():
        _bad(soft, "its mask, which differs between heads")
    return flat[0]


def _bad(soft: str, what: str) -> np.ndarray:
    raise NotADecoder(f"the attention at Softmax '{soft}' departs from a causal decoder in {what}")


def window(m: np.ndarray, soft: str) -> int:
    """The sliding window of a [L, L] mask: 0 where it is the plain causal mask."""
    seq = m.shape[0]
    i, j = np.arange(seq)[:, None], np.arange(seq)[None, :]
    w = int(m[-1].sum())
    if w < 1 or not np.array_equal(m, (j <= i) & (i - j < w)):
        _bad(soft, "its mask, which is neither causal nor a causal sliding window")
    return 0 if w >= seq else w


def windows(recs: list[tuple[str, list[Mask]]], values: dict[str, np.ndarray]) -> list[int]:
    """Each attention's window (0: full causal attention), in graph order, from its masks' values at the
    long probe length (the caller checks there is one attention per layer)."""
    return [window(allowed(soft, masks, values), soft) for soft, masks in recs]
