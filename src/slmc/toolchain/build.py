"""`make` in the generated folder: the same Makefile a user runs by hand."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from slmc.errors import SlmcError


def build(project: Path, jobs: int = 2) -> Path:
    project = Path(project)
    if not (project / "Makefile").exists():
        raise SlmcError(f"{project} holds no generated project (no Makefile)", "run `slmc compile ... -o DIR` first")
    cc = _makefile_var(project / "Makefile", "CC")
    if cc and shutil.which(cc) is None:
        raise SlmcError(f"the C compiler '{cc}' is not installed", "run `make toolchains` (or install it) and retry")
    r = subprocess.run(["make", "-s", "-C", str(project), f"-j{jobs}"], capture_output=True, text=True)
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-12:]
        raise SlmcError("building the generated C failed:\n" + "\n".join(tail), "this is a bug in slmc; please report it")
    return project / "model"


def _makefile_var(path: Path, name: str) -> str | None:
    for line in path.read_text().splitlines():
        if line.startswith(f"{name} = "):
            return line.split("=", 1)[1].strip().split()[0]
    return None
