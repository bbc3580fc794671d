"""The expert predictor's C kernel (kernels/c/moe_predict_f32.c) and the expert cache's prefetch and marks
(kernels/c/expert_cache.c), compiled with gcc into a shared library and called through ctypes: the plan
against the numpy twin (reference/moe_ops.py) and against the loader's own numpy math
(frontend/expert_predictor.py's ExpertPredictor.predict); the slots after a prefetch against the experts'
bytes; hits, misses and the marks against the rules in expert_cache.c's comment."""

from __future__ import annotations

import ctypes
import shutil
import subprocess

import numpy as np
import pytest

from slmc.frontend.expert_predictor import ExpertPredictor
from slmc.kernels.registry import C_DIR
from slmc.reference.moe_ops import moe_predict

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")]

DIM, E, K, N_PRED, FIRST = 24, 6, 2, 3, 1
P = ctypes.POINTER
i32p, f32p, u8p = P(ctypes.c_int32), P(ctypes.c_float), P(ctypes.c_uint8)


@pytest.fixture(scope="module")
def lib(tmp_path_factory) -> ctypes.CDLL:
    out = tmp_path_factory.mktemp("kern") / "libpredict.so"
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-I", str(C_DIR), str(C_DIR / "moe_predict_f32.c"),
                    str(C_DIR / "expert_cache.c"), "-o", str(out), "-lm"], check=True)
    return ctypes.CDLL(str(out))


def _p(a: np.ndarray, t):
    return a.ctypes.data_as(t) if a is not None else None


def _predictor(hidden: int, seed: int) -> ExpertPredictor:
    g = np.random.default_rng(seed)
    out = N_PRED * E
    f = np.float32
    w0 = g.normal(0, 0.4, (hidden or out, DIM)).astype(f)
    b0 = g.normal(0, 0.1, hidden or out).astype(f)
    w1 = g.normal(0, 0.4, (out, hidden)).astype(f) if hidden else None
    b1 = g.normal(0, 0.1, out).astype(f) if hidden else None
    return ExpertPredictor("layer_output", FIRST - 1, tuple(range(FIRST, FIRST + N_PRED)), E, K, 1e-5, w0, b0, w1, b1)


def _call(lib, pr: ExpertPredictor, h: np.ndarray, active: int = 1, cache=None) -> np.ndarray:
    n = h.shape[0]
    plan = np.full((n, N_PRED, K), -7, np.int32)
    scratch = np.zeros(DIM + (pr.hidden or N_PRED * E) + N_PRED * E, np.float32)
    pool, table, slots, slot_bytes, srcs, sizes, parts = cache or (None, None, 0, 0, None, None, 0)
    lib.slmc_moe_predict_f32(active, _p(plan, i32p), _p(h, f32p), _p(pr.fc0_w, f32p), _p(pr.fc0_b, f32p),
                             _p(pr.fc1_w, f32p), _p(pr.fc1_b, f32p), _p(scratch, f32p), n, DIM, pr.hidden, N_PRED, E,
                             K, ctypes.c_float(pr.eps), _p(pool, u8p), _p(table, i32p), slots, slot_bytes, FIRST,
                             srcs, _p(sizes, i32p), parts)
    return plan


@pytest.mark.parametrize("hidden", [0, 16])
def test_the_plan_matches_the_numpy_twin_and_the_loaders_math(lib, hidden: int) -> None:
    pr = _predictor(hidden, seed=hidden)
    h = np.random.default_rng(7).normal(0, 2, (5, DIM)).astype(np.float32)
    got = _call(lib, pr, h)
    twin = moe_predict([np.zeros((5, N_PRED, K), np.int32), h, pr.fc0_w, pr.fc0_b, pr.fc1_w, pr.fc1_b],
                       dict(active=1, eps=pr.eps, n_pred=N_PRED, n_experts=E, m=K))[0]
    assert np.array_equal(got, twin)
    assert np.array_equal(got, pr.predict(h, K))   # frontend/expert_predictor.py's float32 numpy, independently
    assert (got >= 0).all() and (got < E).all()
    # inactive (every other layer of the loop): the plan is left alone
    assert (_call(lib, pr, h, active=0) == -7).all()


def test_prefetch_fills_marked_slots_and_later_fetches_hit(lib) -> None:
    """Three predicted layers x K experts into 8 slots: each planned expert's bytes land in a slot, its later
    fetch is a hit counted as a prefetch hit; an unplanned expert is a miss that replaces no marked slot."""
    pr = _predictor(0, seed=3)
    g = np.random.default_rng(11)
    parts = [g.integers(0, 255, (E, 40), dtype=np.uint8), g.integers(0, 255, (E, 24), dtype=np.uint8)]
    layers = [[a.copy() for a in parts] for _ in range(N_PRED)]            # each predicted layer's expert arrays
    for lay, arrays in enumerate(layers):
        arrays[0][:, 0] = lay                                              # tell the layers apart
    sizes = np.array([a.shape[1] for a in parts], np.int32)
    slot_bytes, slots = int(sum((s + 3) // 4 * 4 for s in sizes)), 8
    pool = np.zeros(slots * slot_bytes, np.uint8)
    table = np.zeros(3 * slots + 8, np.int32)
    srcs = (u8p * (N_PRED * 2))(*[_p(a, u8p) for arrays in layers for a in arrays])
    h = g.normal(0, 1, (1, DIM)).astype(np.float32)
    plan = _call(lib, pr, h, cache=(pool, table, slots, slot_bytes, srcs, sizes, 2))[0]
    tags, marks, stat = table[:slots], table[2 * slots:3 * slots], table[3 * slots:]
    assert stat[5] == N_PRED * K and stat[7] == N_PRED * K and stat[2] == 0   # loads issued, planned; no miss
    assert stat[3] == N_PRED * K * slot_bytes
    for p in range(N_PRED):
        for e in plan[p]:
            tag = (FIRST + p) * E + int(e)
            (s,) = np.flatnonzero(tags == tag + 1)
            assert marks[s] == (FIRST + p) * E + 1
            copy = pool[s * slot_bytes: (s + 1) * slot_bytes]
            assert np.array_equal(copy[:40], layers[p][0][e]) and np.array_equal(copy[40:64], layers[p][1][e])

    fetch = lib.slmc_expert_fetch
    fetch.restype = u8p
    part0 = (u8p * 2)(_p(parts[0], u8p), _p(parts[1], u8p))

    def use(layer: int, e: int) -> int:
        ptr = fetch(_p(pool, u8p), _p(table, i32p), slots, slot_bytes, 2, layer * E, e, part0, _p(sizes, i32p), 2)
        return (ctypes.addressof(ptr.contents) - pool.ctypes.data) // slot_bytes

    hits0 = stat[1]
    s = use(FIRST, int(plan[0][0]))
    assert stat[1] == hits0 + 1 and stat[6] == 1 and marks[s] == 0         # a prefetched expert: hit, mark ends
    unplanned = next(e for e in range(E) if e not in plan[0])
    marked_before = set(np.flatnonzero(marks))
    s = use(FIRST, unplanned)                                             # a misprediction: loaded on demand
    assert stat[2] == 1 and s not in marked_before
    # a later layer's fetch ends the marks of the layers before it (layer FIRST's unused planned expert)
    use(FIRST + 1, int(plan[1][0]))
    assert not any(m and m - 1 < (FIRST + 1) * E for m in marks)
    assert stat[6] == 2
