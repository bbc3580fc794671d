"""Exact instruction counts per position, per function, with valgrind's callgrind (deterministic, unlike the
clock, so it does not care whether the machine is busy). Only the forward pass is counted: callgrind's
--toggle-collect on slmc_decode (slmc) or forward (llama2.c) includes their callees and leaves out start-up,
weight loading and sampling."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

LINE = re.compile(r"^\s*([\d,]+)\s+\(\s*([\d.]+)%\)\s+(.*?):(\S+)")


def available() -> bool:
    return shutil.which("valgrind") is not None and shutil.which("callgrind_annotate") is not None


def profile(cmd: list[str], entry: str, out: Path, top: int = 8) -> dict:
    """Run `cmd` under callgrind counting only inside `entry`; return the instructions counted and the
    heaviest functions by self cost."""
    out.parent.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", f"--toggle-collect={entry}",
                        *cmd], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"callgrind failed: {r.stderr[-400:]}")
    ann = subprocess.run(["callgrind_annotate", "--threshold=99.9", str(out)], capture_output=True, text=True).stdout
    total, by_name = 0, {}
    for line in ann.splitlines():
        if "PROGRAM TOTALS" in line:
            total = int(line.split()[0].replace(",", ""))
            continue
        m = LINE.match(line)
        if m:  # a function may appear once per source file it was inlined from: add those up
            name = m.group(4)
            by_name[name] = by_name.get(name, 0) + int(m.group(1).replace(",", ""))
    funcs = sorted(by_name.items(), key=lambda kv: -kv[1])[:top]
    return {"instructions": total,
            "functions": [{"function": n, "instructions": i, "share": i / total if total else 0.0} for n, i in funcs]}
