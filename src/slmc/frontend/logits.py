"""A DecoderModel, or a step graph built from one, run on the numpy interpreter: teacher-forced logits
and llama2.c's greedy loop. Every accuracy figure (int8 calibration and agreement, NPU weight bits, the
ONNX decoder check) and most numerical tests read these.

It lives in frontend/ because it needs the step builder (frontend/build.py) as well as the interpreter
(reference/), and reference/ sits below frontend/ (the ONNX importer folds constants with it).
"""

from __future__ import annotations

import numpy as np

from slmc.frontend.build import build_step_graph
from slmc.frontend.decoder import DecoderModel
from slmc.ir import Graph
from slmc.reference.interp import new_state, run


def _step(g: Graph, state: dict, token: int, pos: int) -> np.ndarray:
    out = run(g, {"tokens": np.array([token], np.int32), "pos": np.array([pos], np.int32)}, state)
    return out[g.outputs[0].name][0]


def graph_logits(g: Graph, ids: list[int]) -> np.ndarray:
    """Logits [len(ids), vocab] of a one-token step graph, teacher-forced: row p decodes ids[p] at p."""
    state = new_state(g)
    return np.stack([_step(g, state, t, p) for p, t in enumerate(ids)])


def reference_logits(model: DecoderModel, ids: list[int], numerics: str = "fp32", kv_cache: str = "fp32") -> np.ndarray:
    """Logits [len(ids), vocab]; row p is the output of decoding ids[p] at position p."""
    return graph_logits(build_step_graph(model, 1, numerics, kv_cache), ids)


def reference_greedy(model: DecoderModel, prompt: list[int], steps: int, numerics: str = "fp32") -> list[int]:
    """llama2.c's loop: feed prompt tokens, then argmax; returns the `steps` tokens that follow position 0."""
    g = build_step_graph(model, 1, numerics)
    state = new_state(g)
    tok, out = prompt[0], []
    for p in range(steps):
        logits = _step(g, state, tok, p)
        nxt = prompt[p + 1] if p + 1 < len(prompt) else int(np.argmax(logits))
        out.append(nxt)
        tok = nxt
    return out
