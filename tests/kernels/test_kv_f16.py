"""The binary16 conversions of the fp16 KV cache (kv_write_f16.c: float -> half, attention_f16kv.c:
half -> float), built with the host gcc and compared bit for bit with numpy's float16 (their twin):
every half, every float that is a half, a tie between two halves or next to one, every float exponent
with many mantissas, random bit patterns, and around zero, the subnormals and overflow.
SLMC_EXHAUSTIVE=1 adds all 2^32 floats (about a minute)."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess

import numpy as np
import pytest

from slmc.kernels.registry import C_DIR

WRAP = """
#include "kv_write_f16.c"
#include "attention_f16kv.c"
void f16_to_f32_all(const uint16_t *h, float *f, size_t n) { for (size_t i = 0; i < n; i++) f[i] = kv_f16_to_f32(h[i]); }
void f32_to_f16_all(const float *f, uint16_t *h, size_t n) { for (size_t i = 0; i < n; i++) h[i] = kv_f32_to_f16(f[i]); }
"""


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    d = tmp_path_factory.mktemp("f16")
    (d / "wrap.c").write_text(WRAP)
    so = d / "libf16.so"
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", f"-I{C_DIR}", "-o", str(so), str(d / "wrap.c")], check=True)
    lib = ctypes.CDLL(str(so))
    for fn in (lib.f16_to_f32_all, lib.f32_to_f16_all):
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
        fn.restype = None
    return lib


def to_f16(lib, bits: np.ndarray) -> np.ndarray:
    f = np.ascontiguousarray(bits, dtype=np.uint32).view(np.float32)
    out = np.empty(f.shape, np.uint16)
    lib.f32_to_f16_all(f.ctypes.data, out.ctypes.data, f.size)
    return out


def check_f32_to_f16(lib, bits: np.ndarray) -> None:
    bits = np.ascontiguousarray(bits, dtype=np.uint32)
    got = to_f16(lib, bits)
    with np.errstate(over="ignore"):
        want = bits.view(np.float32).astype(np.float16).view(np.uint16)
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, [(hex(int(bits[i])), hex(int(got[i])), hex(int(want[i]))) for i in bad[:8]]


def test_every_half_to_float_is_numpys(lib):
    h = np.arange(1 << 16, dtype=np.uint16)
    got = np.empty(h.shape, np.float32)
    lib.f16_to_f32_all(h.ctypes.data, got.ctypes.data, h.size)
    assert np.array_equal(got.view(np.uint32), h.view(np.float16).astype(np.float32).view(np.uint32))


def test_float_to_half_rounds_like_numpy_at_every_half_and_every_tie(lib):
    h = np.arange(1 << 16, dtype=np.uint16)
    f = h.view(np.float16).astype(np.float32).view(np.uint32).astype(np.int64)
    fin = (h & 0x7C00) != 0x7C00
    # a float that is a half, and its neighbours: round trip exact, then one float ulp either side
    near = (f[:, None] + np.arange(-3, 4)[None, :]).ravel()
    # the ties between neighbouring halves (exactly between: even wins) and the floats next to them
    lo = h[fin & ((h & 0x7FFF) != 0x7BFF)]
    a = lo.view(np.float16).astype(np.float64)
    b = (lo + 1).astype(np.uint16).view(np.float16).astype(np.float64)
    mid = ((a + b) / 2).astype(np.float32).view(np.uint32).astype(np.int64)
    ties = (mid[:, None] + np.arange(-2, 3)[None, :]).ravel()
    bits = np.concatenate([near, ties]) & 0xFFFFFFFF
    check_f32_to_f16(lib, bits.astype(np.uint32))


def test_float_to_half_every_exponent_and_the_edges(lib):
    rng = np.random.default_rng(16)
    exps = np.arange(256, dtype=np.uint32) << 23
    mant = np.concatenate([np.arange(1 << 14, dtype=np.uint32),                 # low bits: the sticky part
                           (np.arange(1 << 10, dtype=np.uint32) << 13) | 0x1000,  # ties at bit 13
                           rng.integers(0, 1 << 23, 1 << 14, dtype=np.uint32)])
    grid = (exps[:, None] | mant[None, :]).ravel()
    edges = np.array([0, 0x33000000, 0x33000001, 0x32FFFFFF, 0x337FFFFF, 0x33800000, 0x387FFFFF, 0x387FE000,
                      0x387FF000, 0x387FEFFF, 0x38800000, 0x477FE000, 0x477FEFFF, 0x477FF000, 0x477FF001,
                      0x47800000, 0x7F7FFFFF, 0x7F800000, 0x7F800001, 0x7FC00000, 0x7FA00000, 0x7FFFE000,
                      0x7F801FFF, 0x00000001, 0x007FFFFF], dtype=np.uint32)
    rand = rng.integers(0, 1 << 32, 1 << 21, dtype=np.uint32)
    for b in (grid, edges, rand):
        check_f32_to_f16(lib, b)
        check_f32_to_f16(lib, b | 0x80000000)


@pytest.mark.skipif(os.environ.get("SLMC_EXHAUSTIVE") != "1", reason="SLMC_EXHAUSTIVE=1 checks all 2^32 floats")
def test_float_to_half_exhaustive(lib):
    step = 1 << 24
    for start in range(0, 1 << 32, step):
        check_f32_to_f16(lib, np.arange(start, start + step, dtype=np.uint64).astype(np.uint32))

