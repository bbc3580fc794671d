"""A target's memory hierarchy as data: software-managed levels, fastest first.

`Level.memory` ties a level to the linker region that holds it on the emulated machine ("sram",
"flash", or "" for a level carved out of another one, like the siracusa-like L1, which the
emulator cannot model separately). `dma` says whether a DMA engine moves data between this level
and the one above it (the next faster); a level without one is read in place by the cores (the
RP2350's flash behind XIP).

`with_mem(target, "L1=64KiB,L2=1MiB")` is the `slmc compile --mem` override: the same target with
those levels resized (and the linker region behind a level with it, so the fit check agrees).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from slmc.errors import SlmcError


@dataclass(frozen=True)
class Level:
    name: str                    # "L1", "L2", "L3", "SRAM", "FLASH"
    size: int                    # bytes the program may use at this level
    bytes_per_cycle: float       # sustained bandwidth from this level to the cores (or to the level above)
    latency_cycles: int          # first-byte latency of an access or a transfer
    dma: bool = False            # a DMA engine connects it with the next faster level
    memory: str = ""             # the linker region that holds it ("" : carved out of another)


_UNITS = {"": 1, "b": 1, "k": 1024, "kib": 1024, "kb": 1000, "m": 1024 ** 2, "mib": 1024 ** 2, "mb": 1000 ** 2,
          "g": 1024 ** 3, "gib": 1024 ** 3, "gb": 1000 ** 3}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str) -> int:
    """'64KiB' -> 65536, '1MB' -> 1000000, '4096' -> 4096; KiB/MiB/GiB and K/M/G are powers of 1024."""
    m = _SIZE.match(text)
    unit = m.group(2).lower() if m else ""
    if not m or unit not in _UNITS:
        raise SlmcError(f"'{text}' is not a memory size", "write e.g. 64KiB, 1MiB, 2MB or a number of bytes")
    n = float(m.group(1)) * _UNITS[unit]
    if n != int(n) or n <= 0:
        raise SlmcError(f"memory size '{text}' is not a positive whole number of bytes", "e.g. 64KiB")
    return int(n)


def parse_mem(spec: str) -> dict[str, int]:
    """'L1=64KiB,L2=1MiB' -> {'L1': 65536, 'L2': 1048576} (level names upper-cased)."""
    out: dict[str, int] = {}
    for part in (p for p in spec.split(",") if p.strip()):
        name, eq, size = part.partition("=")
        if not eq or not name.strip():
            raise SlmcError(f"--mem entry '{part.strip()}' is not LEVEL=SIZE", "e.g. --mem L1=64KiB,L2=1MiB")
        key = name.strip().upper()
        if key in out:
            raise SlmcError(f"--mem names level {key} twice", "give each level once")
        out[key] = parse_size(size)
    if not out:
        raise SlmcError("--mem is empty", "e.g. --mem L1=64KiB,L2=1MiB")
    return out


def levels_of(target: "object") -> tuple[Level, ...]:
    """The target's levels. A target that declares none has its linker regions as levels (SRAM,
    then flash read in place; speeds unknown: 0), or one unbounded level when it has none (the host)."""
    levels = getattr(target, "levels", ())
    if levels:
        return levels
    sram, flash = getattr(target, "sram", None), getattr(target, "flash", None)
    if sram is not None and flash is not None:
        return (Level("SRAM", sram.size, 0.0, 0, memory="sram"), Level("FLASH", flash.size, 0.0, 0, memory="flash"))
    return (Level("RAM", 0, 0.0, 0),)


def arena_level_of(levels: tuple[Level, ...]) -> int:
    """The arena lives in the first level backed by the target's SRAM (0 where none is)."""
    return next((i for i, lv in enumerate(levels) if lv.memory == "sram"), 0)


def tiles_above_arena(target: "object") -> bool:
    """A level faster than the arena's: with --mem or -m prefill, operators compute there on tiles
    (plan/levels.py), walking their operands in tile order."""
    return arena_level_of(levels_of(target)) > 0


def with_mem(target: "object", spec: str | None) -> "object":
    """The target with the levels named in `spec` resized (see module docstring); unchanged when None."""
    if spec is None:
        return target
    sizes = parse_mem(spec)
    levels = [lv for lv in levels_of(target) if lv.size]
    names = [lv.name.upper() for lv in levels]
    for key in sizes:
        if key not in names:
            have = ", ".join(lv.name for lv in levels) or "none (one unbounded memory)"
            raise SlmcError(f"target '{target.name}' has no memory level '{key}'",  # type: ignore[attr-defined]
                            f"its levels: {have} (see `slmc targets`)")
    changes: dict = {}
    for i, lv in enumerate(levels):
        if lv.name.upper() in sizes:
            levels[i] = dataclasses.replace(lv, size=sizes[lv.name.upper()])
            region = getattr(target, lv.memory, None) if lv.memory else None
            if region is not None:
                changes[lv.memory] = dataclasses.replace(region, size=levels[i].size)
    for a, b in zip(levels, levels[1:]):
        if a.size > b.size:
            raise SlmcError(f"--mem makes {a.name} ({a.size:,} B) larger than the slower {b.name} ({b.size:,} B)",
                            f"keep {a.name} at most {b.size:,} B, or grow {b.name}")
    return dataclasses.replace(target, levels=tuple(levels), **changes)  # type: ignore[call-overload]
