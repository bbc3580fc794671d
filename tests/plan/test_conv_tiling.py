"""Tiling of convolutions and pools (plan/conv_tiling.py, issue 20): the halo rows against a brute force
over every tap, the tiles against the capacity, and every overlap contract of the tiled loops against an
independent walk of those loops (each load and store of the emitted C, in order), byte by byte."""

from __future__ import annotations

import sys
import tempfile
from math import ceil
from pathlib import Path

import numpy as np
import onnx
import pytest

from slmc.driver import bind
from slmc.frontend.onnx_import import load
from slmc.plan.conv_tiling import ConvShape, best_conv_tiles, conv_choice, conv_shape, tiled_contract
from slmc.targets import get_target

sys.path.append(str(Path(__file__).parent))
from conv_cases import conv_models  # noqa: E402


def _nodes() -> list[tuple]:
    out = []
    folder = Path(tempfile.mkdtemp(prefix="slmc-conv-cases-"))
    for name, model, _ in conv_models():
        path = folder / f"{name}.onnx"
        onnx.save(model, str(path))
        g = load(path)
        binding = bind([g], get_target("host"))
        for n in g.nodes:
            spec = binding.get(id(n))
            if spec is not None and spec.tiling is not None:
                s = conv_shape(n, spec.tiling, spec.emit, 1, 2, 1)
                assert s is not None, n.name
                out.append((n, spec, s))
    return out


NODES = _nodes()
IDS = [n.name for n, _, _ in NODES]


def test_every_branch_is_tiled():
    assert len(NODES) == 24 and {s.kind for _, _, s in NODES} == {"conv", "convt", "pool"}
    one_d = [s for n, _, s in NODES if len(n.inputs[0].shape) == 3]
    assert one_d and all(s.w == 1 and s.h > 1 for s in one_d), "1-D: its positions are the rows"
    three_d = [(n, s) for n, _, s in NODES if len(n.inputs[0].shape) == 5]
    assert len(three_d) == 5 and all(s.ax == -1 and s.h == n.inputs[0].shape[2] for n, s in three_d), "3-D: by depth"


@pytest.mark.parametrize("node,spec,s", NODES, ids=IDS)
def test_halo_rows_are_exactly_the_rows_the_taps_reach(node, spec, s: ConvShape):
    """A conv or pool tile's input rows run from its first tap row to its last, clipped to the input (with a
    dilation above 1 a clipped border may hold a row between taps: the tile's pad skips it); a ConvTranspose
    tile's are exactly the first to the last input row its outputs gather from."""
    for rt in range(1, s.oh + 1):
        for oy0, nr, lo, hi in s.row_tiles(rt):
            if s.kind == "convt":   # output oy gathers input iy where oy = iy * stride - pad + ky * dilation
                inside = sorted({iy for oy in range(oy0, oy0 + nr) for ky in range(s.kh) for iy in range(s.h)
                                 if iy * s.sh - s.pt + ky * s.dh == oy})
                assert (lo, hi) == ((inside[0], inside[-1] + 1) if inside else (lo, lo)), (rt, oy0)
                continue
            rows = {oy * s.sh - s.pt + ky * s.dh for oy in range(oy0, oy0 + nr) for ky in range(s.kh)}
            inside = sorted(r for r in rows if 0 <= r < s.h)
            if not inside:
                assert hi == lo, (rt, oy0)
                continue
            assert (lo, hi) == (max(0, min(rows)), min(s.h, max(rows) + 1)), (rt, oy0)
            assert lo <= inside[0] and inside[-1] < hi and (s.dh > 1 or (lo, hi) == (inside[0], inside[-1] + 1))


@pytest.mark.parametrize("node,spec,s", NODES, ids=IDS)
def test_tiles_fit_and_one_tile_when_everything_fits(node, spec, s: ConvShape):
    whole = best_conv_tiles(s, 1 << 30)
    assert whole is not None and whole.calls == s.n and whole.bytes_moved == s.compulsory()
    for cap in (64, 256, 1024, 4096):
        c = best_conv_tiles(s, cap)
        assert c is None or c.footprint <= cap
        if c is not None:
            assert s.groups == 1 or c.nt >= s.mg or s.mg % c.nt == 0      # a tile never straddles a group
    assert best_conv_tiles(s, 8) is None


def _walk(s: ConvShape, ch) -> tuple[np.ndarray, np.ndarray]:
    """Per input element the time of its last load, per output element of its first store, from the loops
    as codegen/tiled_conv.py writes them."""
    x = np.full((s.n, s.c, s.h, s.w), -1, dtype=np.int64)
    y = np.full((s.n, s.m, s.oh, s.ow), 1 << 40, dtype=np.int64)
    t = [0]

    def chans(m0: int, mc: int) -> slice:
        if s.groups == 1:
            return slice(0, s.c)
        c0 = m0 // s.mg * s.cg
        return slice(c0, c0 + (mc // s.mg * s.cg if ch.nt >= s.mg else s.cg))

    def load(ni: int, cs: slice, lo: int, hi: int) -> None:
        x[ni, cs, lo:hi] = t[0]
        t[0] += 1

    def store(ni: int, m0: int, mc: int, oy0: int, nr: int) -> None:
        v = y[ni, m0:m0 + mc, oy0:oy0 + nr]
        y[ni, m0:m0 + mc, oy0:oy0 + nr] = np.minimum(v, t[0])
        t[0] += 1
    ms = [(m0, min(ch.nt, s.m - m0)) for m0 in range(0, s.m, ch.nt)]
    if ch.order == "rows-outer":
        for ni in range(s.n):
            for oy0, nr, lo, hi in s.row_tiles(ch.mt):
                load(ni, slice(0, s.c), lo, hi)
                for m0, mc in ms:
                    store(ni, m0, mc, oy0, nr)
    else:
        for m0, mc in ms:
            for ni in range(s.n):
                for oy0, nr, lo, hi in s.row_tiles(ch.mt):
                    load(ni, chans(m0, mc), lo, hi)
                    store(ni, m0, mc, oy0, nr)
    return np.repeat(x.ravel(), s.x_elem), np.repeat(y.ravel(), s.out_elem)


def _ok(last_read: np.ndarray, first_write: np.ndarray, d: int) -> bool:
    """Output at in.offset + d: every byte it shares with the input is written after its last read."""
    lo, hi = max(0, d), min(len(last_read), d + len(first_write))
    return lo >= hi or bool(np.all(first_write[lo - d:hi - d] > last_read[lo:hi]))


def _choices(s: ConvShape):
    orders = ("m-outer", "rows-outer") if s.groups == 1 and s.kind == "conv" else ("m-outer",)
    for order in orders:
        for ct in sorted({1, s.mg, 2 * s.mg, s.m} & set(s.chan_tiles())):
            for rt in sorted({1, 2, ceil(s.oh / 2), s.oh}):
                yield conv_choice(s, order, ct, rt)


@pytest.mark.parametrize("node,spec,s", NODES, ids=IDS)
def test_tiled_contracts_hold_for_the_tile_walk(node, spec, s: ConvShape):
    """Every offset the contract allows passes the walk; some contracts are not empty (depthwise, pools,
    pointwise), so the test can fail by allowing too much."""
    allowed = 0
    for ch in _choices(s):
        last_read, first_write = _walk(s, ch)
        for sh in tiled_contract(node, s, ch):
            assert (sh.out, sh.inp) == (0, 0)
            for d in range(sh.lo, sh.hi + 1, 4):
                assert _ok(last_read, first_write, d), (ch.order, ch.nt, ch.mt, sh.why, d)
            allowed = max(allowed, sh.hi - sh.lo + (sh.exact and sh.hi == 0))
    if node.op != "Conv" or int(node.attrs.get("group", 1)) > 1 or node.inputs[1].shape[2:] == (1, 1):
        assert allowed > 0, "no contract where the walk allows one"


def test_the_walk_rejects_what_no_contract_allows():
    """The judge can fail: a group-1 conv in two channel tiles reloads all of x for the second, so its
    output may not lie on its input; a depthwise conv in row tiles reads a channel again after storing
    part of it, so its output may not lie exactly on it, but one channel below it may."""
    by = {n.name: (n, s) for n, _, s in NODES}
    n, s = by["dense8"]
    ch = conv_choice(s, "m-outer", 4, s.oh)
    assert not _ok(*_walk(s, ch), 0) and tiled_contract(n, s, ch) == ()
    n, s = by["dw3"]
    ch = conv_choice(s, "m-outer", 1, 1)
    (sh,) = tiled_contract(n, s, ch)
    walk = _walk(s, ch)
    assert not _ok(*walk, 0) and _ok(*walk, -s.oh * s.ow * 4) and sh.hi == -s.oh * s.ow * 4
