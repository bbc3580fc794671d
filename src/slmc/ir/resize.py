"""ONNX Resize as per-axis tables of taps: for each output position along an axis, the input positions it
reads and their weights. Shared by the importer's canonical form (frontend/onnx_canon.py makes the tables
constants of the node), the numpy twin and the C kernel, so the three agree by construction; the
semantics are the ONNX reference's (onnx.reference's op_resize: separable, one axis at a time):
- the source coordinate of output y by coordinate_transformation_mode (half_pixel, half_pixel_symmetric,
  pytorch_half_pixel, align_corners, asymmetric, tf_crop_and_resize with its roi);
- nearest (round_prefer_floor/ceil, floor, ceil), linear or cubic (cubic_coeff_a) weights, antialiased
  when downsampling with antialias=1; the n taps nearest the coordinate (ties to the smaller index),
  positions outside the input clamped to its edge, or dropped and the weights renormalised with
  exclude_outside=1;
- tf_crop_and_resize: a source coordinate outside the input gives extrapolation_value (its row of the
  table: index -1, weights 0).
An axis the node leaves as it is (scale 1, same size, no roi) gets the identity: one tap of weight 1."""

from __future__ import annotations

import math

import numpy as np


def _cubic(ratio: float, a: float) -> list[float]:
    r, s = ratio, 1 - ratio
    return [((a * (r + 1) - 5 * a) * (r + 1) + 8 * a) * (r + 1) - 4 * a, ((a + 2) * r - (a + 3)) * r * r + 1,
            ((a + 2) * s - (a + 3)) * s * s + 1, ((a * (s + 1) - 5 * a) * (s + 1) + 8 * a) * (s + 1) - 4 * a]


def _cubic_antialias(ratio: float, scale: float, a: float) -> list[float]:
    scale = min(scale, 1.0)

    def k(x: float) -> float:
        x = abs(x)
        return (a + 2) * x ** 3 - (a + 3) * x * x + 1 if x <= 1 else (a * x ** 3 - 5 * a * x * x + 8 * a * x - 4 * a if x < 2 else 0.0)
    start = int(math.floor(-2 / scale) + 1)
    c = [k(scale * (i - ratio)) for i in range(start, 2 - start)]
    return [v / sum(c) for v in c]


def _linear_antialias(ratio: float, scale: float) -> list[float]:
    scale = min(scale, 1.0)
    start = int(math.floor(-1 / scale) + 1)
    c = [min(max(1 - abs((i - ratio) * scale), 0.0), 1.0) for i in range(start, 2 - start)]
    return [v / sum(c) for v in c]


def _nearest(ratio: float, mode: str) -> list[float]:
    if float(ratio).is_integer():
        return [0, 1]
    return {"round_prefer_floor": [ratio <= 0.5, ratio > 0.5], "round_prefer_ceil": [ratio < 0.5, ratio >= 0.5],
            "floor": [1, 0], "ceil": [0, 1]}[mode]


def coefficients(a: dict, ratio: float, scale: float) -> list[float]:
    mode = a.get("mode", "nearest")
    if mode == "nearest":
        return [float(v) for v in _nearest(ratio, a.get("nearest_mode", "round_prefer_floor"))]
    cubic_a = float(a.get("cubic_coeff_a", -0.75))
    if mode == "cubic":
        return _cubic_antialias(ratio, scale, cubic_a) if a.get("antialias", 0) else _cubic(ratio, cubic_a)
    return _linear_antialias(ratio, scale) if a.get("antialias", 0) else [1 - ratio, ratio]


def source_coords(a: dict, n_in: int, n_out: int, scale: float, roi: tuple[float, float] | None) -> tuple[np.ndarray, np.ndarray]:
    """The source coordinate of each output position, and where tf_crop_and_resize extrapolates."""
    mode = a.get("coordinate_transformation_mode", "half_pixel")
    y = np.arange(n_out, dtype=np.float64)
    width = scale * n_in
    out = np.zeros(n_out, dtype=bool)
    if mode == "align_corners":
        x = np.zeros(n_out) if width == 1 else y * (n_in - 1) / (width - 1)
    elif mode == "asymmetric":
        x = y / scale
    elif mode == "tf_crop_and_resize":
        lo, hi = roi if roi is not None else (0.0, 1.0)
        x = np.full(n_out, (hi - lo) * (n_in - 1) / 2) if width == 1 else y * (hi - lo) * (n_in - 1) / (width - 1)
        x = x + lo * (n_in - 1)
        out = (x < 0) | (x > n_in - 1)
    elif mode == "pytorch_half_pixel":
        x = np.full(n_out, -0.5) if width == 1 else (y + 0.5) / scale - 0.5
    elif mode == "half_pixel":
        x = (y + 0.5) / scale - 0.5
    else:  # half_pixel_symmetric
        x = n_in / 2 * (1 - n_out / width) + (y + 0.5) / scale - 0.5
    return x, out


def axis_taps(a: dict, n_in: int, n_out: int, scale: float, roi: tuple[float, float] | None) -> tuple[np.ndarray, np.ndarray]:
    """(indices [n_out, n] int32, weights [n_out, n] float64) of one axis."""
    if math.isclose(scale, 1.0) and n_in == n_out and (roi is None or (math.isclose(roi[0], 0.0) and math.isclose(roi[1], 1.0))):
        return np.arange(n_out, dtype=np.int32).reshape(-1, 1), np.ones((n_out, 1))
    if n_out == 0:
        return np.zeros((0, 1), np.int32), np.zeros((0, 1))
    x, outside = source_coords(a, n_in, n_out, scale, roi)
    base = np.floor(x)
    ratios = np.where(x == base, 1.0, x - base)
    w = np.array([coefficients(a, float(r), scale) for r in ratios], dtype=np.float64)
    n = w.shape[1]
    pad = int(math.ceil(n / 2))
    xp = x + pad
    p = np.floor(xp).astype(np.int64)
    frac = xp - p
    if n % 2 == 0:
        off = np.where(frac == 0, -(n // 2), -(n // 2) + 1)
    else:
        off = np.where(frac <= 0.5, -((n - 1) // 2), -((n - 1) // 2) + 1)
    idx = (p + off)[:, None] + np.arange(n)[None, :] - pad
    if a.get("exclude_outside", 0):
        w = np.where((idx < 0) | (idx >= n_in), 0.0, w)
        s = w.sum(axis=-1, keepdims=True)
        w = w / np.where(s == 0, 1.0, s)
    idx = np.clip(idx, 0, n_in - 1).astype(np.int32)
    idx[outside] = -1
    w[outside] = 0.0
    return idx, w


def tables(x_shape: tuple[int, ...], a: dict) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Every axis's taps, concatenated (indices int32, weights float32), and the taps per axis. `a` holds the
    canonical attributes: sizes (the output shape), scales (per axis), roi (2 * rank values or absent)."""
    r = len(x_shape)
    roi = a.get("roi")
    idx, w, taps = [], [], []
    for d in range(r):
        i, wt = axis_taps(a, x_shape[d], a["sizes"][d], float(a["scales"][d]), (roi[d], roi[r + d]) if roi else None)
        idx.append(i.reshape(-1))
        w.append(wt.reshape(-1))
        taps.append(i.shape[1])
    return np.concatenate(idx).astype(np.int32), np.concatenate(w).astype(np.float32), taps
