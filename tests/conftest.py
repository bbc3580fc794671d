"""Shared test helpers.

External ground truth lives in ../shared (read-only). Locally it may be missing, so tests that need it
skip with a reason; in CI it must be there, so a missing file is a failure rather than a silent skip.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

SHARED = Path(os.environ.get("SLMC_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))


def shared_path(rel: str) -> Path:
    """Path of `rel` under ../shared; skips the calling test when absent (fails when CI=true)."""
    p = SHARED / rel
    if not p.exists():
        msg = f"{p} is absent (external ground truth in ../shared; set SLMC_SHARED to its location)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return p


@pytest.fixture
def shared() -> Callable[[str], Path]:
    """`shared_path` as a fixture, for test modules that cannot import conftest directly."""
    return shared_path


def run_slmc(*args, cwd: Path | None = None, env: dict | None = None, timeout: float = 600):
    """`python -m slmc.cli ARGS` as a user runs it: a subprocess, output captured."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "slmc.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, **(env or {})}, timeout=timeout)


def one_line_error(r, *needles: str, code: int = 2) -> str:
    """The promise for bad input: exit code 2, exactly one non-empty line on stderr naming the cause
    (each of `needles`), no traceback. Returns that line."""
    assert r.returncode == code, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr + r.stdout
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    for n in needles:
        assert n.lower() in lines[0].lower(), lines[0]
    return lines[0]
