"""Language-model conveniences over the interpreter: teacher-forced logits and greedy generation."""

from __future__ import annotations

import numpy as np

from slmc.frontend.build import build_step_graph
from slmc.frontend.decoder import DecoderModel
from slmc.reference.interp import new_state, run


def reference_logits(model: DecoderModel, ids: list[int], numerics: str = "fp32", kv_cache: str = "fp32") -> np.ndarray:
    """Logits [len(ids), vocab]; row p is the output of decoding ids[p] at position p."""
    g = build_step_graph(model, 1, numerics, kv_cache)
    state = new_state(g)
    rows = []
    for p, t in enumerate(ids):
        out = run(g, {"tokens": np.array([t], np.int32), "pos": np.array([p], np.int32)}, state)
        rows.append(out[g.outputs[0].name][0])
    return np.stack(rows)


def reference_greedy(model: DecoderModel, prompt: list[int], steps: int, numerics: str = "fp32") -> list[int]:
    """llama2.c's loop: feed prompt tokens, then argmax; returns the `steps` tokens that follow position 0."""
    g = build_step_graph(model, 1, numerics)
    state = new_state(g)
    tok, out = prompt[0], []
    for p in range(steps):
        logits = run(g, {"tokens": np.array([tok], np.int32), "pos": np.array([p], np.int32)}, state)
        nxt = prompt[p + 1] if p + 1 < len(prompt) else int(np.argmax(logits[g.outputs[0].name][0]))
        out.append(nxt)
        tok = nxt
    return out
