"""Property tests of the planners behind one signature and of the tile search (issue 5)."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from slmc.plan.check import check
from slmc.plan.cpsat import cpsat_plan
from slmc.plan.lifetimes import Buffer, live_peak
from slmc.plan.memory import greedy_by_size
from slmc.plan.tiling import MatmulShape, best_matmul_tiles, compulsory_bytes, matmul_choice, smallest_matmul_tiles


@st.composite
def buffer_sets(draw):
    n = draw(st.integers(1, 24))
    bufs = []
    for i in range(n):
        a = draw(st.integers(0, 20))
        b = draw(st.integers(a, 20))
        bufs.append(Buffer(f"b{i}", draw(st.integers(1, 4000)), a, b, draw(st.sampled_from([4, 16, 64]))))
    return bufs


@settings(max_examples=40, deadline=None)
@given(buffer_sets())
def test_every_plan_passes_the_checker_and_is_never_worse_than_greedy(bufs):
    greedy = greedy_by_size(bufs)
    plan, info = cpsat_plan(bufs, deterministic_time=0.2)
    check(bufs, greedy)
    check(bufs, plan)
    assert live_peak(bufs, 21) <= info.lower_bound <= plan.size <= greedy.size
    if info.optimal:
        assert info.lower_bound <= plan.size


@st.composite
def shapes(draw):
    return MatmulShape(rows=draw(st.integers(1, 24)), k=draw(st.integers(1, 48)), n_out=draw(st.integers(1, 40)),
                       elem=4, x_level=1, w_level=draw(st.sampled_from([1, 2])), out_level=1,
                       double=draw(st.booleans()))


@settings(max_examples=60, deadline=None)
@given(shapes(), st.integers(64, 20000))
def test_tile_choice_is_the_cheapest_that_fits(s, capacity):
    best = best_matmul_tiles(s, capacity)
    brute = [c for o in ("w-outer", "x-outer") for nt in range(1, s.n_out + 1) for mt in range(1, s.rows + 1)
             for d in (True, False) for c in [matmul_choice(s, o, nt, mt, d)] if c.footprint <= capacity]
    if best is None:
        assert not brute
        assert smallest_matmul_tiles(s).footprint > capacity
        return
    assert best.footprint <= capacity
    assert best.key() == min(c.key() for c in brute)
    assert best.bytes_moved >= compulsory_bytes(s)
    # the tile buffers, all live during the operator, place within the capacity and pass the checker
    bufs = [Buffer(f"{r}{i}", b, 0, 0) for i, (r, b) in enumerate(best.buffers)]
    p, _ = cpsat_plan(bufs)
    check(bufs, p)
    assert p.size <= best.footprint <= capacity


def test_everything_fits_moves_the_compulsory_bytes_once():
    s = MatmulShape(rows=16, k=64, n_out=512, elem=4, x_level=1, w_level=2, out_level=1, double=True)
    c = best_matmul_tiles(s, 1 << 24)
    assert c is not None and c.bytes_moved == compulsory_bytes(s) and c.resident
    # the weights still stream in two or more double-buffered tiles: their transfer hides behind compute
    assert c.order == "w-outer" and c.nt < s.n_out and c.exposed == compulsory_bytes(s) - s.n_out * s.k * 4


def test_double_buffering_only_with_dma():
    s = MatmulShape(rows=1, k=64, n_out=512, elem=4, x_level=1, w_level=2, out_level=1, double=True)
    with_dma = best_matmul_tiles(s, 8192)
    without = best_matmul_tiles(MatmulShape(**{**s.__dict__, "double": False}), 8192)
    # a single buffer where only a single buffer fits: one row of w (256 B) twice, x and out do not fit 700 B
    tight = best_matmul_tiles(s, 700)
    assert tight is not None and [r for r, _ in tight.buffers].count("w") == 1
    assert [r for r, _ in with_dma.buffers].count("w") == 2
    assert [r for r, _ in without.buffers].count("w") == 1
    assert with_dma.exposed < without.exposed


@st.composite
def q8_shapes(draw):
    group = draw(st.sampled_from([4, 8, 16]))
    return MatmulShape(rows=draw(st.integers(1, 24)), k=group * draw(st.integers(1, 6)), n_out=draw(st.integers(1, 40)),
                       elem=4, x_level=1, w_level=draw(st.sampled_from([1, 2])), out_level=1,
                       double=draw(st.booleans()), groups=draw(st.integers(1, 2)))


@settings(max_examples=60, deadline=None)
@given(q8_shapes(), st.integers(64, 20000), st.sampled_from([1, 4]))
def test_q8_tile_choice_is_the_cheapest_that_fits(s, capacity, mult):
    """q8: rows of x and w carry their scales (K + 4 * groups bytes moved per row; a tile is its
    int8 rows, aligned, then its scales); a blocked layout ("rows4") cuts w in whole blocks of 4."""
    from slmc.kernels.tiles import Q8MatmulTiles
    from slmc.plan.lifetimes import ALIGN

    rule = Q8MatmulTiles("f", w_multiple=mult)
    best = best_matmul_tiles(s, capacity, rule)
    wn = [nt for nt in range(1, s.n_out + 1) if nt % mult == 0 or nt >= s.n_out]
    brute = [c for o in ("w-outer", "x-outer") for nt in wn for mt in range(1, s.rows + 1)
             for d in (True, False) for c in [matmul_choice(s, o, nt, mt, d)] if c.footprint <= capacity]
    if best is None:
        assert not brute
        assert smallest_matmul_tiles(s, mult).footprint > capacity
        return
    assert best.nt % mult == 0 or best.nt >= s.n_out
    assert best.key() == min(c.key() for c in brute)
    row = s.k + 4 * s.groups
    assert s.row == row and best.bytes_moved >= compulsory_bytes(s) == (s.rows + s.n_out) * row + s.rows * s.n_out * 4
    for role, b in best.buffers:
        if role != "out":
            r = best.nt if role == "w" else best.mt
            assert b == -(-r * s.k // ALIGN) * ALIGN + 4 * r * s.groups


def test_q8_everything_fits_moves_int8_rows_and_scales_once():
    s = MatmulShape(rows=16, k=64, n_out=512, elem=4, x_level=1, w_level=2, out_level=1, double=True, groups=1)
    c = best_matmul_tiles(s, 1 << 24)
    assert c is not None and c.resident and dict(((a, b), n) for a, b, n in c.moved) == {
        (2, 0): 512 * 68, (1, 0): 16 * 68, (0, 1): 16 * 512 * 4}


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 40), st.lists(st.integers(1, 2000), min_size=1, max_size=3), st.lists(st.integers(4, 3000), max_size=2),
       st.integers(4, 2000), st.booleans(), st.integers(64, 30000))
def test_row_tiles_are_the_cheapest_that_fit(rows, row_bytes, whole, out_row, double, capacity):
    from slmc.plan.tiling import RowShape, best_row_tiles, row_choice

    s = RowShape(rows, tuple(row_bytes), tuple(whole), out_row, tuple(1 for _ in row_bytes), tuple(2 for _ in whole), 1, double)
    best = best_row_tiles(s, capacity)
    brute = [c for r in range(1, rows + 1) for d in (True, False) for c in [row_choice(s, r, d)] if c.footprint <= capacity]
    if best is None:
        assert not brute
        return
    assert best.footprint <= capacity and best.key() == min(c.key() for c in brute)
    assert best.bytes_moved == compulsory_bytes(s)   # row tiles never re-read anything


def test_head_tiles_double_buffer_only_when_two_heads_fit():
    from slmc.plan.tiling import HeadShape, best_head_tiles

    s = HeadShape(rows=16, n_heads=8, n_kv_heads=4, head_dim=8, positions=512, kv_elem=4, scratch=2048,
                  q_level=1, kv_level=1, out_level=1, double=True)
    big, small = best_head_tiles(s, 1 << 20), best_head_tiles(s, 40 * 1024)
    assert [r for r, _ in big.buffers].count("k") == 2 and [r for r, _ in small.buffers].count("k") == 1
    assert big.bytes_moved == small.bytes_moved == compulsory_bytes(s) and big.exposed < small.exposed
    assert best_head_tiles(s, 16 * 1024) is None   # one head's keys alone are 16 KiB
