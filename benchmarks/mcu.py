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
  (profile.estimate): cycles from the executed instruction mix, plus the weight bytes a token reads from flash
  (a matrix whole, a table read one row per token one row) once per token from QSPI flash through the XIP cache
  at 37.5 MB/s, after the compute; slmc's RP2350 builds DMA-stage the matrices the boot copy leaves in flash one
  product ahead (codegen/stage_plan.py), so their estimate adds only the waits (toolchain/staged_estimate.py). runq.c reads a version-2 file written by save_v2 with group 4,
  which divides hidden_dim (172), so it reads every input of w2.

BENCH_MCU=0 skips the section; BENCH_MCU_STEPS sets the positions; BENCH_MCU_STORY (256; 0 skips) the steps of
the whole-story columns (greedy from BOS until the program's ids reach BOS, where llama2.c stops too). `python benchmarks/mcu.py` measures this section
alone, puts it into benchmarks/results.json (keeping the rest) and renders docs/BENCHMARKS.md again;
`python benchmarks/mcu.py --kernels` only prints the q8 kernels' instructions per MAC at K=64 and K=512.
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
STORY = int(os.environ.get("BENCH_MCU_STORY", "256"))   # 0: no whole-story column
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
    story = json.loads(_sh([*cli, "run", str(out), "--steps", str(STORY), "--json"]).stdout) if STORY else None
    return dict(prof=prof, rep=rep, story=story)


def _story(ipt: float, positions: int, est: dict) -> dict:
    """The whole-story figures of a row: greedy from BOS for up to STORY positions, ending where the model
    emits BOS (both programs stop there), averaged over every decode call."""
    return dict(positions=positions, instructions_per_token=ipt,
                estimated_tokens_per_s=est.get("estimated_tokens_per_s"))


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
               ("fp32", ckpt, ckpt.name),
               ("int8", ckpt, f"slmc -q int8 of {ckpt.name}: integer-only (quant/int8.py)"))
    for tname, isa in TARGETS:
        for numerics, src_file, weights in configs:
            out = work / f"slmc_{numerics}_{tname}" if src_file == ckpt else work / f"slmc_{numerics}_g{GROUP}_{tname}"
            s = _slmc(cli, src_file, numerics, tname, out)
            projects.setdefault((tname, numerics), out)
            p, rep = s["prof"], s["rep"]
            macs = sum(o["macs"] for o in rep["ops"] if o["op"] in ("linear", "linear_q8", "linear_i8"))
            rows.append(dict(program="slmc", target=tname, isa=isa, numerics=numerics, weights=weights,
                             same_file_as_llama2c=src_file == l2c_files.get(numerics), counter=p["counter"],
                             positions=p["decode_steps"], instructions_per_token=p["instructions_per_token"],
                             matmul_macs_per_token=macs,
                             instructions_per_mac_matmul=p["linear_instructions_per_mac"],
                             instructions_per_mac_token=p["instructions_per_token"] / macs,
                             estimated_cycles_per_token=p.get("estimated_cycles_per_token"),
                             estimated_tokens_per_s=p.get("estimated_tokens_per_s"),
                             estimated_flash_seconds_per_token=p.get("estimated_flash_seconds_per_token"),
                             estimated_flash_stall_seconds_per_token=p.get("estimated_flash_stall_seconds_per_token"),
                             estimate_basis=p.get("estimate_basis"), weights_bytes=rep["weights_bytes"],
                             weights_read_per_step=rep.get("weights_read_per_step"),
                             story=_story(s["story"]["instructions_per_token"], s["story"]["decode_steps"],
                                          s["story"]) if s["story"] else None,
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
                story = None
                if STORY:
                    long = _count(target, elf, "forward", [*args[:-1], str(STORY)]).decode_calls()
                    ipt_long = sum(c.instructions for c in long) / len(long)
                    story = _story(ipt_long, len(long), estimate(
                        rp, dict(weights_bytes=wbytes, memory=dict(weights_in="flash")), ipt_long * cpi if cpi else None))
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
                                 estimate_basis=est["estimate_basis"], story=story,
                                 build=" ".join(f for f in mk["CFLAGS"].split() if not f.startswith("-I"))
                                 + " -D_POSIX_C_SOURCE=200809L + shims"))
                log(f"MCU llama2.c {prog}.c {tname}: {ipt:,.0f} instructions/token, "
                    f"est. {est['estimated_tokens_per_s'] or 0:.1f} tok/s")
    return dict(positions=STEPS, story_steps=STORY, model="stories260K", rows=rows, llama2c=info, published=PUBLISHED, goal_x=GOAL_X,
                seconds=round(time.perf_counter() - t0, 1),
                assumptions=["instructions are exact, cycles are not: each executed instruction costs what "
                             "the target's cycle table says (Cortex-M33: ALU/MUL/MAC 1, LDR 2, taken branch 2, VMLA 3, "
                             "VDIV 14; Hazard3: ALU/MUL 1, DIV 18-19, load 1-2, jump 2), no cache or bus stalls "
                             "beyond the flash term",
                             "flash term: the weight bytes a token reads from flash (slmc: every byte of a matrix "
                             "not copied to SRAM, one row of RoPE's cos/sin tables; llama2.c: its whole file) read "
                             "once per token from QSPI flash through the 16 KB XIP cache at 37.5 MB/s (SCK 75 MHz); "
                             "llama2.c's after the compute, slmc's DMA-staged one product ahead, so only the waits "
                             "add (the replay of toolchain/staged_estimate.py)",
                             "150 MHz core clock; one core; RV32 cycles use the instruction mix of the first decode "
                             "step (Unicorn) scaled to the exact QEMU count"])


def kernel_per_mac(cli: list[str], work: Path, dims: tuple[int, ...] = (64, 512), log=print) -> list[dict]:
    """Instructions per MAC of the q8 matrix-vector kernels alone (linear_q8_dsp.c, linear_q8_rv32.c) at
    K = dim: a seeded one-layer model whose every matrix has K inputs (dim = hidden = K, group 64, 64 rows
    in the classifier), compiled for each ISA and counted per operator like stories260K (slmc run --json,
    2 positions; exact counts, the call's activation widening included)."""
    from slmc.driver import CompileOptions, compile_model
    from slmc.frontend.decoder import DecoderConfig
    from slmc.frontend.random_model import random_decoder

    rows = []
    for k in dims:
        cfg = DecoderConfig(dim=k, hidden_dim=k, n_layers=1, n_heads=8, n_kv_heads=8, vocab_size=64, seq_len=8)
        for _, tname in TARGETS:
            out = work / f"kernel_k{k}_{tname}"
            compile_model(CompileOptions(Path(f"random-k{k}"), tname, "q8", out), model=random_decoder(cfg, seed=3))
            p = json.loads(_sh([*cli, "run", str(out), "--steps", "2", "--json"]).stdout)
            per = {}
            for o in p["ops"]:
                if o["op"] == "linear_q8":
                    per[o["name"].split(".")[-1].removesuffix("_out")] = round(o["instructions"] / o["macs"], 3)
            rows.append(dict(k=k, target=tname, per_mac=round(p["linear_instructions_per_mac"], 3), per_op=per))
            log(f"K={k} {tname}: {rows[-1]['per_mac']:.3f} instructions/MAC ({per})")
    return rows


def _calls_matmul(elf: Path, target: Target) -> bool:
    out = subprocess.run([f"{target.tool_prefix}objdump", "-d", str(elf)], capture_output=True, text=True).stdout
    return re.search(r"\b(bl|jal|call)\s+\S*\s*<matmul>", out) is not None


def render(res: dict) -> list[str]:
    """Section 7: stories260K on the RP2350's cores, exact instruction counts and ESTIMATED tokens/s."""
    from render import _n, _table, _x  # render.py imports this module

    mcu = res.get("mcu")
    if not mcu:
        why = next((n for n in res.get("notes", []) if n.startswith("MCU")), "not measured in this run.")
        return ["## 7. On the microcontroller (RP2350, stories260K)", "", why, ""]
    pub, goal = mcu["published"], mcu["goal_x"] * mcu["published"]["tokens_per_s"]
    out = ["## 7. On the microcontroller (RP2350, stories260K)", "",
           f"Greedy decoding from BOS for {mcu['positions']} positions; instructions per token are **exact** "
           "(Unicorn on the Cortex-M33, QEMU -icount + minstret through the gdb stub on RV32) and averaged over "
           f"all {mcu['positions']} decode calls (slmc's slmc_decode, llama2.c's forward). Per MAC: the matrix "
           "products' instructions over their multiply-accumulates (the same "
           f"{mcu['rows'][0]['matmul_macs_per_token']:,} MACs per token in both programs), and the whole token's "
           "instructions over the same MACs. Tokens/s are an **ESTIMATE** at 150 MHz (see the assumptions below); "
           "nothing here ran on a chip.", ""]
    if mcu.get("llama2c"):
        li = mcu["llama2c"]
        out += [f"llama2.c ({li['dir']}) is built for the same core with the generated Makefile's compiler, CFLAGS "
                "and picolibc semihosting LDFLAGS, plus two shims beside the copy in benchmarks/work (no source "
                f"change): {li['shims']}; its RAM is {li['ram_bytes'] // 2**20} MB because it reads the checkpoint "
                "into the heap (changes no instruction). runq.c reads a version-2 file written by save_v2 with group "
                "4 (it divides hidden_dim 172, so runq.c reads every input of w2; a group this small costs runq.c a "
                "float rescale every 4 MACs); slmc runs both that file (the same computation as runq.c: the host section checks that their ids agree) and its own q8 from the fp32 file (group 64, 4 for w2; other ids, as any other quantization would give). run.c's matmul is inlined into "
                "forward at -O2, so its per-MAC matmul figure comes from a -fno-inline build (*).", ""]
    rows = []
    by = {(r["program"].split()[0], r["target"], r["numerics"]): r for r in mcu["rows"]}
    for r in mcu["rows"]:
        base = by.get(("llama2.c", r["target"], r["numerics"])) if r["program"] == "slmc" else None
        ratio = (r["estimated_tokens_per_s"] / base["estimated_tokens_per_s"]
                 if base and base.get("estimated_tokens_per_s") and r.get("estimated_tokens_per_s") else None)
        iratio = base["instructions_per_token"] / r["instructions_per_token"] if base else None
        rows.append([r["program"], r["numerics"], r.get("weights", "–"), f"{r['isa']} ({r['target']})", str(r["positions"]),
                     f"**{_n(r['instructions_per_token'])}**",
                     _n(r.get("instructions_per_mac_matmul"), 2) + (" (*)" if r.get("matmul_note") else ""),
                     _n(r.get("instructions_per_mac_token"), 2), _n(r.get("estimated_cycles_per_token")),
                     f"**{_n(r.get('estimated_tokens_per_s'), 1)}**", _x(iratio), _x(ratio)])
    rows.append(["pico_llama (published)", pub["numerics"], "fp32 in PSRAM", "cortex-m33 (RP2350, on the chip)", "–", "–", "–", "–",
                 "–", f"**{pub['tokens_per_s']:g}** (measured)", "–", "–"])
    out += _table(["program", "numerics", "weights", "ISA (target)", "positions", "instructions / token (exact)",
                   "instr / MAC, matmul", "instr / MAC, whole token", "est. cycles / token",
                   "ESTIMATED tok/s at 150 MHz", "instructions: llama2.c / slmc", "est. tok/s: slmc / llama2.c"], rows)
    out += ["ESTIMATE assumptions (the same for every row): " + "; ".join(mcu["assumptions"]) + ". Flash seconds "
            "per token: " + ", ".join(f"{r['program']} {r['numerics']} {r['weights_bytes'] / 1e3:,.0f} KB"
                                      + (f" ({r['weights_read_per_step']['flash'] / 1e3:,.0f} KB of it read from flash "
                                         "per token)" if r.get("weights_read_per_step") else "") + " -> "
                                      f"{(r.get('estimated_flash_seconds_per_token') or 0) * 1e3:.1f} ms"
                                      + (f" (waits {r['estimated_flash_stall_seconds_per_token'] * 1e3:.2f} ms: DMA-staged)"
                                         if r.get("estimated_flash_stall_seconds_per_token") is not None
                                         and r["estimated_flash_stall_seconds_per_token"]
                                         < (r.get("estimated_flash_seconds_per_token") or 0) else "")
                                      for r in mcu["rows"] if r["target"] == "rp2350-arm") + ".", ""]
    out += _story_table(mcu)
    own = {(r["target"], r["numerics"]): r for r in mcu["rows"] if r["program"] == "slmc"
           and "g4" not in r.get("weights", "") and "save_v2" not in r.get("weights", "")}
    if any(n == "int8" for _, n in own):
        parts = []
        for t in sorted({t for t, _ in own}):
            i8, q8, f32 = own.get((t, "int8")), own.get((t, "q8")), own.get((t, "fp32"))
            if i8 and q8 and f32:
                parts.append(f"{t}: int8 {_n(i8['instructions_per_token'])}, q8 {_n(q8['instructions_per_token'])}, fp32 "
                             f"{_n(f32['instructions_per_token'])} instructions/token (q8 / int8 = "
                             f"{q8['instructions_per_token'] / i8['instructions_per_token']:.2f}x, fp32 / int8 = "
                             f"{f32['instructions_per_token'] / i8['instructions_per_token']:.2f}x)")
        out += ["**Integer-only (issue 6):** " + "; ".join(parts) + ". On the Hazard3 (no FPU) every float "
                "operation of q8 and fp32 is a soft-float call; int8 has none in its forward pass "
                "(toolchain/floatcheck.py, tested).", ""]
    best = max((r for r in mcu["rows"] if r["program"] == "slmc" and r["target"] == pub["target"]
                and r.get("estimated_tokens_per_s")), key=lambda r: r["estimated_tokens_per_s"], default=None)
    out += [f"**Goal (issue 4):** at least {mcu['goal_x']:g}x the published {pub['tokens_per_s']:g} tokens/s "
            f"({pub['source']}) on the same chip and clock, i.e. **{goal:g} tokens/s** on the RP2350's M33 at 150 MHz.", ""]
    if best:
        fl = best.get("estimated_flash_seconds_per_token") or 0.0
        stall = best.get("estimated_flash_stall_seconds_per_token")
        stall = fl if stall is None else stall
        out += [f"**Where we stand:** slmc's best is {best['numerics']} ({best.get('weights', '')}) at an ESTIMATED "
                f"**{best['estimated_tokens_per_s']:.1f} tokens/s** = {best['estimated_tokens_per_s'] / pub['tokens_per_s']:.2f}x "
                f"the published figure ({best['estimated_tokens_per_s'] / goal:.0%} of the goal). Of its "
                f"{1e3 / best['estimated_tokens_per_s']:.1f} ms per token, {stall * 1e3:.2f} ms waits for flash"
                + (f" (it reads {fl * 1e3:.1f} ms' worth a token, overlapped with the compute)" if fl > stall else "")
                + ".", ""]
    return out + [f"(MCU section: {mcu['seconds']:.0f} s; BENCH_MCU=0 skips it, BENCH_MCU_STEPS sets the positions.)", ""]


def _story_table(mcu: dict) -> list[str]:
    """The same rows over a whole story (issue 21): attention grows with the position, so a short run hides it."""
    from render import _n, _table, _x

    rows = [r for r in mcu["rows"] if r.get("story")]
    if not rows:
        return []
    by = {(r["program"].split()[0], r["target"], r["numerics"]): r for r in rows}
    table = []
    for r in rows:
        st = r["story"]
        base = by.get(("llama2.c", r["target"], r["numerics"])) if r["program"] == "slmc" else None
        same = base is not None and base["story"]["positions"] == st["positions"]
        ratio = base["story"]["instructions_per_token"] / st["instructions_per_token"] if same else None
        table.append([r["program"], r["numerics"], r.get("weights", "–"), f"{r['isa']} ({r['target']})",
                      _n(r["instructions_per_token"]), str(st["positions"]), f"**{_n(st['instructions_per_token'])}**",
                      f"{st['instructions_per_token'] / r['instructions_per_token']:.2f}x",
                      f"**{_n(st.get('estimated_tokens_per_s'), 1)}**", _x(ratio)])
    return [f"**Over a whole story** (`slmc run DIR --steps {mcu['story_steps']} --json`, llama2.c `-n "
            f"{mcu['story_steps']}`: greedy from BOS until the program's own ids reach BOS, where both programs stop; "
            "every decode call averaged). Attention's cost grows with the position, which the "
            f"{mcu['positions']}-position columns above hide. Builds whose numbers differ (slmc's fp16 KV cache on "
            "the RP2350, another quantization) follow other greedy stories, so they stop at other positions; the "
            "llama2.c / slmc ratio is given only where both ran the same positions:", "",
            *_table(["program", "numerics", "weights", "ISA (target)", f"instr / token, {mcu['positions']} positions",
                     "positions in the story", "instr / token over the story (exact)", "story / short",
                     "ESTIMATED tok/s over the story", "instructions: llama2.c / slmc"], table)]


def main() -> int:
    import sys

    import render

    here = Path(__file__).resolve().parent
    shared = Path(os.environ.get("SLMC_SHARED", here.parent.parent / "shared"))
    exe = Path(sys.executable).parent / "slmc"
    cli = [str(exe)] if exe.exists() else [sys.executable, "-m", "slmc.cli"]
    if "--kernels" in sys.argv:   # the q8 kernels alone at K=64 and K=512; prints, writes nothing
        kernel_per_mac(cli, here / "work" / "mcu")
        return 0
    notes: list[str] = []
    mcu = measure(cli, here / "work" / "mcu", shared / "models" / "stories260K", notes)
    res = json.loads(render.RESULTS.read_text())   # read after measuring: other sections may have changed it
    res["mcu"] = mcu
    res["notes"] = [n for n in res.get("notes", []) if not n.startswith("MCU")] + notes
    render.RESULTS.write_text(json.dumps(res, indent=1) + "\n")
    print(render.write(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
