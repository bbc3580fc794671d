"""The MCU section of `make bench`: stories260K on the RP2350's two cores, slmc against llama2.c's run.c (fp32)
and runq.c (q8), all counted the same way, plus the published pico_llama figure.

- Instructions per token are exact: Unicorn on the Cortex-M33 (toolchain/unicorn_run.py), QEMU -icount with
  minstret read through its gdb stub on RV32 (toolchain/qemu_gdb.py), averaged over the decode calls of a
  greedy run from BOS of BENCH_MCU_STEPS positions (16 by default).
- slmc: `slmc compile stories260K.bin -q {q8,fp32} -t {rp2350-arm,rp2350-riscv}` then `slmc run --json`.
- llama2.c: run.c and runq.c copied into benchmarks/work/mcu (never into the repository) and built with the
  generated Makefile's CC, CFLAGS and semihosting LDFLAGS for the same target, plus two shims beside the copy:
  sys/mman.h (mmap = malloc + read: no virtual memory under picolibc) and clock_gettime (from gettimeofday).
  Their RAM is set to 8 MB because the checkpoint is read into the heap (the RP2350 would need PSRAM for it);
  that changes no instruction. A decode call is one call of forward(); a matrix product, one call of matmul().
  gcc -O2 inlines run.c's matmul into forward, so run.c's matmul count comes from a second build with
  -fno-inline added, used for nothing else.
- Estimated tokens/s at 150 MHz come from the same cycle model and flash term for both programs
  (profile.estimate): cycles from the executed instruction mix, plus every weight byte read once per token from
  QSPI flash through the XIP cache at 37.5 MB/s. runq.c reads a version-2 file written by save_v2 with group 4,
  which divides hidden_dim (172), so it reads every input of w2.

BENCH_MCU=0 skips the section; BENCH_MCU_STEPS sets the positions. `python benchmarks/mcu.py` measures this section
alone, puts it into benchmarks/results.json (keeping the rest) and renders docs/BENCHMARKS.md again.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import llama2c_baseline as l2c

from slmc.frontend import llama2c
from slmc.targets import MemoryLevel, Target, get_target
from slmc.targets.cycles import MODELS
from slmc.toolchain.count import CodeMap, Counts
from slmc.toolchain.elf import symbols
from slmc.toolchain.profile import estimate

STEPS = max(2, int(os.environ.get("BENCH_MCU_STEPS", "16")))
TARGETS = (("rp2350-arm", "cortex-m33"), ("rp2350-riscv", "rv32imac"))
NUMERICS = ("q8", "fp32")
GROUP = 4
L2C_RAM = 8 * 1024 * 1024
PUBLISHED = dict(tokens_per_s=19.0, source="pico_llama: llama2.c port, stories260K, one RP2350 Cortex-M33 at 150 MHz, "
                 "fp32 weights in PSRAM (measured on the chip)", target="rp2350-arm", numerics="fp32")
GOAL_X = 5.0

MMAN_SHIM = """/* slmc benchmarks: mmap for picolibc + semihosting (no virtual memory): read the file into the heap. */
#ifndef SLMC_SHIM_MMAN_H
#define SLMC_SHIM_MMAN_H
#include <stdlib.h>
#include <unistd.h>
#define PROT_READ 1
#define MAP_PRIVATE 2
#define MAP_FAILED ((void *)-1)
static inline void *mmap(void *addr, size_t len, int prot, int flags, int fd, long off) {
    (void)addr; (void)prot; (void)flags;
    char *p = malloc(len);
    if (!p || lseek(fd, off, SEEK_SET) < 0) return MAP_FAILED;
    size_t got = 0;
    while (got < len) { ssize_t r = read(fd, p + got, len - got); if (r <= 0) { free(p); return MAP_FAILED; } got += (size_t)r; }
    return p;
}
static inline int munmap(void *addr, size_t len) { (void)len; free(addr); return 0; }
#endif
"""
CLOCK_SHIM = """/* slmc benchmarks: clock_gettime for picolibc + semihosting (llama2.c's time_in_ms). */
#define _POSIX_C_SOURCE 200809L
#include <time.h>
#include <sys/time.h>
int clock_gettime(clockid_t clk, struct timespec *ts) {
    struct timeval tv; (void)clk;
    gettimeofday(&tv, 0);
    ts->tv_sec = tv.tv_sec; ts->tv_nsec = tv.tv_usec * 1000L;
    return 0;
}
"""


def enabled() -> bool:
    return os.environ.get("BENCH_MCU", "1") != "0"


def _makefile_vars(project: Path) -> dict[str, str]:
    out = {}
    for line in (project / "Makefile").read_text().splitlines():
        m = re.match(r"^([A-Z]+)\s*=\s*(.*)$", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def _sh(cmd: list[str]) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[-6:])} failed: {(r.stderr or r.stdout).strip()[-400:]}")
    return r


def _slmc(cli: list[str], ckpt: Path, numerics: str, target: str, out: Path) -> dict:
    _sh([*cli, "compile", str(ckpt), "-q", numerics, "-t", target, "-o", str(out)])
    r = _sh([*cli, "run", str(out), "--steps", str(STEPS), "--json"])
    prof = json.loads(r.stdout)
    rep = json.loads((out / "report.json").read_text())
    return dict(prof=prof, rep=rep)


def _whole_code(syms_addr: int) -> CodeMap:
    """Every address counts as the caller's loop, so a call of `syms_addr` from anywhere is a 'decode call'."""
    return CodeMap((0,), (0xFFFFFFFF,), ("main",), ("llama2c",), syms_addr, None, {})


def _count(target: Target, elf: Path, fn: str, args: list[str]) -> Counts:
    code = _whole_code(symbols(elf, target.tool_prefix).address(fn))
    if target.emulator.counter == "unicorn":  # type: ignore[union-attr]
        from slmc.toolchain.unicorn_run import run_unicorn
        return run_unicorn(target, elf, code, args, lambda t: None)[1]
    from slmc.toolchain.qemu_gdb import run_qemu_gdb
    return run_qemu_gdb(target, elf, code, args)[1]


def _cycles_per_instruction(target: Target, elf: Path, args: list[str], counts: Counts) -> float | None:
    """The mix's cycles per instruction: Unicorn's own counts, or (RV32) its first decode step's."""
    if MODELS.get(target.cycle_model) is None:
        return None
    calls = counts.decode_calls()
    if counts.counter != "unicorn":
        from slmc.toolchain.unicorn_run import run_unicorn
        code = _whole_code(symbols(elf, target.tool_prefix).address("forward"))
        calls = run_unicorn(target, elf, code, args, lambda t: None, max_decode_calls=1)[1].decode_calls()
    n = sum(c.instructions for c in calls)
    cyc = sum(s.cycles or 0.0 for c in calls for s in c.segments)
    return cyc / n if n else None


def _build_l2c(src: Path, work: Path, prog: str, isa: str, mk: dict[str, str], extra: tuple[str, ...] = ()) -> Path:
    cflags = [f for f in mk["CFLAGS"].split() if not f.startswith("-I")]
    ldflags = []
    for f in mk["LDFLAGS"].split():
        if f.startswith("-Wl,-Map="):
            continue
        if f.startswith("-Wl,--defsym=__ram_size="):
            f = f"-Wl,--defsym=__ram_size={L2C_RAM}"
        if f.startswith("-Wl,--defsym=__stack_size="):
            f = "-Wl,--defsym=__stack_size=16384"
        ldflags.append(f)
    elf = work / f"{prog}_{isa}{'_noinline' if extra else ''}.elf"
    cmd = [mk["CC"], *cflags, *extra, "-D_POSIX_C_SOURCE=200809L", f"-I{work / 'shim'}", "-o", str(elf),
           str(work / f"{prog}.c"), str(work / "shim" / "clock_gettime.c"), *ldflags, "-lm"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"building llama2.c's {prog}.c for {isa} failed: {r.stderr[-600:]}")
    return elf


def measure(cli: list[str], work: Path, stories260k: Path, notes: list[str], log=print) -> dict | None:
    if not enabled():
        notes.append("MCU section skipped (BENCH_MCU=0).")
        return None
    ckpt = stories260k / "stories260K.bin"
    if not ckpt.is_file():
        notes.append(f"MCU section skipped: {ckpt} is absent.")
        return None
    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-riscv32") is None:
        notes.append("MCU section skipped: the cross toolchains or QEMU are missing (`make toolchains`).")
        return None
    t0 = time.perf_counter()
    work.mkdir(parents=True, exist_ok=True)
    model = llama2c.load(ckpt)
    q8_file = work / f"model_q8_g{GROUP}.bin"
    llama2c.save_v2(model, q8_file, GROUP)
    tok = work / "dummy_tokenizer.bin"
    l2c.write_dummy_tokenizer(tok, model.config.vocab_size)
    l2c_files = {"fp32": ckpt, "q8": q8_file}

    rows, projects = [], {}
    # slmc's own q8 (group 64, 4 for w2) from the fp32 file, and q8 from runq.c's group-4 file: the same
    # computation as runq.c (the host benchmark checks that their ids agree)
    configs = (("q8", ckpt, f"slmc -q q8 of {ckpt.name} (group 64, 4 for w2)"),
               ("q8", q8_file, f"{q8_file.name}: runq.c's file, save_v2 group {GROUP}"),
               ("fp32", ckpt, ckpt.name))
    for tname, isa in TARGETS:
        for numerics, src_file, weights in configs:
            out = work / f"slmc_{numerics}_{tname}" if src_file == ckpt else work / f"slmc_{numerics}_g{GROUP}_{tname}"
            s = _slmc(cli, src_file, numerics, tname, out)
            projects.setdefault((tname, numerics), out)
            p, rep = s["prof"], s["rep"]
            macs = sum(o["macs"] for o in rep["ops"] if o["op"] in ("linear", "linear_q8"))
            rows.append(dict(program="slmc", target=tname, isa=isa, numerics=numerics, weights=weights,
                             same_file_as_llama2c=src_file == l2c_files[numerics], counter=p["counter"],
                             positions=p["decode_steps"], instructions_per_token=p["instructions_per_token"],
                             matmul_macs_per_token=macs,
                             instructions_per_mac_matmul=p["linear_instructions_per_mac"],
                             instructions_per_mac_token=p["instructions_per_token"] / macs,
                             estimated_cycles_per_token=p.get("estimated_cycles_per_token"),
                             estimated_tokens_per_s=p.get("estimated_tokens_per_s"),
                             estimated_flash_seconds_per_token=p.get("estimated_flash_seconds_per_token"),
                             estimate_basis=p.get("estimate_basis"), weights_bytes=rep["weights_bytes"],
                             build=_makefile_vars(out)["CFLAGS"].replace(" -Ikernels -I.", "") + " (generated Makefile)"))
            log(f"MCU slmc {numerics} {weights} {tname}: {p['instructions_per_token']:,.0f} instructions/token, "
                f"est. {p.get('estimated_tokens_per_s') or 0:.1f} tok/s")

    src = l2c.source_dir()
    info = None
    if src is None:
        notes.append("MCU llama2.c rows skipped: LLAMA2C_DIR is unset or holds no run.c/runq.c.")
    else:
        lw = work / "llama2c"
        (lw / "shim" / "sys").mkdir(parents=True, exist_ok=True)
        (lw / "shim" / "sys" / "mman.h").write_text(MMAN_SHIM)
        (lw / "shim" / "clock_gettime.c").write_text(CLOCK_SHIM)
        for f in ("run.c", "runq.c"):
            shutil.copyfile(src / f, lw / f)
        info = dict(dir=str(src), shims="sys/mman.h (mmap = malloc + read), clock_gettime (gettimeofday)",
                    ram_bytes=L2C_RAM, q8_file=f"save_v2(group={GROUP})")
        for tname, isa in TARGETS:
            rp = get_target(tname)
            target = dataclasses.replace(rp, sram=MemoryLevel("sram", rp.sram.origin, L2C_RAM))  # type: ignore[union-attr]
            for numerics in NUMERICS:
                prog = l2c.PROGRAMS[numerics]
                mk = _makefile_vars(projects[(tname, numerics)])
                args = [str(l2c_files[numerics]), "-z", str(tok), "-t", "0", "-n", str(STEPS)]
                elf = _build_l2c(lw, lw, prog, isa, mk)
                fwd = _count(target, elf, "forward", args)
                calls = fwd.decode_calls()
                ipt = sum(c.instructions for c in calls) / len(calls)
                inline = not _calls_matmul(elf, target)
                mm_elf = _build_l2c(lw, lw, prog, isa, mk, ("-fno-inline",)) if inline else elf
                mm = _count(target, mm_elf, "matmul", args)
                macs = rows[0]["matmul_macs_per_token"]
                mm_per_mac = sum(c.instructions for c in mm.decode_calls()) / len(calls) / macs
                cpi = _cycles_per_instruction(target, elf, args, fwd)
                wbytes = l2c_files[numerics].stat().st_size
                est = estimate(rp, dict(weights_bytes=wbytes, memory=dict(weights_in="flash")),
                               ipt * cpi if cpi else None)
                rows.append(dict(program=f"llama2.c {prog}.c", target=tname, isa=isa, numerics=numerics,
                                 weights=l2c_files[numerics].name + (f" (save_v2 group {GROUP})" if numerics == "q8"
                                                                     else ""), same_file_as_llama2c=True,
                                 counter=fwd.counter, positions=len(calls), instructions_per_token=ipt,
                                 matmul_macs_per_token=macs, instructions_per_mac_matmul=mm_per_mac,
                                 matmul_note="from a -fno-inline build (gcc -O2 inlines matmul into forward)"
                                 if inline else None,
                                 instructions_per_mac_token=ipt / macs, weights_bytes=wbytes,
                                 estimated_cycles_per_token=est["estimated_cycles_per_token"],
                                 estimated_tokens_per_s=est["estimated_tokens_per_s"],
                                 estimated_flash_seconds_per_token=est.get("estimated_flash_seconds_per_token"),
                                 estimate_basis=est["estimate_basis"],
                                 build=" ".join(f for f in mk["CFLAGS"].split() if not f.startswith("-I"))
                                 + " -D_POSIX_C_SOURCE=200809L + shims"))
                log(f"MCU llama2.c {prog}.c {tname}: {ipt:,.0f} instructions/token, "
                    f"est. {est['estimated_tokens_per_s'] or 0:.1f} tok/s")
    return dict(positions=STEPS, model="stories260K", rows=rows, llama2c=info, published=PUBLISHED, goal_x=GOAL_X,
                seconds=round(time.perf_counter() - t0, 1),
                assumptions=["instructions are exact, cycles are not: each executed instruction costs what "
                             "the target's cycle table says (Cortex-M33: ALU/MUL/MAC 1, LDR 2, taken branch 2, VMLA 3, "
                             "VDIV 14; Hazard3: ALU/MUL 1, DIV 18-19, load 1-2, jump 2), no cache or bus stalls "
                             "beyond the flash term",
                             "flash term: every weight byte read once per token from QSPI flash through the 16 KB "
                             "XIP cache at 37.5 MB/s (SCK 75 MHz), not overlapped with compute",
                             "150 MHz core clock; one core; RV32 cycles use the instruction mix of the first decode "
                             "step (Unicorn) scaled to the exact QEMU count"])


def _calls_matmul(elf: Path, target: Target) -> bool:
    out = subprocess.run([f"{target.tool_prefix}objdump", "-d", str(elf)], capture_output=True, text=True).stdout
    return re.search(r"\b(bl|jal|call)\s+\S*\s*<matmul>", out) is not None


def main() -> int:
    import sys

    import render

    here = Path(__file__).resolve().parent
    shared = Path(os.environ.get("SLMC_SHARED", here.parent.parent / "shared"))
    exe = Path(sys.executable).parent / "slmc"
    cli = [str(exe)] if exe.exists() else [sys.executable, "-m", "slmc.cli"]
    res = json.loads(render.RESULTS.read_text())
    notes = [n for n in res.get("notes", []) if not n.startswith("MCU")]
    res["mcu"] = measure(cli, here / "work" / "mcu", shared / "models" / "stories260K", notes)
    res["notes"] = notes
    render.RESULTS.write_text(json.dumps(res, indent=1) + "\n")
    print(render.write(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
