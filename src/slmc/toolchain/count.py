"""Exact instruction counts per token and per operator, on an emulated target.

Two counters, one attribution rule:
- "unicorn" (Cortex-M33, whose QEMU model has no cycle counter): the ELF runs in Unicorn and every
  executed translation block is counted (toolchain/unicorn_run.py); the block histograms also give
  the instruction mix for the cycle estimate.
- "qemu-gdb" (RV32): QEMU under -icount shift=0, where minstret is exact, stopped through its gdb
  stub at the boundaries below (toolchain/qemu_gdb.py). Native speed, and any extension QEMU runs.

Boundaries come from the link map, so model.c needs no hooks: a model call starts when main calls
slmc_decode/slmc_prefill and ends at its return address; within a call, every entry into a kernel
function whose return address lies in model.c (or in main, for a tail call) starts the next
operator. An operator's count runs from its kernel's first instruction to the next operator's, so
it includes the few instructions of model.c that pass the next call's arguments; the instructions
before the first kernel are the call's prologue. The operators and the prologue add up to the
call exactly. The i-th kernel call of a decode step is the i-th operator in report.json, and the
kernel file of each is checked against it.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from pathlib import Path

from slmc.errors import SlmcError
from slmc.targets import Target
from slmc.toolchain.elf import Symbols, code_ranges, symbols

MAIN_OBJECTS = ("main.o", "sample.o")   # main.c and the sampler it calls: the generation loop


@dataclass(frozen=True)
class CodeMap:
    """What each code address is: "model" (model.c), "main" (the loop), "kernel" or "lib"."""

    starts: tuple[int, ...]
    ends: tuple[int, ...]
    kinds: tuple[str, ...]
    objects: tuple[str, ...]
    decode: int
    prefill: int | None
    kernel_entries: dict[int, str]      # entry address of each global kernel function -> its C file

    def kind_at(self, addr: int) -> str:
        i = bisect.bisect_right(self.starts, addr) - 1
        return self.kinds[i] if i >= 0 and addr < self.ends[i] else "lib"

    @property
    def watch(self) -> set[int]:
        return {self.decode, *([self.prefill] if self.prefill is not None else []), *self.kernel_entries}


def _kind(obj: str) -> str:
    name = Path(obj).name
    if name == "model.o":
        return "model"
    if name == "slmc_stage.o":  # the DMA staging HAL's stand-in copy (codegen/staging.py): the DMA engine's work
        return "stage"
    if name in MAIN_OBJECTS:
        return "main"
    if Path(obj).parent.name == "kernels" and not obj.startswith("/"):
        return "kernel"
    return "lib"


def code_map(elf: Path, map_file: Path, target: Target, syms: Symbols | None = None) -> CodeMap:
    syms = syms or symbols(elf, target.tool_prefix)
    ranges = [(s, e, _kind(o), o) for s, e, o in code_ranges(map_file)]
    # a graph project (not a language model) has one call per inference, main's slmc_run_packed: counted as a step
    entry = "slmc_run_packed" if "slmc_decode" not in syms.by_name and "slmc_run_packed" in syms.by_name else "slmc_decode"
    cm = CodeMap(tuple(r[0] for r in ranges), tuple(r[1] for r in ranges), tuple(r[2] for r in ranges),
                 tuple(r[3] for r in ranges), syms.address(entry), syms.by_name.get("slmc_prefill"), {})
    entries = {}
    for addr, name in zip(syms.addrs, syms.names):
        if name.startswith("slmc_") and cm.kind_at(addr) == "kernel":
            i = bisect.bisect_right(cm.starts, addr) - 1
            entries[addr] = Path(cm.objects[i]).stem + ".c"
    return CodeMap(cm.starts, cm.ends, cm.kinds, cm.objects, cm.decode, cm.prefill, entries)


class Boundaries:
    """Decides, at a watched address, whether a model call starts, an operator starts, or the call ends."""

    def __init__(self, code: CodeMap) -> None:
        self.code = code
        self.ret: int | None = None     # where the current model call returns to

    def at(self, pc: int, ra: int) -> tuple[str, str] | None:
        """("start", "decode"|"prefill"), ("op", kernel file), ("end", "") or None."""
        ra &= ~1  # Thumb return addresses carry the mode in bit 0
        if self.ret is not None and pc == self.ret:
            self.ret = None
            return ("end", "")
        if self.ret is None and (pc == self.code.decode or pc == self.code.prefill):
            if self.code.kind_at(ra) == "main":
                self.ret = ra
                return ("start", "decode" if pc == self.code.decode else "prefill")
            return None
        if self.ret is not None and pc in self.code.kernel_entries and self.code.kind_at(ra) in ("model", "main"):
            return ("op", self.code.kernel_entries[pc])
        return None


@dataclass
class Segment:
    label: str                          # "prologue", a kernel's C file, or "main" (between calls)
    instructions: int = 0
    cycles: float | None = None         # estimate, where the counter knows the instruction mix


@dataclass
class Call:
    graph: str                          # "decode" | "prefill"
    segments: list[Segment] = field(default_factory=list)

    @property
    def instructions(self) -> int:
        return sum(s.instructions for s in self.segments)


@dataclass
class Counts:
    """Everything a counter measured in one run."""

    counter: str
    calls: list[Call]
    main_instructions: int              # between one model call's return and the next call: sampling, printing
    total_instructions: int | None      # the whole program, start-up included, where known
    staging_instructions: int | None = None  # the emulated DMA copies (slmc_stage.o's copy loop), in none of the
                                             # above: the RP2350's DMA engine moves those bytes, not a core

    def decode_calls(self) -> list[Call]:
        return [c for c in self.calls if c.graph == "decode"]


def per_op(counts: Counts, ops: list[dict]) -> tuple[list[int], list[float | None], int, float | None]:
    """Per-operator totals over all decode steps (instructions, cycles), plus the prologue's."""
    calls = counts.decode_calls()
    n = len(ops)
    instr, cyc = [0] * n, [0.0] * n
    have_cycles = True
    pro_i, pro_c = 0, 0.0
    for c in calls:
        body = c.segments[1:]
        got = [s.label for s in body]
        want = [o["kernel"] for o in ops]
        if got != want:
            raise SlmcError(f"instruction counts could not be attributed: a decode step called kernels {got[:6]}... "
                            f"where report.json lists {want[:6]}...", "rebuild the project (`make clean && make`)")
        pro_i += c.segments[0].instructions
        for i, s in enumerate(body):
            instr[i] += s.instructions
            if s.cycles is None or c.segments[0].cycles is None:
                have_cycles = False
            else:
                cyc[i] += s.cycles
        if have_cycles and c.segments[0].cycles is not None:
            pro_c += c.segments[0].cycles
    return instr, (cyc if have_cycles else [None] * n), pro_i, (pro_c if have_cycles else None)
