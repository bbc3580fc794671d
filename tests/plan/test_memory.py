"""The greedy planner against the independent checker and the live-bytes lower bound."""

from hypothesis import given, settings, strategies as st

import pytest

from slmc.plan.check import PlanError, check
from slmc.plan.lifetimes import Buffer, live_peak
from slmc.plan.memory import Placement, greedy_by_size


@st.composite
def buffer_sets(draw):
    n = draw(st.integers(1, 40))
    bufs = []
    for i in range(n):
        a = draw(st.integers(0, 30))
        b = draw(st.integers(a, 30))
        bufs.append(Buffer(f"b{i}", draw(st.integers(1, 5000)), a, b))
    return bufs


@settings(max_examples=200, deadline=None)
@given(buffer_sets())
def test_greedy_plans_pass_the_checker_and_respect_the_bound(bufs):
    p = greedy_by_size(bufs)
    check(bufs, p)
    assert p.size >= live_peak(bufs, 31)


def test_checker_rejects_overlap_of_live_buffers():
    bufs = [Buffer("a", 64, 0, 2), Buffer("b", 64, 1, 3)]
    with pytest.raises(PlanError, match="overlap"):
        check(bufs, Placement((0, 32), 96, "bad"))
    check([Buffer("a", 64, 0, 1), Buffer("b", 64, 2, 3)], Placement((0, 0), 64, "reuse"))


def test_checker_rejects_misalignment_and_overrun():
    with pytest.raises(PlanError, match="aligned"):
        check([Buffer("a", 8, 0, 0)], Placement((4,), 16, "bad"))
    with pytest.raises(PlanError, match="overruns"):
        check([Buffer("a", 32, 0, 0)], Placement((0,), 16, "bad"))


@settings(max_examples=15, deadline=None)
@given(buffer_sets())
def test_cpsat_plans_pass_the_checker_and_are_never_worse_than_greedy(bufs):
    from slmc.plan.cpsat import cpsat_plan

    p, info = cpsat_plan(bufs, deterministic_time=0.2)
    check(bufs, p)
    assert p.size <= greedy_by_size(bufs).size
    assert live_peak(bufs, 31) <= info.lower_bound <= p.size
    if info.optimal:
        assert info.lower_bound == p.size or p.planner == "cpsat"
