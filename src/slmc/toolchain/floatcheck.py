"""Proof that a build's forward pass is integer-only (-q int8): every function reachable from the
decode graph's function through direct calls, read from the linked ELF's disassembly, is free of
floating-point arithmetic (Arm VFP `vadd.f32`, `vcvt...`; any RISC-V F/D instruction) and of calls into
the soft-float library (libgcc's __addsf3 ... or the Arm EABI's __aeabi_fadd ...)."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from slmc.errors import SlmcError

_FUNC = re.compile(r"^([0-9a-f]+) <([^>]+)>:$")
_CALL = re.compile(r"\b(?:jal|j|call|tail|bl|blx|b|b\.w|b\.n)\s+(?:ra,\s*)?[0-9a-f]+\s+<([^>+]+)>")
_SOFT = re.compile(r"^__(?:\w*(?:sf|df|tf)\d?|aeabi_(?:f|d|[iu]l?2[fd])\w*)$")
# Arm: VFP arithmetic and conversions (gcc also parks integers in s-registers with vmov/vpush/vldr: data
# moves, not floating point); RISC-V: any F/D instruction (rv32imac has none, so any one is a finding)
_FLOAT_INSN = re.compile(r"^(?:v(?:add|sub|mul|div|fma|fms|fnm\w*|nmul|nmla|nmls|mla|mls|neg|abs|sqrt|cvt\w*|cmp\w*|rint\w*|sel\w*|minnm|maxnm)"
                         r"\.f\S*|vcvt\S*|f\w+\.[sdq]|fl[wdq]|fs[wdq]|fcvt\S*|fmv\S*|fclass\S*|frcsr|fscsr)$")


@dataclass(frozen=True)
class FloatUse:
    function: str
    reason: str


def reachable_float(elf: Path, objdump: str, root: str = "slmc_graph_decode") -> list[FloatUse]:
    """Every use of floating point in the call tree of `root` (empty: integer-only)."""
    try:
        text = subprocess.run([objdump, "-d", "--no-show-raw-insn", str(elf)], capture_output=True, text=True,
                              check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise SlmcError(f"cannot disassemble {elf}: {e}", "build the project first (make)") from None
    calls: dict[str, set[str]] = {}
    insns: dict[str, list[str]] = {}
    cur = None
    for line in text.splitlines():
        m = _FUNC.match(line.strip())
        if m:
            cur = m.group(2)
            calls.setdefault(cur, set())
            insns.setdefault(cur, [])
            continue
        if cur is None or ":\t" not in line:
            continue
        body = line.split(":\t", 1)[1].strip()
        mnemonic = body.split()[0] if body else ""
        insns[cur].append(mnemonic)
        c = _CALL.search(body)
        if c and c.group(1) != cur:
            calls[cur].add(c.group(1))
    roots = [f for f in calls if f == root or f.startswith(root + ".")]  # gcc may clone it (.constprop.0)
    if not roots:
        raise SlmcError(f"{elf} has no function {root}", "is this an slmc build?")
    seen, todo, out = set(roots), list(roots), []
    while todo:
        f = todo.pop()
        if _SOFT.match(f):
            out.append(FloatUse(f, "soft-float library routine"))
            continue
        bad = sorted({i for i in insns.get(f, []) if _FLOAT_INSN.match(i)})
        if bad:
            out.append(FloatUse(f, "floating-point instructions " + ", ".join(bad[:6])))
        for g in calls.get(f, ()):
            if g not in seen:
                seen.add(g)
                todo.append(g)
    return out
