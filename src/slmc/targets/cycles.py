"""Per-ISA cycle models: cycles per executed instruction, from its mnemonic and operands.

Every figure that comes out of here is an ESTIMATE: the emulators count instructions exactly, not
cycles. The models are deliberately simple tables:

- Hazard3 (RP2350 datasheet, Hazard3 chapter): ALU, Zba/Zbb/Zbs and MUL 1 cycle, DIV/REM 18-19,
  loads 1 cycle plus 1 when the next instruction uses the loaded register, stores 1, branches 1
  when predicted (backward taken and forward not taken assumed predicted), JAL/JALR 2.
- Cortex-M33 (3-stage pipeline, Cortex-M33 TRM and the M4's published table it shares most
  entries with): ALU, MUL/MLA and the DSP multiply-accumulates 1, SDIV/UDIV 2-12, LDR 2, STR 1,
  LDM/STM/PUSH/POP 1 + registers, taken branch 2 (backward conditional branches assumed taken,
  forward ones not), BL/BX 2, FPU add/mul/convert 1, VMLA/VFMA 3, VDIV/VSQRT 14, VLDR 2.

Soft-float and libm calls are just more instructions, counted where they execute.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

_RV_LOADS = {"lb", "lbu", "lh", "lhu", "lw", "c.lw", "c.lwsp"}
_RV_STORES = {"sb", "sh", "sw", "c.sw", "c.swsp"}
_RV_DIV = {"div", "divu", "rem", "remu"}
_RV_BRANCH = {"beq", "bne", "blt", "bge", "bltu", "bgeu", "beqz", "bnez", "blez", "bgez", "bltz", "bgtz", "bgt",
              "ble", "bgtu", "bleu", "c.beqz", "c.bnez"}
_RV_JUMP = {"jal", "jalr", "j", "jr", "ret", "call", "tail", "c.j", "c.jal", "c.jr", "c.jalr"}
_REG = re.compile(r"\b(zero|ra|sp|gp|tp|t[0-6]|s[0-9]|s1[01]|a[0-7]|fp|x\d+)\b")


@dataclass(frozen=True)
class Insn:
    address: int
    mnemonic: str
    operands: str


def _rv_reads(ins: Insn) -> set[str]:
    """Registers an instruction reads: every register operand but the destination (the first),
    except for stores and branches, which have none."""
    regs = _REG.findall(ins.operands)
    m = ins.mnemonic
    if m in _RV_STORES or m in _RV_BRANCH:
        return set(regs)
    return set(regs[1:])


def hazard3(ins: Insn, nxt: Insn | None) -> float:
    m = ins.mnemonic
    if m in _RV_LOADS:
        rd = _REG.findall(ins.operands)[:1]
        stall = 1 if nxt is not None and rd and rd[0] in _rv_reads(nxt) else 0
        return 1 + stall
    if m in _RV_DIV:
        return 18.5
    if m in _RV_JUMP:
        return 2
    return 1  # ALU, Zb*, MUL/MULH, stores, predicted branches, CSR


_ARM_BRANCH_COND = re.compile(r"^b(?:eq|ne|cs|hs|cc|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le)$")
_ARM_MULS = re.compile(r"^(mul|mla|mls|[su]mull|[su]mlal|smla\w*|smul\w*|smlad\w*|smlsd\w*|smuad\w*|smusd\w*|"
                       r"smmul\w*|smmla\w*|usad\w*|sxtab16|sxtb16|uxtb16|uxtab16|qadd\w*|qsub\w*|sadd\w*|ssub\w*)s?$")
_ARM_TARGET = re.compile(r"^([0-9a-f]+)\b")


def _arm_base(mnemonic: str) -> str:
    return mnemonic.split(".")[0]


def _reglist_len(operands: str) -> int:
    m = re.search(r"\{([^}]*)\}", operands)
    if not m:
        return 1
    n = 0
    for part in m.group(1).split(","):
        part = part.strip()
        if "-" in part:
            a, b = part.split("-")
            n += int(re.sub(r"\D", "", b)) - int(re.sub(r"\D", "", a)) + 1
        elif part:
            n += 1
    return n


def cortex_m33(ins: Insn, nxt: Insn | None) -> float:
    m = _arm_base(ins.mnemonic)
    ops = ins.operands
    if m.startswith("v"):
        if re.match(r"^v(pu|po)", m) or re.match(r"^v(ld|st)m", m):
            n = _reglist_len(ops) * (2 if "d" in ops.split("{")[-1][:2] else 1)
            return 1 + n
        if re.match(r"^v(fm|fnm|ml|nml)", m):
            return 3
        if re.match(r"^v(div|sqrt)", m):
            return 14
        if m.startswith("vldr"):
            return 2
        return 1  # vadd, vsub, vmul, vcvt, vmov, vcmp, vmrs, vstr, vneg, vabs
    if re.match(r"^(push|pop|ldm\w*|stm\w*)$", m):
        return 1 + _reglist_len(ops) + (2 if "pc" in ops else 0)
    if re.match(r"^ldr\w*$", m) or m in ("ldrex", "lda"):
        return 2 + (2 if ops.startswith("pc") else 0)
    if re.match(r"^str\w*$", m):
        return 1
    if m in ("sdiv", "udiv"):
        return 7  # 2-12 depending on the operands' magnitude
    if _ARM_MULS.match(m):
        return 1
    if _ARM_BRANCH_COND.match(m) or m in ("cbz", "cbnz"):
        t = _ARM_TARGET.match(ops.split(",")[-1].strip())
        backward = t is not None and int(t.group(1), 16) <= ins.address
        return 2 if backward else 1
    if m in ("b", "bl", "blx", "bx"):
        return 2
    if m in ("mov", "movs") and "pc" in ops.split(",")[0]:
        return 2
    return 1  # ALU, IT, extend, bit-field, compare


@dataclass(frozen=True)
class CycleModel:
    name: str
    description: str
    cost: Callable[[Insn, Insn | None], float]


MODELS: dict[str, CycleModel] = {
    "hazard3": CycleModel("hazard3", "Hazard3 cycle table (RP2350 datasheet): MUL 1, DIV 18-19, load 1-2, "
                          "predicted branch 1, jump 2", hazard3),
    "cortex-m33": CycleModel("cortex-m33", "Cortex-M33 pipeline: ALU/MUL/MAC 1, LDR 2, taken branch 2, "
                             "VMLA 3, VDIV 14", cortex_m33),
}

# Where each instruction class's cost in the tables above comes from (issue 21). Arm publishes no cycle table for
# the Cortex-M33; its entries are the Cortex-M4's, which shares the 3-stage pipeline and the DSP/FPv5-SP subset.
SOURCES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "cortex-m33": (
        ("ALU, extend, bit-field, compare, IT", "1", "Cortex-M4 TRM (Arm DDI 0439) table 3-1, assumed for the M33"),
        ("MUL, MLA, SMLAD/SMLA*/SMUL*, SXTB16, QADD", "1", "Cortex-M4 TRM table 3-1 (single-cycle 32x32 multiplier, DSP)"),
        ("SDIV, UDIV", "7 (2-12)", "Cortex-M4 TRM table 3-1: 2-12 by operand size; 7 ASSUMED as the middle"),
        ("LDR (any width)", "2 (4 PC-relative)", "Cortex-M4 TRM table 3-1: 2, or 1 when pipelined with the next load"),
        ("STR", "1", "Cortex-M4 TRM table 3-1"),
        ("LDM, STM, PUSH, POP", "1 + registers (+2 with PC)", "Cortex-M4 TRM table 3-1"),
        ("conditional branch", "2 backward (taken), 1 forward (not taken)", "Cortex-M4 TRM table 3-1 (1 + refill 1-3); "
         "taken/not-taken ASSUMED by direction"),
        ("B, BL, BX, BLX, MOV PC", "2", "Cortex-M4 TRM table 3-1 (1 + pipeline refill, refill 1 ASSUMED)"),
        ("VADD, VSUB, VMUL, VCVT, VMOV, VCMP, VSTR", "1", "Cortex-M4 TRM FPU table 7-1"),
        ("VMLA, VFMA, VNMLA, VFNMA", "3", "Cortex-M4 TRM FPU table 7-1"),
        ("VDIV, VSQRT", "14", "Cortex-M4 TRM FPU table 7-1"),
        ("VLDR", "2", "Cortex-M4 TRM FPU table 7-1"),
        ("VPUSH, VPOP, VLDM, VSTM", "1 + registers", "Cortex-M4 TRM FPU table 7-1"),
    ),
    "hazard3": (
        ("ALU, Zba/Zbb/Zbs, stores, CSR", "1", "RP2350 datasheet, Hazard3 chapter (instruction cycle counts), as recalled"),
        ("MUL, MULH*", "1", "RP2350 datasheet, Hazard3: single-cycle multiplier (DESIGN.md target facts)"),
        ("DIV, DIVU, REM, REMU", "18.5 (18-19)", "RP2350 datasheet, Hazard3 (DESIGN.md target facts)"),
        ("loads", "1, +1 when the next instruction uses the result", "RP2350 datasheet, Hazard3 (DESIGN.md: load 1-2)"),
        ("branches", "1 when predicted (backward taken, forward not taken ASSUMED predicted)",
         "RP2350 datasheet, Hazard3 (DESIGN.md: taken predicted branch 1)"),
        ("JAL, JALR and their compressed forms", "2", "RP2350 datasheet, Hazard3, as recalled"),
    ),
}


def block_cycles(model: CycleModel, insns: list[Insn]) -> float:
    """Cycles of one straight-line run of instructions (an emulator's translation block)."""
    return sum(model.cost(ins, insns[i + 1] if i + 1 < len(insns) else None) for i, ins in enumerate(insns))
