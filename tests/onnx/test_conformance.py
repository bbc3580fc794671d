"""The onnx package's node-conformance cases for every operator slmc accepts, compiled to C with host gcc
and run (tests/onnx/onnx_conformance.py does the work, in chunks). A case passes, or is rejected with an
SlmcError of a known kind (an unsupported element type, say); a crash or a wrong number fails.
docs/ONNX_COVERAGE.md is this run's table: `.venv/bin/python tests/onnx/onnx_conformance.py` rewrites it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.append(str(Path(__file__).parent))  # the helper modules next to this file
import onnx_conformance as oc  # noqa: E402

pytestmark = pytest.mark.slow


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # loading the cases takes seconds: not when the slow tier is deselected anyway
    if "case_name" in metafunc.fixturenames:
        skip = "not slow" in (metafunc.config.getoption("markexpr") or "")
        metafunc.parametrize("case_name", [] if skip else oc.accepted_names())


@pytest.fixture(scope="session")
def conformance_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # one set of chunk results for all workers
        root = root.parent
    return root / "onnx-conformance"


def test_compiled_c_matches_expected_outputs(case_name: str, conformance_root: Path) -> None:
    o = oc.outcome(case_name, conformance_root)
    if o.status == "rejected":
        assert oc.rejection_kind(o.detail), f"rejected for an unexpected reason: {o.detail}"
        assert "\n" not in o.detail and "Traceback" not in o.detail
    else:
        assert o.status == "passed", o.detail


def test_numpy_twins_match_expected_outputs(case_name: str) -> None:
    """The twins are the oracle (and what constant folding computes with): they must agree too."""
    from slmc.errors import SlmcError
    from slmc.frontend.onnx_import import import_graph
    from slmc.passes import run_pipeline
    from slmc.reference.interp import run

    case = oc.all_cases()[case_name]
    ins, want = case.data_sets[0]
    model, ins, _ = oc.specialise(case.model, [oc._arr(x) for x in ins])
    try:
        g = run_pipeline(import_graph(model))
    except SlmcError as e:
        assert oc.rejection_kind(str(e)), f"rejected for an unexpected reason: {e}"
        return
    got = run(g, {v.name: x for v, x in zip(g.inputs, ins)})
    for v, w in zip(g.outputs, want):
        w = oc._arr(w)
        assert got[v.name].shape == w.shape
        if w.dtype.kind == "f":
            rtol, atol = oc.TOLERANCE.get(case_name, oc.TOLERANCE["default"])
            np.testing.assert_allclose(got[v.name], w, rtol=rtol, atol=atol, equal_nan=True)
        else:
            np.testing.assert_array_equal(got[v.name], w)
