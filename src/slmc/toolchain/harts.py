"""The cluster of a multi-core build as the compiler and the emulator see it: `with_cores` gives
the Target a build for N cores is compiled and run with.

- host: POSIX threads (-pthread).
- the RP2350's M33 pair (rp2350-arm): Unicorn has one core, so parallel.c runs each core's share in
  turn and the runner counts each (toolchain/unicorn_run.py); the build itself is the same C.
- an emulated RV32 cluster (siracusa-like, rp2350-riscv): QEMU virt with one hart per core (`-smp N`). Every hart starts at the
  first instruction of flash, so the program is linked with -nostartfiles and picolibc's
  semihosting crt0 added explicitly after the objects: parallel_harts.c's reset stub, in the same
  input section, then comes first and sends hart 0 to crt0's _start and parks the others.
  The single-core build keeps the usual crt0 and boot.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from slmc.errors import SlmcError
from slmc.targets import Target

# picolibc's semihosting crt0 for the multilib the compiler flags select (what --crt0=semihost links)
_CRT0 = "/usr/lib/picolibc/riscv64-unknown-elf/lib/$(shell $(CC) $(CFLAGS) -print-multi-directory)/crt0-semihost.o"


def max_cores(target: Target) -> int | None:
    """The most cores a build for `target` may use: its cluster's; None where any number goes (host threads)."""
    if target.emulator is None:
        return None
    if target.engines is None or target.engines.cluster.isa != target.isa:
        return 1
    if target.isa != "rv32" and target.emulator.counter != "unicorn":  # Arm: counted share by share in Unicorn
        return 1
    return target.engines.cluster.cores


HOST_MAX_CORES = 256


def with_cores(target: Target, cores: int) -> Target:
    """`target` for a build whose kernels fork over `cores` cores (1: the parallel runtime on one core)."""
    top = max_cores(target)
    if top is None and not 1 <= cores <= HOST_MAX_CORES:  # the host: threads, but not thousands of them
        raise SlmcError(f"--cores {cores} is not possible on {target.name}", f"choose --cores 1..{HOST_MAX_CORES}")
    if cores < 1 or (top is not None and cores > top):
        where = f"{target.name} has a cluster of {top}" if top and top > 1 else f"{target.name} has one core"
        raise SlmcError(f"--cores {cores} is not possible: {where}",
                        f"choose --cores 1..{top}, or a target with a cluster (siracusa-like) or the host")
    if target.emulator is None:
        return dataclasses.replace(target, cores=cores, ldflags=(*target.ldflags, "-pthread"),
                                   cflags=(*target.cflags, "-pthread"))
    # each further core's stack (parallel_harts.c), where the cluster counts it in the SRAM fit
    stacks = (cores - 1) * (target.engines.cluster.core_stack_bytes if target.engines else 0)
    target = dataclasses.replace(target, runtime_sram_bytes=target.runtime_sram_bytes + stacks)
    if target.isa != "rv32":  # the M33 pair: one core in Unicorn runs each core's share in turn (parallel.c)
        return dataclasses.replace(target, cores=cores)
    emu = dataclasses.replace(target.emulator, qemu=(*target.emulator.qemu, "-smp", str(cores)))
    return dataclasses.replace(target, cores=cores, emulator=emu, ldflags=(*target.ldflags, "-nostartfiles", _CRT0))


def run_target(target: Target, rep: dict, counting: bool = False) -> Target:
    """The Target a compiled project runs on: with its cluster when report.json says it was built for
    one. `counting`: the run that counts instructions boots one hart only (QEMU -smp 1): under
    -icount minstret is the machine's virtual clock, one hart's count only while one hart runs, so
    parallel.c then runs each core's share in turn on hart 0 and counts each exactly."""
    cores = rep.get("cluster", {}).get("cores")
    if not cores:
        return target
    t = with_cores(target, int(cores))
    if counting and t.emulator is not None and "-smp" in t.emulator.qemu:
        q = list(t.emulator.qemu)
        q[q.index("-smp") + 1] = "1"
        t = dataclasses.replace(t, emulator=dataclasses.replace(t.emulator, qemu=tuple(q)))
    return t


# kernel file -> (a host stand-in with its symbol, the portable kernel it calls): linear_q8_rv32.c is
# bit-identical to linear_q8.c by its contract (tests/kernels), and is RV32 assembly
_HOST_STAND_INS = {
    "linear_q8_rv32.c": ("""#include "slmc_kernels.h"
/* host stand-in for the RV32 kernel (toolchain/harts.py host_build): the portable kernel, bit-identical */
void slmc_linear_q8(float *out, const int8_t *xq, const float *xs, const int8_t *wq, const float *ws,
                    const float *b, int n, int k, int m, int group);
void slmc_linear_q8_rv32(float *out, const int8_t *xq, const float *xs, const int8_t *wq, const float *ws,
                         const float *b, int16_t *xw, int n, int k, int m, int group) {
    (void)xw;
    slmc_linear_q8(out, xq, xs, wq, ws, b, n, k, m, group);
}
""", "linear_q8.c"),
}


def host_build(project: Path) -> Path:
    """`slmc run DIR --on host`: the same C project (model, kernels, runtime) built for this machine
    with POSIX threads for the cores (parallel.c's host path): build-host/model. The MCU-only reset
    stub compiles to nothing here."""
    import re
    import shutil
    import subprocess

    from slmc.kernels.registry import C_DIR
    from slmc.output import folder_lock, register
    from slmc.targets import HOST
    project = Path(project)
    mk = (project / "Makefile").read_text()
    cflags = next((ln.split("=", 1)[1] for ln in mk.splitlines() if ln.startswith("CFLAGS = ")), "")
    defines = re.findall(r"(-D\w+(?:=\S+)?)", cflags)
    out = project / "build-host" / "model"
    if shutil.which(HOST.cc) is None:
        raise SlmcError(f"the C compiler '{HOST.cc}' is not installed", "install gcc")
    with folder_lock(project):  # concurrent runs take turns (output.py): they write the same build-host/
        out.parent.mkdir(exist_ok=True)
        kernels = sorted(f.name for f in (project / "kernels").glob("*.c"))
        srcs = ["main.c", "model.c"] + [f"kernels/{f}" for f in kernels if f not in _HOST_STAND_INS]
        for f in kernels:  # kernels in target assembly: the portable kernel they are bit-identical to
            if f in _HOST_STAND_INS:
                shim, portable = _HOST_STAND_INS[f]
                (out.parent / f).write_text(shim)
                srcs.append(f"build-host/{f}")
                if portable not in kernels:
                    (out.parent / portable).write_text((C_DIR / portable).read_text())
                    srcs.append(f"build-host/{portable}")
        srcs += [f for f in ("slmc_hal_log.c",) if (project / f).exists() and f in mk]
        cmd = [HOST.cc, *HOST.cflags, "-pthread", "-DSLMC_HOST", *defines, "-Ikernels", "-I.", "-o", str(out.relative_to(project)),
               *srcs, "weights.S", *HOST.ldflags, "-pthread"]
        r = subprocess.run(cmd, cwd=project, capture_output=True, text=True)
        register(project, trees=("build-host",))  # a re-compile removes it with the project
    if r.returncode != 0:
        tail = (r.stderr + r.stdout).strip().splitlines()[-12:]
        raise SlmcError("building the project for the host failed:\n" + "\n".join(tail), "this is a bug in slmc; please report it")
    return out
