"""The multi-row matrix products of a batched step (kernels/batch_linear.py) against the single-sequence kernels,
one call over n token rows each (benchmarks/batching.py renders them in BENCHMARKS section 14):

- Cortex-M33: linear_q8_dsp.c and linear_q8_dsp_rows.c built with the target's flags, run under Unicorn; exact
  instructions and the cycles of targets/cycles.py's Cortex-M33 model, per MAC, for the stories260K and
  stories15M shapes (k x m, group).
- Host: linear_q8_sse2.c, linear_q8_sse2_rows.c (row-major weights; its AVX-VNNI or AVX2 path where the CPU has one,
  then each path below it) and linear_q8_rows16.c (weights in the rows16 order; AVX-512 VNNI, AVX-VNNI, AVX2, SSE2),
  nanoseconds per MAC on stories15M's 768 x 288 (the best of 30 timings) and 288 x 32,000 (its classifier,
  9.2 MB, read from memory; the best of 5), groups of 32; this machine is shared, so read the ratios.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
import tempfile
from pathlib import Path

from slmc.kernels.registry import C_DIR

SHAPES = [(64, 172, 64), (172, 64, 4), (288, 768, 32), (768, 288, 32)]  # (k, m, group): stories260K, stories15M
ROWS = (1, 2, 4)
M33_CC = ["arm-none-eabi-gcc", "-mcpu=cortex-m33", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-sp-d16", "-O2", "-std=c99",
          "-ffp-contract=off", "-specs=picolibc.specs", "-nostartfiles", "-e", "bench", "-Wl,--defsym=__flash=0x10000000",
          "-Wl,--defsym=__flash_size=0x400000", "-Wl,--defsym=__ram=0x20000000", "-Wl,--defsym=__ram_size=0x800000"]
ARGS = "float *, const int8_t *, const float *, const int8_t *, const float *, const float *, void *, int, int, int, int"
BENCH = r"""#include <stdint.h>
void slmc_linear_q8_%(a)s(%(args)s);
void slmc_linear_q8_%(a)s_rows(%(args)s);
volatile int cfg[5];
static int8_t W[768 * 288], X[4 * 768] __attribute__((aligned(16)));
static float WS[768 * 288 / 4], XS[4 * 192], O[4 * 768]; static uint32_t XW[4 * 768];
void bench(void) {
    int which = cfg[0], k = cfg[1], m = cfg[2], g = cfg[3], n = cfg[4];
    for (int i = 0; i < k * m; i++) W[i] = (int8_t)(i * 37 %% 255 - 127);
    for (int i = 0; i < n * k; i++) X[i] = (int8_t)(i * 11 %% 255 - 127);
    for (int i = 0; i < m * (k / g); i++) WS[i] = 1e-3f * (i %% 100 + 1);
    for (int i = 0; i < n * (k / g); i++) XS[i] = 1e-2f * (i %% 100 + 1);
    __asm__ volatile("bkpt #1");
    (which ? slmc_linear_q8_%(a)s_rows : slmc_linear_q8_%(a)s)(O, X, XS, W, WS, 0, XW, n, k, m, g);
    __asm__ volatile("bkpt #2");
    for (;;) ;
}
"""


def m33(tmp: Path) -> list[dict]:
    import unicorn as uc
    from unicorn import arm_const as A

    from slmc.targets.cycles import Insn
    from slmc.toolchain.unicorn_run import BlockTable

    src = tmp / "bench_m33.c"
    src.write_text(BENCH % dict(a="dsp", args=ARGS))
    elf = tmp / "bench_m33.elf"
    subprocess.run([*M33_CC, f"-I{C_DIR}", "-o", str(elf), str(src), str(C_DIR / "linear_q8_dsp.c"),
                    str(C_DIR / "linear_q8_dsp_rows.c"), "-lc"], check=True)
    dis = subprocess.run(["arm-none-eabi-objdump", "-d", str(elf)], capture_output=True, text=True, check=True).stdout
    insns = [Insn(int(m.group(1), 16), m.group(2), m.group(3).split("@")[0].strip()) for m in
             (re.match(r"^\s*([0-9a-f]+):\s+(?:[0-9a-f]{4}\s?){1,2}\s+(\S+)\s*(.*)$", ln) for ln in dis.splitlines()) if m]
    table = BlockTable(sorted(insns, key=lambda i: i.address), "cortex-m33")
    seg = re.search(r"LOAD\s+0x([0-9a-f]+)\s+0x10000000\s+\S+\s+0x([0-9a-f]+)",
                    subprocess.run(["arm-none-eabi-readelf", "-lW", str(elf)], capture_output=True, text=True).stdout)
    off, size = int(seg.group(1), 16), int(seg.group(2), 16)  # type: ignore[union-attr]
    text = elf.read_bytes()[off:off + size]

    def run(which: int, k: int, m: int, g: int, n: int) -> tuple[int, float]:
        mu = uc.Uc(uc.UC_ARCH_ARM, uc.UC_MODE_THUMB | uc.UC_MODE_MCLASS)
        mu.ctl_set_cpu_model(A.UC_CPU_ARM_CORTEX_M33)
        for base, sz in ((0x10000000, 0x400000), (0x20000000, 0x800000), (0xE000E000, 0x1000)):
            mu.mem_map(base, sz)
        mu.mem_write(0x10000000, text)
        mu.mem_write(0x20000000, struct.pack("<5i", which, k, m, g, n))  # cfg: the first variable in RAM
        mu.mem_write(0xE000ED88, struct.pack("<I", 0xF << 20))          # CPACR: the FPU on
        mu.reg_write(A.UC_ARM_REG_SP, 0x207FF000)
        st: dict = dict(on=False, hist={})

        def block(mu, addr, size, _):
            if st["on"]:
                st["hist"][(addr << 16) | size] = st["hist"].get((addr << 16) | size, 0) + 1

        def bkpt(mu, no, _):
            if st["on"]:
                mu.emu_stop()
            st["on"] = True
            mu.reg_write(A.UC_ARM_REG_PC, (mu.reg_read(A.UC_ARM_REG_PC) + 2) | 1)

        mu.hook_add(uc.UC_HOOK_BLOCK, block)
        mu.hook_add(uc.UC_HOOK_INTR, bkpt)
        mu.emu_start(0x10000000 | 1, 0, count=1_000_000_000)
        return table.total(st["hist"])

    rows = []
    for k, m, g in SHAPES:
        for n in ROWS:
            (i0, c0), (i1, c1) = run(0, k, m, g, n), run(1, k, m, g, n)
            macs = k * m * n
            rows.append(dict(k=k, m=m, group=g, rows=n, single_instr_per_mac=i0 / macs, single_cycles_per_mac=c0 / macs,
                             rows_instr_per_mac=i1 / macs, rows_cycles_per_mac=c1 / macs))
    return rows


HOST = r"""#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
void slmc_linear_q8_sse2(%(args)s);
void slmc_linear_q8_sse2_rows(%(args)s);
void slmc_linear_q8_rows16(%(args16)s);
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
int main(int argc, char **argv) {
    int k = atoi(argv[1]), m = atoi(argv[2]), g = 32, reps = atoi(argv[3]);
    int8_t *W = malloc((size_t)k * m), *X = malloc(16 * (size_t)k);
    float *WS = malloc(sizeof(float) * m * (k / g)), *XS = malloc(sizeof(float) * 16 * (k / g)), *O = malloc(sizeof(float) * 16 * (size_t)m);
    int16_t *XW = malloc(sizeof(int32_t) * 16 * (size_t)k);  /* linear_q8_rows16.c: 4 * n * k bytes */
    for (size_t i = 0; i < (size_t)k * m; i++) W[i] = (int8_t)(rand() %% 255 - 127);
    for (int i = 0; i < 16 * k; i++) X[i] = (int8_t)rand();
    for (int i = 0; i < m * (k / g); i++) WS[i] = 1e-3f;
    for (int i = 0; i < 16 * (k / g); i++) XS[i] = 1e-3f;
    for (int n = 1; n <= 16; n *= 2) {
        double best[3] = {1e9, 1e9, 1e9};
        int calls = 1 + (int)(4e6 / ((double)n * k * m));
        for (int rep = 0; rep < reps; rep++)
            for (int w = 0; w < 3; w++) {
                double t = now();
                for (int it = 0; it < calls; it++) {
                    if (w == 2) slmc_linear_q8_rows16(O, X, XS, W, WS, 0, XW, n, k, m, g);  /* timing: the order is immaterial */
                    else (w ? slmc_linear_q8_sse2_rows : slmc_linear_q8_sse2)(O, X, XS, W, WS, 0, XW, n, k, m, g);
                }
                t = (now() - t) / calls;
                if (t < best[w]) best[w] = t;
            }
        printf("%%d %%.5f %%.5f %%.5f\n", n, best[0] / ((double)n * k * m) * 1e9, best[1] / ((double)n * k * m) * 1e9,
               best[2] / ((double)n * k * m) * 1e9);
    }
    return 0;
}
"""
HOST_SHAPES = [(768, 288, 30), (288, 32000, 5)]  # (k, m, timings): stories15M's w2, and its classifier (9.2 MB)


def host(tmp: Path) -> list[dict]:
    src = tmp / "bench_host.c"
    src.write_text(HOST % dict(args=ARGS.replace("void *", "int16_t *"), args16=ARGS))
    exe = tmp / "bench_host"
    subprocess.run(["cc", "-O2", "-std=c99", "-ffp-contract=off", f"-I{C_DIR}", "-o", str(exe), str(src),
                    *(str(C_DIR / f) for f in ("linear_q8_sse2.c", "linear_q8_sse2_rows.c", "linear_q8_rows16.c"))],
                   check=True)
    rows = []
    for k, m, reps in HOST_SHAPES:
        def run(off: str | None = None) -> list[list[float]]:  # off: the kernels with their faster paths turned off
            txt = subprocess.run([str(exe), str(k), str(m), str(reps)], capture_output=True, text=True, check=True,
                                 env={**os.environ, **({off: "1"} if off else {})}).stdout
            return [[float(v) for v in ln.split()] for ln in txt.splitlines()]

        best, no512, avx2, sse2 = run(), run("SLMC_NO_AVX512"), run("SLMC_NO_VNNI"), run("SLMC_NO_AVX2")
        for (n, a, b, c), d, e, f in zip(best, no512, avx2, sse2):
            rows.append(dict(k=k, m=m, group=32, rows=int(n), single_ns_per_mac=a, rows_ns_per_mac=b,
                             rows_avx2_ns_per_mac=e[2], rows_sse2_ns_per_mac=f[2], rows16_ns_per_mac=c,
                             rows16_avxvnni_ns_per_mac=d[3], rows16_avx2_ns_per_mac=e[3], rows16_sse2_ns_per_mac=f[3]))
    return rows


def measure() -> dict:
    with tempfile.TemporaryDirectory() as t:
        return dict(m33=m33(Path(t)), host=host(Path(t)))


if __name__ == "__main__":
    import json

    print(json.dumps(measure(), indent=1))
