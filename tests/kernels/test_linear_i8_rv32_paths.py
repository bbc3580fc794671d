"""linear_i8_rv32.c (-q int8 on RV32, weights in quant/int8.py's rows4 order) against the portable
slmc_i8_row + slmc_i8_store of slmc_kernels.h (what linear_i8.c and the numpy twin compute), built together
for rv32imac and run under QEMU: equal outputs for every path (one group a row; groups of 64, 32, 16, 8; group
4 with 1, 43 and 127 groups a row, and 128, past its 32-bit bound), rows left after the 8- and 4-row blocks,
int16 and int32 outputs, shifts on each side of 17 and 32, 1 and 2 tokens. The values include the extremes
the group-4 path's proof rests on: sums of 4 products of -32768 and -128 (2^24) and multipliers of 2^24 - 1.
The C packer below is quant/int8.py's pack_rows4 written again, independently."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from slmc.kernels.registry import C_DIR

pytestmark = pytest.mark.slow

SRC = r"""#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "slmc_kernels.h"
void slmc_linear_i8_rv32(void *out, const int16_t *x, const int8_t *q, const int32_t *m, int n, int rows, int cols,
                         int group, int shift, int out_bits);
#define MAXW (70 * 512)
static int8_t W[MAXW], WP[MAXW]; static int32_t M[70 * 128], MP[70 * 128]; static int16_t X[2 * 512];
static int32_t O1[2 * 70], O2[2 * 70];
static void pack(int rows, int k, int ng) {   /* quant/int8.py pack_rows4 */
    int nb = rows / 4;
    for (int b = 0; b < nb; b++) for (int j = 0; j < k / 4; j++) for (int r = 0; r < 4; r++)
        memcpy(WP + (size_t)b * 4 * k + (size_t)j * 16 + r * 4, W + (size_t)(4 * b + r) * k + 4 * j, 4);
    memcpy(WP + (size_t)nb * 4 * k, W + (size_t)nb * 4 * k, (size_t)(rows - 4 * nb) * k);
    for (int b = 0; b < nb; b++) for (int g = 0; g < ng; g++) for (int r = 0; r < 4; r++)
        MP[(size_t)b * 4 * ng + g * 4 + r] = M[(size_t)(4 * b + r) * ng + g];
    memcpy(MP + (size_t)nb * 4 * ng, M + (size_t)nb * 4 * ng, sizeof(int32_t) * (rows - 4 * nb) * ng);
}
static int32_t rnd_m(int extreme) {   /* multipliers in [0, 2^24), as quant/int8.py's */
    return extreme ? (1 << 24) - 1 - rand() % 3 : (int32_t)(((uint32_t)rand() << 8 ^ (uint32_t)rand()) & 0xFFFFFF);
}
int main(void) {
    srand(11);
    /* rows, cols, group */
    int cfg[][3] = {{70, 64, 64}, {13, 64, 64}, {70, 128, 32}, {70, 96, 16}, {21, 40, 8}, {70, 172, 4},
                    {9, 508, 4}, {6, 512, 4}, {13, 4, 4}};
    int shifts[] = {8, 17, 20, 31, 32, 33, 40, 52};
    int bad = 0, runs = 0;
    for (int c = 0; c < 9; c++) for (int mode = 0; mode < 3; mode++) for (int n = 1; n <= 2; n++) {
        int rows = cfg[c][0], k = cfg[c][1], g = cfg[c][2], ng = k / g;
        for (int r = 0; r < rows; r++) for (int j = 0; j < k; j++) {
            int extreme = mode == 2 || (mode == 1 && r % 3 == 0);
            W[(size_t)r * k + j] = (int8_t)(extreme ? (r % 2 ? -128 : 127) : rand() % 256 - 128);
        }
        for (int i = 0; i < n * k; i++)
            X[i] = (int16_t)(mode == 2 ? (i % 7 ? -32768 : 32767) : rand() % 65536 - 32768);
        for (int i = 0; i < rows * ng; i++) M[i] = i % 11 == 5 ? 0 : rnd_m(mode > 0);
        pack(rows, k, ng);
        for (int s = 0; s < 8; s++) for (int ob = 16; ob <= 32; ob += 16) {
            memset(O1, 0x5A, sizeof O1);
            memset(O2, 0x5A, sizeof O2);
            slmc_linear_i8_rv32(O1, X, WP, MP, n, rows, k, g, shifts[s], ob);
            for (int i = 0; i < n; i++) for (int r = 0; r < rows; r++)
                slmc_i8_store(O2, (size_t)i * rows + r, slmc_i8_row(X + (size_t)i * k, W + (size_t)r * k,
                                                                    M + (size_t)r * ng, k, g), shifts[s], ob);
            runs++;
            if (memcmp(O1, O2, (size_t)n * rows * ob / 8)) {
                bad++;
                printf("differs: rows=%d k=%d g=%d mode=%d n=%d shift=%d out_bits=%d\n", rows, k, g, mode, n,
                       shifts[s], ob);
            }
        }
    }
    printf("runs %d bad %d\n", runs, bad);
    return bad;
}
"""

CC = ["riscv64-unknown-elf-gcc", "-march=rv32imac", "-mabi=ilp32", "-mcmodel=medany", "-O2", "-std=c99",
      "-specs=picolibc.specs", "--oslib=semihost", "--crt0=semihost", "-Wl,--defsym=__flash=0x80000000",
      "-Wl,--defsym=__flash_size=0x400000", "-Wl,--defsym=__ram=0x80400000", "-Wl,--defsym=__ram_size=0x400000"]
QEMU = ["qemu-system-riscv32", "-M", "virt", "-cpu", "rv32,zba=true,zbb=true,zbs=true,zbc=false", "-bios", "none",
        "-nographic", "-semihosting-config", "enable=on", "-kernel"]


def test_every_path_equals_the_portable_row(tmp_path):
    missing = [t for t in (CC[0], QEMU[0]) if shutil.which(t) is None]
    if missing:
        msg = f"{', '.join(missing)} not installed (`make toolchains` installs them)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    (tmp_path / "check.c").write_text(SRC)
    elf = tmp_path / "check.elf"
    subprocess.run([*CC, f"-I{C_DIR}", "-o", str(elf), str(tmp_path / "check.c"), str(C_DIR / "linear_i8_rv32.c")],
                   check=True)
    r = subprocess.run([*QEMU, str(elf)], capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    out = r.stdout + r.stderr
    assert r.returncode == 0 and "runs 864 bad 0" in out, out
