"""q8: int8 weights in groups along each row with one float32 scale per group (llama2.c runq.c).

The group is 64, halved until it divides the row length: a group must never straddle two rows,
which llama2.c's export only checks for `dim` (stories260K's w2 has rows of 172 and needs 4).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PREFERRED_GROUP = 64


@dataclass(frozen=True)
class Q8Tensor:
    """A matrix already quantized in groups along its rows (llama2.c's Q8_0): w ~= q * s per group."""

    q: np.ndarray  # int8 (rows, cols)
    s: np.ndarray  # float32 (rows, cols // group)
    group: int

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.q.shape)

    def dequantize(self) -> np.ndarray:
        rows, cols = self.q.shape
        g = self.q.reshape(rows, cols // self.group, self.group).astype(np.float32)
        return (g * self.s[:, :, None]).reshape(rows, cols).astype(np.float32)


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


# Interleaved row blocks: rows go in blocks of r, inside a block word-interleaved, [block][k/4][row][4 bytes], and
# the scales (or int8's multipliers) [block][group][row]; rows left over after the last full block follow
# row-major. The values are the same; only their order changes.
# "rows4" (r = 4): the blob layout of linear_q8_dsp.c (Cortex-M33): one LDM brings four rows' next 4 weights, one
# VLDM four rows' scales of a group; "rows16" (r = 16): linear_q8_rows16.c's (a batched x86-64 host step), one
# 64-byte vector holds 16 rows' next 4 weights.
def pack_rows(q: np.ndarray, s: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
    n, k = q.shape
    ng, b = s.shape[1], n // r * r
    assert k % 4 == 0, k
    qb = q[:b].reshape(b // r, r, k // 4, 4).transpose(0, 2, 1, 3).reshape(b, k)
    sb = s[:b].reshape(b // r, r, ng).transpose(0, 2, 1).reshape(b, ng)
    return np.concatenate([qb, q[b:]]), np.concatenate([sb, s[b:]])


def unpack_rows(q: np.ndarray, s: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
    n, k = q.shape
    ng, b = s.shape[1], n // r * r
    qb = q[:b].reshape(b // r, k // 4, r, 4).transpose(0, 2, 1, 3).reshape(b, k)
    sb = s[:b].reshape(b // r, ng, r).transpose(0, 2, 1).reshape(b, ng)
    return np.concatenate([qb, q[b:]]), np.concatenate([sb, s[b:]])


def pack_rows4(q: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return pack_rows(q, s.astype(np.float32), 4)


def unpack_rows4(q: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return unpack_rows(q, s.astype(np.float32), 4)


def pack_rows16(q: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return pack_rows(q, s.astype(np.float32), 16)


def unpack_rows16(q: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return unpack_rows(q, s.astype(np.float32), 16)
