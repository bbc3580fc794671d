"""fp32 fused multiply-add for the numpy twins: rounded once, on any host (no long double needed)."""

from __future__ import annotations

from typing import Any

import numpy as np

F32, F64 = np.float32, np.float64


def fma32(a: Any, b: Any, c: Any) -> np.ndarray:
    """float32 a * b + c rounded once: the product is exact in float64, the sum is rounded to odd there
    (TwoSum's error term says which way), and float64's 29 spare bits make the final rounding to float32
    the correct one."""
    a, b, c = np.broadcast_arrays(*(np.asarray(v, F32).astype(F64) for v in (a, b, c)))
    p = a * b
    s = p + c
    bb = s - p
    err = (p - (s - bb)) + (c - bb)
    bits = np.array(s, F64).view(np.int64)
    step = np.where(np.signbit(err) == np.signbit(s), 1, -1)
    odd = np.where((err != 0) & ((bits & 1) == 0) & np.isfinite(s), bits + step, bits)
    return odd.view(F64).astype(F32)
