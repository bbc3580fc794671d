"""Issue 10, steps 3-4: the NPU's bit-serial arithmetic (numpy twin and the C functional model
npu_linear.c agree bit for bit, and equal linear_q8 at 8-bit weights), its cost model (time grows
with the weight bits; set-up and data movement count), and the engine assignment pass."""

from __future__ import annotations

import ctypes
import shutil
import subprocess

import numpy as np
import pytest

from slmc.errors import SlmcError
from slmc.quant.npu import bitplanes, bitserial_dot, pack_npu, requantize, unpack_npu
from slmc.sim.engine_cost import cluster_linear_cost, npu_linear_cost
from slmc.kernels.registry import C_DIR
from slmc.plan.engines import parse_overrides
from slmc.targets import get_target

NPU = get_target("siracusa-like").engines.npu
CLUSTER = get_target("siracusa-like").engines.cluster


@pytest.mark.parametrize("bits", range(2, 9))
def test_bitserial_is_the_integer_dot(bits):
    rng = np.random.default_rng(bits)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    w = rng.integers(lo, hi + 1, (24, 64))
    x = rng.integers(-128, 128, (3, 64))
    assert np.array_equal(bitserial_dot(x, bitplanes(w, bits)), (x @ w.T).astype(np.int32))
    with pytest.raises(ValueError):
        bitplanes(np.array([hi + 1]), bits)


def test_requantize_to_4_bits():
    rng = np.random.default_rng(0)
    wq = rng.integers(-127, 128, (16, 128)).astype(np.int8)
    ws = rng.uniform(0.001, 0.01, (16, 2)).astype(np.float32)
    q, s = requantize(wq, ws, 64, 4)
    assert q.min() >= -7 and q.max() <= 7 and s.shape == ws.shape
    w = wq.astype(np.float32).reshape(16, 2, 64) * ws[..., None]
    err = np.abs(q.astype(np.float32).reshape(16, 2, 64) * s[..., None] - w).max(axis=-1)
    assert np.all(err <= s / 2 + 1e-7)  # within half a 4-bit step


def test_cost_model():
    c8, c4, c2 = (npu_linear_cost(NPU, 16, 512, 512, b) for b in (8, 4, 2))
    assert c8.compute_cycles == 2 * c4.compute_cycles == 4 * c2.compute_cycles  # bit-serial
    assert c8.energy_pj > c4.energy_pj
    dec = npu_linear_cost(NPU, 1, 64, 64)
    assert dec.cycles >= NPU.job_setup_cycles + dec.transfer_cycles  # a decode product is set-up + transfer bound
    big = cluster_linear_cost(CLUSTER, 16, 512, 512)
    assert big.cycles / c8.cycles > 10  # prompt-mode products: the NPU wins by an order of magnitude
    with pytest.raises(ValueError):
        npu_linear_cost(NPU, 1, 64, 64, 1)


def test_overrides():
    assert parse_overrides("linear=npu, attention=cluster") == {"linear_q8": "npu", "attention": "cluster"}
    with pytest.raises(SlmcError):
        parse_overrides("linear=gpu")


@pytest.mark.parametrize("bits", (2, 4, 8))
def test_npu_layout_round_trip(bits):
    rng = np.random.default_rng(bits)
    w = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), (5, 172)).astype(np.int8)  # k not a multiple of 8
    packed = pack_npu(w, bits)
    assert packed.shape == (5, bits, 22) and packed.dtype == np.uint8
    assert np.array_equal(unpack_npu(packed, 172), w)


@pytest.mark.slow
@pytest.mark.parametrize("bits", (8, 4, 2))
def test_c_model_bit_exact(tmp_path, bits):
    """npu_linear.c on weights in the NPU layout = its numpy twin (reference linear_q8 with layout
    "npu"), bit for bit; at 8 bits also = linear_q8.c on the same weights in row-major int8."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    from slmc.reference.llm_ops import linear_q8 as twin

    lib = tmp_path / "npu.so"
    subprocess.run(["gcc", "-O2", "-ffp-contract=off", "-shared", "-fPIC", f"-I{C_DIR}", "-o", str(lib),
                    str(C_DIR / "npu_linear.c"), str(C_DIR / "linear_q8.c")], check=True)
    so = ctypes.CDLL(str(lib))
    rng = np.random.default_rng(bits)
    n, k, m, group = 3, 128, 40, 64
    xq = rng.integers(-128, 128, (n, k)).astype(np.int8)
    xs = rng.uniform(0.01, 0.1, (n, k // group)).astype(np.float32)
    ws = rng.uniform(0.001, 0.01, (m, k // group)).astype(np.float32)
    b = rng.standard_normal(m).astype(np.float32)
    wq = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), (m, k)).astype(np.int8)
    P = ctypes.c_void_p

    def call(fn, w, *extra):
        out = np.zeros((n, m), np.float32)
        fn(P(out.ctypes.data), P(xq.ctypes.data), P(xs.ctypes.data), P(w.ctypes.data), P(ws.ctypes.data),
           P(b.ctypes.data), n, k, m, group, *extra)
        return out

    packed = pack_npu(wq, bits)
    got = call(so.slmc_npu_linear_q8, packed, bits)
    want = twin([xq, xs, packed, ws, b], {"group": group, "layout": "npu"})[0]
    assert got.tobytes() == np.asarray(want, np.float32).tobytes()
    assert got.tobytes() == call(so.slmc_linear_q8, wq).tobytes()  # the same products as the cluster's kernel
