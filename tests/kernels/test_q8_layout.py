"""The "rows4" blob order of q8 weights (quant/q8.py pack_rows4, read by linear_q8_dsp.c): it round-trips,
and a tied table stored once in that order is looked up exactly like the row-major one."""

from __future__ import annotations

import ctypes
import shutil
import subprocess

import numpy as np
import pytest

from slmc.kernels.registry import C_DIR
from slmc.quant.q8 import pack_rows4, unpack_rows4


def test_pack_rows4_round_trips_and_interleaves_words():
    rng = np.random.default_rng(1)
    q = rng.integers(-127, 128, (70, 172)).astype(np.int8)
    s = rng.random((70, 43)).astype(np.float32)
    pq, ps = pack_rows4(q, s)
    assert pq.shape == q.shape and ps.shape == s.shape
    assert list(pq[0, :16]) == [*q[0, :4], *q[1, :4], *q[2, :4], *q[3, :4]]
    assert list(ps[0, :8]) == [s[0, 0], s[1, 0], s[2, 0], s[3, 0], s[0, 1], s[1, 1], s[2, 1], s[3, 1]]
    assert np.array_equal(pq[68:], q[68:]) and np.array_equal(ps[68:], s[68:])   # rows after the last block
    uq, us = unpack_rows4(pq, ps)
    assert np.array_equal(uq, q) and np.array_equal(us, s)


def test_embedding_in_rows4_order_reads_every_row_like_the_row_major_kernel(tmp_path):
    """embedding_q8_rows4.c (a tied table stored once, in linear_q8_dsp.c's order) against embedding_q8.c
    and the numpy twin, for every row: the blocks of four and the 2 rows after them."""
    from slmc.quant.q8 import quantize_rows
    from slmc.reference.llm_ops import embedding_q8

    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    so = tmp_path / "libemb.so"
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", f"-I{C_DIR}", "-o", str(so), str(C_DIR / "embedding_q8.c"),
                    str(C_DIR / "embedding_q8_rows4.c")], check=True)
    lib = ctypes.CDLL(str(so))
    rows, dim, group = 70, 48, 16
    q8 = quantize_rows(np.random.default_rng(4).standard_normal((rows, dim)).astype(np.float32), group)
    pq, ps = pack_rows4(q8.q, q8.s)
    ids = np.arange(rows, dtype=np.int32)
    a, b = np.empty((rows, dim), np.float32), np.empty((rows, dim), np.float32)
    p = ctypes.c_void_p
    lib.slmc_embedding_q8(p(a.ctypes.data), p(q8.q.ctypes.data), p(q8.s.ctypes.data), p(ids.ctypes.data), rows, dim, group)
    lib.slmc_embedding_q8_rows4(p(b.ctypes.data), p(pq.ctypes.data), p(ps.ctypes.data), p(ids.ctypes.data), rows, dim,
                                group, rows)
    twin = embedding_q8([pq, ps, ids], {"group": group, "layout": "rows4"})[0]
    assert np.array_equal(a.view(np.uint32), b.view(np.uint32)) and np.array_equal(a, twin)
