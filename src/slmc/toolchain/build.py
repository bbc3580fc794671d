"""`make` in the generated folder: the same Makefile a user runs by hand."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from slmc.errors import SlmcError
from slmc.output import folder_lock, register

_OVERFLOW = re.compile(r"region [`']?(\w+)'? overflowed by (\d+) bytes")


def build(project: Path, jobs: int = 2) -> Path:
    """Builds the project and returns the program (the host executable or the target's ELF)."""
    project = Path(project)
    if not (project / "Makefile").exists():
        raise SlmcError(f"{project} holds no generated project (no Makefile)", "run `slmc compile ... -o DIR` first")
    cc = makefile_var(project / "Makefile", "CC")
    if cc and shutil.which(cc) is None:
        raise SlmcError(f"the C compiler '{cc}' is not installed", "run `make toolchains` (or install it) and retry")
    bin_path = makefile_var(project / "Makefile", "BIN") or "model"
    # two `slmc run` of one unbuilt project would race on make (ld: Text file busy): the second waits for
    # the first, then finds everything built
    with folder_lock(project):
        r = subprocess.run(["make", "-s", "-C", str(project), f"-j{jobs}"], capture_output=True, text=True)
        if r.returncode == 0:  # make's outputs join slmc's files in the marker: a re-compile removes them
            top = bin_path.split("/")[0]
            register(project, files=() if "/" in bin_path else (bin_path,), trees=(top,) if "/" in bin_path else ())
    if r.returncode != 0:
        text = r.stderr + r.stdout
        over = _OVERFLOW.findall(text)
        if over:
            what = ", ".join(f"{'SRAM' if m == 'ram' else m} by {int(n):,} B" for m, n in over)
            raise SlmcError(f"the program does not fit the target's memory when linked: {what}",
                            "see build/model.map; use a shorter --context, -q q8, or a target with more memory")
        tail = text.strip().splitlines()[-12:]
        raise SlmcError("building the generated C failed:\n" + "\n".join(tail), "this is a bug in slmc; please report it")
    return project / bin_path


def makefile_var(path: Path, name: str) -> str | None:
    """The first word of `NAME = value` in a generated Makefile."""
    for line in path.read_text().splitlines():
        if line.startswith(f"{name} = "):
            words = line.split("=", 1)[1].strip().split()
            return words[0] if words else None
    return None
