"""q8: int8 weights in groups along each row with one float32 scale per group (llama2.c runq.c).

The group is 64, halved until it divides the row length: a group must never straddle two rows,
which llama2.c's export only checks for `dim` (stories260K's w2 has rows of 172 and needs 4).
"""

from __future__ import annotations

import numpy as np

from slmc.frontend.decoder import Q8Tensor

PREFERRED_GROUP = 64


def group_for(cols: int, preferred: int = PREFERRED_GROUP) -> int:
    g = preferred
    while g > 1 and cols % g:
        g //= 2
    return g


def quantize_rows(w: np.ndarray, group: int) -> Q8Tensor:
    """Weights: scale = max|w| / 127 per group, values rounded half to even (export.py uses torch.round)."""
    rows, cols = w.shape
    assert cols % group == 0, (cols, group)
    g = w.astype(np.float32).reshape(rows, cols // group, group)
    scale = (np.abs(g).max(axis=2) / np.float32(127.0)).astype(np.float32)
    safe = np.where(scale == 0, np.float32(1), scale)
    q = np.clip(np.round(g / safe[:, :, None]), -127, 127).astype(np.int8)
    return Q8Tensor(q.reshape(rows, cols), scale, group)


def round_half_away(x: np.ndarray) -> np.ndarray:
    """C's roundf."""
    return np.sign(x) * np.floor(np.abs(x) + np.float32(0.5))


def quantize_activations(x: np.ndarray, group: int) -> tuple[np.ndarray, np.ndarray]:
    """Run-time activation quantization exactly as the C kernel does it (float32 division, roundf)."""
    rows, cols = x.shape
    g = x.astype(np.float32).reshape(rows, cols // group, group)
    scale = (np.abs(g).max(axis=2) / np.float32(127.0)).astype(np.float32)
    safe = np.where(scale == 0, np.float32(1), scale).astype(np.float32)
    q = round_half_away((g / safe[:, :, None]).astype(np.float32))
    q = np.where(scale[:, :, None] == 0, 0, q)
    return q.astype(np.int8).reshape(rows, cols), scale


def ensure_q8(w: "np.ndarray | Q8Tensor", preferred: int = PREFERRED_GROUP) -> Q8Tensor:
    """Quantize a float matrix, or keep a pre-quantized one whose group divides its rows."""
    if isinstance(w, Q8Tensor):
        return w
    return quantize_rows(w, group_for(w.shape[1], preferred))
