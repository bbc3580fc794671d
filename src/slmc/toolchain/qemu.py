"""Boot a target's ELF on QEMU with semihosting: arguments in, event lines out, exit code back,
and a fault turned into an error that names the function it happened in.

picolibc's semihosting crt0 reads the command line with SYS_GET_CMDLINE (into a 1 KB buffer) and
splits it at spaces; main's return value becomes QEMU's exit code; semihosting output arrives on
QEMU's stderr. On a fault the crt0's handler prints a register dump ("ARM fault" with PC, or
"RISCV fault" with mepc and mcause) and exits with 1.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Callable

from slmc.errors import SlmcError
from slmc.targets import Target
from slmc.toolchain.events import EventParser, RunResult

CMDLINE_BYTES = 1024  # picolibc crt0-semihost's buffer, terminator included

_ARM_PC = re.compile(r"\bPC:\s*0x([0-9a-fA-F]+)")
_ARM_LR = re.compile(r"\bLR:\s*0x([0-9a-fA-F]+)")
_ARM_KIND = re.compile(r"ARM fault:\s*(\w+)")
_RV_PC = re.compile(r"mepc:\s*0x([0-9a-fA-F]+)")
_RV_RA = re.compile(r"x1 ra\s+0x([0-9a-fA-F]+)")
_RV_CAUSE = re.compile(r"mcause:\s*0x([0-9a-fA-F]+)")
_RV_CAUSES = {0: "instruction address misaligned", 1: "instruction access fault", 2: "illegal instruction",
              3: "breakpoint", 4: "load address misaligned", 5: "load access fault",
              6: "store address misaligned", 7: "store access fault"}


def cmdline(args: list[str]) -> str:
    """The command line main() will see after picolibc splits it at spaces."""
    if any(" " in a or not a for a in args):
        raise SlmcError("an argument for the emulated program contains a space or is empty",
                        "semihosting splits the command line at spaces; use paths without spaces")
    text = " ".join(args)
    if len(text) >= CMDLINE_BYTES:
        raise SlmcError(f"the emulated program's command line is {len(text)} characters; semihosting takes "
                        f"{CMDLINE_BYTES - 1}", "use a shorter prompt (fewer --prompt-ids)")
    return text


def qemu_command(target: Target, elf: Path, args: list[str], extra: tuple[str, ...] = ()) -> list[str]:
    assert target.emulator is not None
    cmdline(args)
    exe = target.emulator.qemu[0]
    if shutil.which(exe) is None:
        raise SlmcError(f"the emulator '{exe}' is not installed", "run `make toolchains` (or install it) and retry")
    # QEMU splits its options at commas; a comma inside an argument is written twice
    sh = "enable=on,target=native" + "".join(",arg=" + a.replace(",", ",,") for a in args)
    return [*target.emulator.qemu, *extra, "-semihosting-config", sh, "-kernel", str(elf)]


def run_qemu(target: Target, elf: Path, args: list[str], on_token: Callable[[int], None] = lambda t: None,
             timeout: float | None = None) -> RunResult:
    """Runs the program to its end; raises SlmcError on a fault or a non-zero exit code."""
    cmd = qemu_command(target, elf, args)
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    parser = EventParser(on_token)
    assert proc.stdout is not None
    watchdog = threading.Timer(timeout, proc.kill) if timeout else None
    if watchdog:
        watchdog.start()
    try:
        for line in proc.stdout:
            parser.line(line)
        code = proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        if watchdog:
            watchdog.cancel()
    if watchdog and code < 0:  # killed by the watchdog
        raise SlmcError(f"the emulated program ran longer than {timeout:.0f} s", "run fewer --steps")
    return finish(target, elf, parser, code)


def finish(target: Target, elf: Path, parser: EventParser, code: int) -> RunResult:
    """The result of a finished run, or the error that explains how it ended."""
    fault = describe_fault(target, elf, "\n".join(parser.other))
    if fault:
        raise SlmcError(fault, "a kernel read or wrote outside its buffers, or ran an instruction the core lacks")
    res = parser.result(code)
    if code != 0:
        msg = parser.error or "\n".join(parser.other).strip()[-300:]
        raise SlmcError(f"the emulated program exited with code {code}: {msg}", "check the run arguments")
    return res


def describe_fault(target: Target, elf: Path, text: str) -> str | None:
    """'hard fault in slmc_rmsnorm_f32 (PC 0x...), called from ...' when `text` holds a fault dump."""
    if "ARM fault" in text:
        pc_m, lr_m, kind_m = _ARM_PC.search(text), _ARM_LR.search(text), _ARM_KIND.search(text)
        kind = (kind_m.group(1) if kind_m else "fault").replace("hardfault", "hard fault")
    elif "RISCV fault" in text:
        pc_m, lr_m, cause = _RV_PC.search(text), _RV_RA.search(text), _RV_CAUSE.search(text)
        kind = _RV_CAUSES.get(int(cause.group(1), 16), "trap") if cause else "trap"
    else:
        return None
    return fault_message(target, elf, kind, int(pc_m.group(1), 16) if pc_m else None,
                         int(lr_m.group(1), 16) if lr_m else None)


def fault_message(target: Target, elf: Path, kind: str, pc: int | None, ra: int | None) -> str:
    from slmc.toolchain.elf import symbols

    syms = symbols(elf, target.tool_prefix)
    where = syms.function_at(pc & ~1) if pc is not None else None
    caller = syms.function_at(ra & ~1) if ra is not None else None
    msg = f"the program faulted in {where or 'an unknown function'} on {target.name}: {kind}"
    if pc is not None:
        msg += f" at PC 0x{pc:08x}"
    if caller and caller != where:
        msg += f", called from {caller}"
    return msg
