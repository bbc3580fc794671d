"""Run a target's ELF in Unicorn, serving semihosting in Python and counting every executed
translation block: exact instruction counts (DESIGN.md: Unicorn's Cortex-M33 agreed with a QEMU
TCG plugin instruction for instruction) and, through the disassembly, the instruction mix.

Unicorn boots the program the way QEMU does: on Arm the initial SP and PC come from the vector
table at the start of flash; on RISC-V execution starts at the ELF entry. Unicorn has no Zb*
extensions, so RV32 code built with them cannot run here (qemu_gdb.py counts those).
"""

from __future__ import annotations

import bisect
import struct
from pathlib import Path
from typing import Callable

from slmc.errors import SlmcError
from slmc.targets import Target
from slmc.targets.cycles import MODELS, Insn, block_cycles
from slmc.toolchain.count import Boundaries, Call, CodeMap, Counts, Segment
from slmc.toolchain.elf import instructions, read_elf
from slmc.toolchain.events import EventParser, RunResult
from slmc.toolchain.semihost import ProgramExit, Semihost

_SCS = (0xE000E000, 0x1000)   # Arm system control space: crt0 enables the FPU through CPACR there
_BKPT_SEMIHOST = 0xBEAB       # Thumb BKPT 0xAB
_EXCP_BKPT = 7                # QEMU's Arm exception number for BKPT
_ARM_EXCEPTIONS = {1: "undefined instruction", 3: "prefetch abort", 4: "data abort", 7: "breakpoint"}


class BlockTable:
    """Instructions and estimated cycles of an executed block (address, size), from the disassembly."""

    def __init__(self, insns: list[Insn], cycle_model: str) -> None:
        self.insns = insns
        self.addrs = [i.address for i in insns]
        self.model = MODELS.get(cycle_model)
        self._cache: dict[int, tuple[int, float]] = {}

    def cost(self, key: int) -> tuple[int, float]:
        if key not in self._cache:
            addr, size = key >> 16, key & 0xFFFF
            lo, hi = bisect.bisect_left(self.addrs, addr), bisect.bisect_left(self.addrs, addr + size)
            block = self.insns[lo:hi]
            self._cache[key] = (len(block), block_cycles(self.model, block) if self.model else 0.0)
        return self._cache[key]

    def total(self, hist: dict[int, int]) -> tuple[int, float]:
        n = c = 0.0
        for key, times in hist.items():
            i, cy = self.cost(key)
            n += i * times
            c += cy * times
        return int(n), c


def _machine(target: Target):
    import unicorn as uc
    from unicorn import arm_const, riscv_const

    if target.isa == "armv8m":
        m = uc.Uc(uc.UC_ARCH_ARM, uc.UC_MODE_THUMB | uc.UC_MODE_MCLASS)
        m.ctl_set_cpu_model(arm_const.UC_CPU_ARM_CORTEX_M33)
        regs = (arm_const.UC_ARM_REG_R0, arm_const.UC_ARM_REG_R1, arm_const.UC_ARM_REG_PC, arm_const.UC_ARM_REG_LR,
                arm_const.UC_ARM_REG_SP)
    elif target.isa == "rv32":
        m = uc.Uc(uc.UC_ARCH_RISCV, uc.UC_MODE_RISCV32)
        regs = (riscv_const.UC_RISCV_REG_A0, riscv_const.UC_RISCV_REG_A1, riscv_const.UC_RISCV_REG_PC,
                riscv_const.UC_RISCV_REG_RA, riscv_const.UC_RISCV_REG_SP)
    else:
        raise SlmcError(f"target {target.name} cannot run in Unicorn", "count on an emulated MCU target")
    return m, regs


def _par_marker(elf: Path, target: Target) -> tuple[int, int] | None:
    """The addresses of parallel.c's slmc_par_mark and slmc_par_instret on Arm: a write to the first asks for
    the instructions executed so far (every block counted as it starts), stored in the second."""
    import subprocess

    try:
        out = subprocess.run([target.tool_prefix + "nm", "--defined-only", str(elf)], capture_output=True, text=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    at = {p[2]: int(p[0], 16) for p in (ln.split() for ln in out.splitlines()) if len(p) == 3}
    if "slmc_par_mark" not in at or "slmc_par_instret" not in at:
        return None
    return at["slmc_par_mark"], at["slmc_par_instret"]


def run_unicorn(target: Target, elf: Path, code: CodeMap, args: list[str], on_token: Callable[[int], None],
                max_decode_calls: int | None = None) -> tuple[RunResult, Counts]:
    """Runs to the program's exit (or after `max_decode_calls` decode steps); returns its events and counts."""
    import unicorn as uc

    from slmc.toolchain.qemu import cmdline, fault_message

    assert target.flash is not None and target.sram is not None
    m, (R0, R1, PC, RA, SP) = _machine(target)
    arm = target.isa == "armv8m"
    for mem in (target.flash, target.sram, *([] if not arm else [None])):
        base, size = (mem.origin, mem.size) if mem else _SCS
        m.mem_map(base, (size + 0xFFF) & ~0xFFF)
    image = read_elf(elf)
    for seg in image.segments:
        m.mem_write(seg.address, seg.data)
    if arm:
        sp, pc = struct.unpack("<II", bytes(m.mem_read(target.flash.origin, 8)))
        m.reg_write(SP, sp)
        start = pc | 1
    else:
        start = image.entry

    parser = EventParser(on_token)
    host = Semihost(read=lambda a, n: bytes(m.mem_read(a, n)), write=lambda a, d: m.mem_write(a, d),
                    cmdline=cmdline(args).encode(),
                    console=parser.text)
    insns = instructions(elf, target.tool_prefix)
    table = BlockTable(insns, target.cycle_model)
    bounds = Boundaries(code)
    watch = set(code.watch)
    state = dict(exit=None, fault=None, decode_done=0)
    # a multi-core Arm build (parallel.c): its count of executed instructions, answered at each marker write
    marks = _par_marker(elf, target) if arm and target.cores else None
    executed = [0]
    startup: dict[int, int] = {}
    gaps: list[dict[int, int]] = []
    segs: list[tuple[Call, list[tuple[str, dict[int, int]]]]] = []
    cur = [startup]
    # the emulated DMA copies of a staged build (slmc_stage.o): counted apart, not as the cores' work
    stage_ranges = [(s, e) for s, e, k in zip(code.starts, code.ends, code.kinds) if k == "stage"]
    staged: dict[int, int] = {}

    def on_block(_m, addr, size, _u):
        if stage_ranges and any(s <= addr < e for s, e in stage_ranges):
            k = (addr << 16) | size
            staged[k] = staged.get(k, 0) + 1
            return
        if addr in watch:
            ev = bounds.at(addr, m.reg_read(RA))
            if ev is not None:
                kind, what = ev
                if kind == "start":
                    if segs:  # the loop between two model calls: sampling, printing
                        gaps.append(cur[0])
                    segs.append((Call(what), [("prologue", {})]))
                    cur[0] = segs[-1][1][-1][1]
                    watch.add(bounds.ret)  # type: ignore[arg-type]
                elif kind == "op":
                    segs[-1][1].append((what, {}))
                    cur[0] = segs[-1][1][-1][1]
                else:
                    watch.discard(addr)
                    cur[0] = {}
                    if segs[-1][0].graph == "decode":
                        state["decode_done"] += 1
                        if max_decode_calls is not None and state["decode_done"] >= max_decode_calls:
                            m.emu_stop()
        h = cur[0]
        k = (addr << 16) | size
        h[k] = h.get(k, 0) + 1
        if marks:
            executed[0] += table.cost(k)[0]

    def on_mark(_m, _access, _addr, _size, _value, _u):
        m.mem_write(marks[1], struct.pack("<I", executed[0] & 0xFFFFFFFF))

    def serve(pc: int) -> None:
        try:
            ret = host.call(m.reg_read(R0), m.reg_read(R1))
        except ProgramExit as e:
            state["exit"] = e.code
            m.emu_stop()
            return
        m.reg_write(R0, ret & 0xFFFFFFFF)

    def on_intr(_m, intno, _u):
        pc = m.reg_read(PC)
        if arm and intno == _EXCP_BKPT and struct.unpack("<H", bytes(m.mem_read(pc, 2)))[0] == _BKPT_SEMIHOST:
            serve(pc)
            if state["exit"] is None:
                m.reg_write(PC, (pc + 2) | 1)
            return
        state["fault"] = (_ARM_EXCEPTIONS.get(intno, f"exception {intno}") if arm else f"trap {intno}", pc)
        m.emu_stop()

    def on_ebreak(_m, addr, _size, _u):
        serve(addr)
        if state["exit"] is None:
            m.reg_write(PC, addr + 4)  # the marker shift after EBREAK runs next, as on QEMU

    m.hook_add(uc.UC_HOOK_BLOCK, on_block)
    m.hook_add(uc.UC_HOOK_INTR, on_intr)
    if marks:
        m.hook_add(uc.UC_HOOK_MEM_WRITE, on_mark, None, marks[0], marks[0] + 3)
    if not arm:  # RISC-V semihosting: EBREAK between `slli zero,zero,0x1f` and `srai zero,zero,7`
        for prev, ins in zip(insns, insns[1:]):
            if ins.mnemonic == "ebreak" and prev.mnemonic in ("slli", "sll") and prev.operands == "zero,zero,0x1f":
                m.hook_add(uc.UC_HOOK_CODE, on_ebreak, None, ins.address, ins.address)
    try:
        m.emu_start(start, 0xFFFFFFFF)
    except uc.UcError as e:
        state["fault"] = (str(e).split("(")[0].strip().lower() or "fault", m.reg_read(PC))
    finally:
        host.close_all()
    if state["fault"] is not None:
        kind, pc = state["fault"]
        raise SlmcError(fault_message(target, elf, kind, pc, m.reg_read(RA)) + " (in Unicorn)",
                        "a kernel read or wrote outside its buffers, or ran an instruction the core lacks")
    stopped_early = max_decode_calls is not None and state["decode_done"] >= max_decode_calls
    if state["exit"] is None and not stopped_early:
        raise SlmcError("the program stopped without exiting in Unicorn", "this is a bug in slmc; please report it")
    res = parser.result(state["exit"] or 0)
    if res.exit_code != 0:
        raise SlmcError(f"the emulated program exited with code {res.exit_code}: {parser.error or ''}",
                        "check the run arguments")
    calls = []
    for call, parts in segs:
        for label, hist in parts:
            n, c = table.total(hist)
            call.segments.append(Segment(label, n, c if table.model else None))
        calls.append(call)
    main_n = sum(table.total(g)[0] for g in gaps)
    total = table.total(startup)[0] + main_n + sum(c.instructions for c in calls) + (table.total(cur[0])[0] if segs else 0)
    return res, Counts("unicorn", calls, main_n, total, table.total(staged)[0])
