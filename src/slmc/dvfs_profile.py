"""`slmc dvfs`'s profiles: the model compiled for both RP2350 ISAs and run under the exact instruction
counters, per operator (1. of sim/dvfs.py). It composes the driver and the toolchain, so it sits above
both; sim/ only reads the profiles it returns.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Callable

from slmc.driver import CompileOptions, compile_model
from slmc.errors import SlmcError
from slmc.kernels.registry import C_DIR
from slmc.sim.dvfs import ISA_TARGETS
from slmc.targets import get_target
from slmc.toolchain.profile import count_run
from slmc.toolchain.run import llm_args


def _cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "slmc" / "dvfs"


def profile_model(model: Path, numerics: str, steps: int = 8, progress: Callable[[str], None] = lambda s: None,
                  cache: Path | None = None) -> dict:
    """{isa: {"profile": ..., "report": ...}} for both RP2350 ISAs, cached by model bytes, numerics, steps and
    the kernel sources (a changed kernel changes the counts)."""
    model = Path(model)
    if not model.exists():
        raise SlmcError(f"model '{model}' does not exist", "check the path")
    h = hashlib.sha256()
    for f in sorted(model.rglob("*")) if model.is_dir() else [model]:
        if f.is_file():
            h.update(f.name.encode())
            h.update(f.read_bytes())
    for f in sorted(C_DIR.glob("*")):
        h.update(f.read_bytes())
    key = f"{h.hexdigest()[:16]}-{numerics}-{steps}-v2"  # v2: reports carry weights_sram_share
    cdir = (cache or _cache_dir()) / key
    out = {}
    for isa, tname in ISA_TARGETS.items():
        cf = cdir / f"{tname}.json"
        if cf.is_file():
            try:
                out[isa] = json.loads(cf.read_text())
                progress(f"{tname}: cached profile {cf}")
                continue
            except (OSError, ValueError):
                pass  # a damaged cache entry: counted again and rewritten
        with tempfile.TemporaryDirectory(prefix="slmc-dvfs-") as tmp:
            proj = Path(tmp) / "out"
            progress(f"{tname}: compiling")
            rep = compile_model(CompileOptions(model, tname, numerics, proj), lambda s: progress(f"{tname}: {s}"))
            progress(f"{tname}: counting instructions ({steps} decode steps)")
            n = [0]

            def tok(_t: int) -> None:
                n[0] += 1
                progress(f"{tname}: counting instructions, token {n[0]}/{steps}")

            _, prof = count_run(proj, get_target(tname), rep, llm_args(steps, 0.0, 0.9, 42, None, None), tok)
        keep = {k: rep[k] for k in ("config", "weights_bytes", "weights_sram_bytes", "memory", "numerics", "target")
                if k in rep}
        keep["ops"] = rep["ops"]
        out[isa] = dict(profile=prof, report=keep)
        try:  # written beside and renamed: a concurrent `slmc dvfs` never reads half a file
            cdir.mkdir(parents=True, exist_ok=True)
            tmp = cf.with_name(f".{cf.name}.{os.getpid()}")
            tmp.write_text(json.dumps(out[isa]) + "\n")
            os.replace(tmp, cf)
        except OSError:
            pass  # no cache (a read-only home): the next run counts again
    return out
