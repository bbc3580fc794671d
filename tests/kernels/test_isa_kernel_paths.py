"""linear_q8_dsp.c (in its rows4 weight order) and linear_q8_rv32.c against the portable linear_q8.c, built
together for the core and run under QEMU: bit-identical outputs for every group path (64, 32, 16, 8, 4 and
groups known only at run time, 12; 3 on RV32), 2 rows left after the blocks, with and without a bias, 1
and 3 tokens. The C packer below is quant/q8.py's pack_rows4 written again, independently."""

from __future__ import annotations

import subprocess

import pytest

from slmc.kernels.registry import C_DIR

pytestmark = pytest.mark.slow

DSP = r"""#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
void slmc_linear_q8_dsp(float *out, const int8_t *xq, const float *xs, const int8_t *wq, const float *ws,
                        const float *b, uint32_t *xw, int n, int k, int m, int group);
void slmc_linear_q8(float *out, const int8_t *xq, const float *xs, const int8_t *wq, const float *ws,
                    const float *b, int n, int k, int m, int group);
static int8_t W[192 * 70], WP[192 * 70], X[3 * 192] __attribute__((aligned(16)));
static float WS[70 * 48], WSP[70 * 48], XS[3 * 48], B[70], O1[3 * 70], O2[3 * 70]; static uint32_t XW[3 * 192];
static void pack(int m, int k, int ng) {   /* quant/q8.py pack_rows4 */
    int nb = m / 4;
    for (int b = 0; b < nb; b++) for (int j = 0; j < k / 4; j++) for (int r = 0; r < 4; r++)
        memcpy(WP + (size_t)b * 4 * k + (size_t)j * 16 + r * 4, W + (size_t)(4 * b + r) * k + 4 * j, 4);
    memcpy(WP + (size_t)nb * 4 * k, W + (size_t)nb * 4 * k, (size_t)(m - 4 * nb) * k);
    for (int b = 0; b < nb; b++) for (int g = 0; g < ng; g++) for (int r = 0; r < 4; r++)
        WSP[(size_t)b * 4 * ng + g * 4 + r] = WS[(size_t)(4 * b + r) * ng + g];
    memcpy(WSP + (size_t)nb * 4 * ng, WS + (size_t)nb * 4 * ng, sizeof(float) * (m - 4 * nb) * ng);
}
int main(void) {
    srand(7);
    /* incl. linear_q8_dsp.c's one-group path (k = group) and its group-4 path (k = 172, 176; short m) */
    int cfg[][3] = {{96, 70, 8}, {96, 70, 12}, {64, 70, 64}, {172, 70, 4}, {192, 70, 16}, {128, 70, 32}, {64, 64, 64},
                    {32, 70, 32}, {16, 70, 16}, {64, 3, 64}, {172, 6, 4}, {172, 3, 4}, {176, 9, 4}};
    int bad = 0;
    for (int c = 0; c < 13; c++) for (int nb = 0; nb < 2; nb++) for (int n = 1; n <= 3; n++) {
        int k = cfg[c][0], m = cfg[c][1], g = cfg[c][2];
        for (int i = 0; i < k * m; i++) W[i] = (int8_t)(rand() % 255 - 127);
        for (int i = 0; i < n * k; i++) X[i] = (int8_t)(rand() % 255 - 127);
        for (int i = 0; i < m * (k / g); i++) WS[i] = (float)(rand() % 1000) * 1e-5f;
        for (int i = 0; i < n * (k / g); i++) XS[i] = (float)(rand() % 1000) * 1e-3f;
        for (int i = 0; i < m; i++) B[i] = (float)(rand() % 2001 - 1000) * 1e-3f;
        pack(m, k, k / g);
        slmc_linear_q8_dsp(O1, X, XS, WP, WSP, nb ? B : 0, XW, n, k, m, g);
        slmc_linear_q8(O2, X, XS, W, WS, nb ? B : 0, n, k, m, g);
        if (memcmp(O1, O2, sizeof(float) * n * m)) { bad++; printf("differs: k=%d m=%d g=%d bias=%d n=%d\n", k, m, g, nb, n); }
    }
    printf("bad %d\n", bad);
    return bad;
}
"""

RV32 = r"""#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
void slmc_linear_q8_rv32(float *out, const int8_t *xq, const float *xs, const int8_t *wq, const float *ws,
                         const float *b, int16_t *xw, int n, int k, int m, int group);
void slmc_linear_q8(float *out, const int8_t *xq, const float *xs, const int8_t *wq, const float *ws,
                    const float *b, int n, int k, int m, int group);
static int8_t W[192 * 70], X[3 * 192]; static float WS[70 * 48], XS[3 * 48], B[70], O1[3 * 70], O2[3 * 70]; static int16_t XW[3 * 192];
int main(void) {
    srand(7);
    int cfg[][3] = {{96, 70, 8}, {96, 70, 12}, {64, 70, 64}, {172, 70, 4}, {192, 70, 16}, {128, 70, 32}, {96, 70, 3}};
    int bad = 0;
    for (int c = 0; c < 7; c++) for (int nb = 0; nb < 2; nb++) for (int n = 1; n <= 3; n += 2) {
        int k = cfg[c][0], m = cfg[c][1], g = cfg[c][2];
        for (int i = 0; i < k * m; i++) W[i] = (int8_t)(rand() % 255 - 127);
        for (int i = 0; i < n * k; i++) X[i] = (int8_t)(rand() % 255 - 127);
        for (int i = 0; i < m * (k / g); i++) WS[i] = (float)(rand() % 1000) * 1e-5f;   /* some zeros */
        for (int i = 0; i < n * (k / g); i++) XS[i] = (float)(rand() % 1000) * 1e-3f;
        for (int i = 0; i < m; i++) B[i] = (float)(rand() % 2001 - 1000) * 1e-3f;
        slmc_linear_q8_rv32(O1, X, XS, W, WS, nb ? B : 0, XW, n, k, m, g);
        slmc_linear_q8(O2, X, XS, W, WS, nb ? B : 0, n, k, m, g);
        if (memcmp(O1, O2, sizeof(float) * n * m)) { bad++; printf("differs: k=%d m=%d g=%d bias=%d n=%d\n", k, m, g, nb, n); }
    }
    printf("bad %d\n", bad);
    return bad;
}
"""

PICOLIBC = ["-O2", "-std=c99", "-ffp-contract=off", "-specs=picolibc.specs", "--oslib=semihost", "--crt0=semihost"]
BUILD = {
    "cortex-m33": (["arm-none-eabi-gcc", "-mcpu=cortex-m33", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-sp-d16",
                    *PICOLIBC, "-Wl,--defsym=__flash=0x10000000", "-Wl,--defsym=__flash_size=0x400000",
                    "-Wl,--defsym=__ram=0x38000000", "-Wl,--defsym=__ram_size=0x200000"],
                   ["qemu-system-arm", "-M", "mps2-an505", "-nographic", "-semihosting", "-kernel"],
                   DSP, "linear_q8_dsp.c"),
    "rv32imac": (["riscv64-unknown-elf-gcc", "-march=rv32imac", "-mabi=ilp32", "-mcmodel=medany", *PICOLIBC,
                  "-Wl,--defsym=__flash=0x80000000", "-Wl,--defsym=__flash_size=0x400000",
                  "-Wl,--defsym=__ram=0x80400000", "-Wl,--defsym=__ram_size=0x400000"],
                 ["qemu-system-riscv32", "-M", "virt", "-bios", "none", "-nographic", "-semihosting-config",
                  "enable=on", "-kernel"],
                 RV32, "linear_q8_rv32.c"),
}


def need_toolchain(target: str) -> None:
    import os
    import shutil

    missing = [t for t in (BUILD[target][0][0], BUILD[target][1][0]) if shutil.which(t) is None]
    if missing:
        msg = f"{', '.join(missing)} not installed (`make toolchains` installs them)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.mark.parametrize("target", list(BUILD))
def test_every_group_path_is_bit_identical_to_the_portable_kernel(tmp_path, target):
    need_toolchain(target)
    cc, qemu, src, kernel = BUILD[target]
    (tmp_path / "check.c").write_text(src)
    elf = tmp_path / "check.elf"
    subprocess.run([*cc, f"-I{C_DIR}", "-o", str(elf), str(tmp_path / "check.c"), str(C_DIR / kernel),
                    str(C_DIR / "linear_q8.c"), "-lm"], check=True)
    r = subprocess.run([*qemu, str(elf)], capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    out = r.stdout + r.stderr
    assert r.returncode == 0 and "bad 0" in out, out
