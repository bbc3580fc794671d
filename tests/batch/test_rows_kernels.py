"""The multi-row matrix products of a batched step (kernels/batch_linear.py) against the single-sequence
kernels they stand for, called once per row: bit-identical outputs (q8, int8 and fp32) for 1 to 5 rows in
one call, every q8 group path (64, 32, 16, 8, 4 and a group known only at run time, 12; the DSP kernel's
paired path for k >= 128 with groups of 32 or 64, its fall-back below), 2 or 1 weight
rows left after the blocks of 4, with and without a bias. On the host (portable and SSE2 kernels), and built for
the Cortex-M33 (DSP kernel in its rows4 weight order, portable kernels) and RV32IMAC (portable kernels), run
under QEMU. The C packer is quant/q8.py's pack_rows4 written again, independently."""

from __future__ import annotations

import os
import platform
import subprocess

import pytest

from slmc.kernels.registry import C_DIR

HARNESS = r"""#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#define Q8_ARGS float *out, const int8_t *xq, const float *xs, const int8_t *wq, const float *ws, const float *b
void slmc_linear_q8(Q8_ARGS, int n, int k, int m, int group);
void slmc_linear_q8_rows(Q8_ARGS, int n, int k, int m, int group);
void slmc_linear_f32(float *out, const float *x, const float *w, const float *b, int n, int k, int m);
void slmc_linear_f32_rows(float *out, const float *x, const float *w, const float *b, int n, int k, int m);
void slmc_linear_i8(void *out, const int16_t *x, const int8_t *q, const int32_t *m, int n, int rows, int cols,
                    int group, int shift, int out_bits);
void slmc_linear_i8_rows(void *out, const int16_t *x, const int8_t *q, const int32_t *m, int n, int rows, int cols,
                         int group, int shift, int out_bits);
#if defined(__SSE2__)
void slmc_linear_q8_sse2(Q8_ARGS, int16_t *xw, int n, int k, int m, int group);
void slmc_linear_q8_sse2_rows(Q8_ARGS, int16_t *xw, int n, int k, int m, int group);
#endif
#if defined(__ARM_FEATURE_DSP)
void slmc_linear_q8_dsp(Q8_ARGS, uint32_t *xw, int n, int k, int m, int group);
void slmc_linear_q8_dsp_rows(Q8_ARGS, uint32_t *xw, int n, int k, int m, int group);
#endif
#define K 256
#define M 70
#define N 5
static int8_t W[K * M], WP[K * M], X[N * K] __attribute__((aligned(16)));
static float WS[M * 48], WSP[M * 48], XS[N * 48], B[M], O1[N * M], O2[N * M], FW[K * M], FX[N * K];
static uint32_t XW[2 * (N + 1) * K];
static int16_t X16[N * K];
static int32_t MUL[M * 48], I1[N * M], I2[N * M];
static void pack(int m, int k, int ng) {   /* quant/q8.py pack_rows4 */
    int nb = m / 4;
    for (int b = 0; b < nb; b++) for (int j = 0; j < k / 4; j++) for (int r = 0; r < 4; r++)
        memcpy(WP + (size_t)b * 4 * k + (size_t)j * 16 + r * 4, W + (size_t)(4 * b + r) * k + 4 * j, 4);
    memcpy(WP + (size_t)nb * 4 * k, W + (size_t)nb * 4 * k, (size_t)(m - 4 * nb) * k);
    for (int b = 0; b < nb; b++) for (int g = 0; g < ng; g++) for (int r = 0; r < 4; r++)
        WSP[(size_t)b * 4 * ng + g * 4 + r] = WS[(size_t)(4 * b + r) * ng + g];
    memcpy(WSP + (size_t)nb * 4 * ng, WS + (size_t)nb * 4 * ng, sizeof(float) * (m - 4 * nb) * ng);
}
static int bad;
/* the scratch a kernel declares in kernels/batch_linear.py; the words past it must stay untouched */
static void fence(void) { memset(XW, 0xa5, sizeof XW); }
static void fenced(const char *what, size_t bytes) {
    for (size_t i = bytes; i < sizeof XW; i++) if (((uint8_t *)XW)[i] != 0xa5) { bad++; printf("%s writes past its scratch\n", what); return; }
}
static void check(const char *what, const void *a, const void *b, size_t bytes, int k, int g, int bias, int n) {
    if (memcmp(a, b, bytes)) { bad++; printf("%s differs: k=%d g=%d bias=%d n=%d\n", what, k, g, bias, n); }
}
int main(void) {
    srand(11);
    int cfg[][2] = {{96, 8}, {96, 12}, {64, 64}, {172, 4}, {192, 16}, {128, 32}, {256, 32}, {192, 64}, {160, 32}};
    int cases = 0;
    for (int c = 0; c < 9; c++) for (int bias = 0; bias < 2; bias++) for (int n = 1; n <= N; n++) {
        int k = cfg[c][0], g = cfg[c][1], m = M - c % 2, ng = k / g;  /* 70 or 69 weight rows */
        const float *bp = bias ? B : 0;
        for (int i = 0; i < k * m; i++) W[i] = (int8_t)(rand() % 255 - 127), FW[i] = (float)(rand() % 2001 - 1000) * 1e-3f;
        for (int i = 0; i < n * k; i++) X[i] = (int8_t)(rand() % 255 - 127), FX[i] = (float)(rand() % 2001 - 1000) * 1e-3f,
                                        X16[i] = (int16_t)(rand() % 65535 - 32767);
        for (int i = 0; i < m * ng; i++) WS[i] = (float)(rand() % 1000) * 1e-5f, MUL[i] = rand() % 20001 - 10000;
        for (int i = 0; i < n * ng; i++) XS[i] = (float)(rand() % 1000) * 1e-3f;
        for (int i = 0; i < m; i++) B[i] = (float)(rand() % 2001 - 1000) * 1e-3f;
        slmc_linear_q8_rows(O1, X, XS, W, WS, bp, n, k, m, g);
        for (int s = 0; s < n; s++) slmc_linear_q8(O2 + s * m, X + s * k, XS + s * ng, W, WS, bp, 1, k, m, g);
        check("linear_q8_rows", O1, O2, sizeof(float) * n * m, k, g, bias, n);
        slmc_linear_f32_rows(O1, FX, FW, bp, n, k, m);
        for (int s = 0; s < n; s++) slmc_linear_f32(O2 + s * m, FX + s * k, FW, bp, 1, k, m);
        check("linear_f32_rows", O1, O2, sizeof(float) * n * m, k, g, bias, n);
        for (int bits = 16; bits <= 32; bits += 16) {
            slmc_linear_i8_rows(I1, X16, W, MUL, n, m, k, g, 9 + bits / 4, bits);
            for (int s = 0; s < n; s++)
                slmc_linear_i8(bits == 16 ? (void *)((int16_t *)I2 + s * m) : (void *)(I2 + s * m), X16 + s * k, W, MUL,
                               1, m, k, g, 9 + bits / 4, bits);
            check("linear_i8_rows", I1, I2, (size_t)(bits / 8) * n * m, k, g, bias, n);
        }
#if defined(__SSE2__)
        fence();
        slmc_linear_q8_sse2_rows(O1, X, XS, W, WS, bp, (int16_t *)XW, n, k, m, g);
        fenced("linear_q8_sse2_rows", (size_t)2 * n * k);
        for (int s = 0; s < n; s++) slmc_linear_q8_sse2(O2 + s * m, X + s * k, XS + s * ng, W, WS, bp, (int16_t *)XW, 1, k, m, g);
        check("linear_q8_sse2_rows", O1, O2, sizeof(float) * n * m, k, g, bias, n);
#endif
#if defined(__ARM_FEATURE_DSP)
        pack(m, k, ng);
        fence();
        slmc_linear_q8_dsp_rows(O1, X, XS, WP, WSP, bp, XW, n, k, m, g);
        fenced("linear_q8_dsp_rows", (size_t)4 * k * ((n + 1) / 2));
        for (int s = 0; s < n; s++) slmc_linear_q8_dsp(O2 + s * m, X + s * k, XS + s * ng, WP, WSP, bp, XW, 1, k, m, g);
        check("linear_q8_dsp_rows", O1, O2, sizeof(float) * n * m, k, g, bias, n);
#endif
        cases++;
    }
    printf("cases %d bad %d\n", cases, bad);
    return bad;
}
"""

PICOLIBC = ["-O2", "-std=c99", "-ffp-contract=off", "-specs=picolibc.specs", "--oslib=semihost", "--crt0=semihost"]
CROSS = {  # DESIGN.md's toolchain lines
    "cortex-m33": (["arm-none-eabi-gcc", "-mcpu=cortex-m33", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-sp-d16",
                    *PICOLIBC, "-Wl,--defsym=__flash=0x10000000", "-Wl,--defsym=__flash_size=0x400000",
                    "-Wl,--defsym=__ram=0x38000000", "-Wl,--defsym=__ram_size=0x200000"],
                   ["qemu-system-arm", "-M", "mps2-an505", "-nographic", "-semihosting", "-kernel"]),
    "rv32imac": (["riscv64-unknown-elf-gcc", "-march=rv32imac", "-mabi=ilp32", "-mcmodel=medany", *PICOLIBC,
                  "-Wl,--defsym=__flash=0x80000000", "-Wl,--defsym=__flash_size=0x400000",
                  "-Wl,--defsym=__ram=0x80400000", "-Wl,--defsym=__ram_size=0x400000"],
                 ["qemu-system-riscv32", "-M", "virt", "-bios", "none", "-nographic", "-semihosting-config",
                  "enable=on", "-kernel"]),
}
PORTABLE = ["linear_q8.c", "linear_q8_rows.c", "linear_f32.c", "linear_f32_rows.c", "linear_i8.c", "linear_i8_rows.c"]


def _build_and_run(tmp_path, cc: list[str], files: list[str], run: list[str], env: dict | None = None) -> str:
    (tmp_path / "check.c").write_text(HARNESS)
    elf = tmp_path / "check.elf"
    subprocess.run([*cc, f"-I{C_DIR}", "-o", str(elf), str(tmp_path / "check.c"), *(str(C_DIR / f) for f in files),
                    "-lm"], check=True)
    r = subprocess.run([*run, str(elf)], capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
                       env=None if env is None else {**os.environ, **env})
    out = r.stdout + r.stderr
    assert r.returncode == 0 and "cases 90 bad 0" in out, out
    return out


@pytest.mark.parametrize("env", [{}, {"SLMC_NO_VNNI": "1"}, {"SLMC_NO_AVX2": "1"}], ids=["vnni", "avx2", "sse2"])
def test_host_rows_kernels_are_bit_identical_to_one_row_at_a_time(tmp_path, env):
    """linear_q8_sse2_rows.c takes its AVX-VNNI or AVX2 path where the CPU has it (groups of 32 and 64 here);
    SLMC_NO_VNNI and SLMC_NO_AVX2 make it take the next one down"""
    sse2 = ["linear_q8_sse2.c", "linear_q8_sse2_rows.c"] if platform.machine() in ("x86_64", "AMD64") else []
    _build_and_run(tmp_path, ["cc", "-O2", "-std=c99", "-ffp-contract=off"], PORTABLE + sse2, [],
                   env)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["cortex-m33", "rv32imac"])
def test_emulated_rows_kernels_are_bit_identical_to_one_row_at_a_time(tmp_path, target):
    from e2e.test_emulated import need_toolchain

    need_toolchain(target)
    cc, qemu = CROSS[target]
    dsp = ["linear_q8_dsp.c", "linear_q8_dsp_rows.c"] if target == "cortex-m33" else []
    _build_and_run(tmp_path, cc, PORTABLE + dsp, qemu)


ROWS16 = r"""#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#define Q8_ARGS float *out, const int8_t *xq, const float *xs, const int8_t *wq, const float *ws, const float *b
void slmc_linear_q8(Q8_ARGS, int n, int k, int m, int group);
void slmc_linear_q8_rows16(Q8_ARGS, void *scratch, int n, int k, int m, int group);
void slmc_embedding_q8(float *out, const int8_t *q, const float *s, const int32_t *ids, int n, int dim, int group);
void slmc_embedding_q8_rows16(float *out, const int8_t *q, const float *s, const int32_t *ids, int n, int dim,
                              int group, int rows);
#define K 320
#define M 70
#define N 17
static int8_t W[K * M], WP[K * M], X[N * K];
static float WS[M * 80], WSP[M * 80], XS[N * 80], B[M], O1[N * M], O2[N * M], E1[M * K], E2[M * K];
static int32_t XC[N * K + 64], IDS[M];
static void pack(int m, int k, int ng) {   /* quant/q8.py pack_rows16, written again */
    for (int i = 0; i < m; i++) for (int j = 0; j < k; j++) {
        size_t at = i < m / 16 * 16 ? (size_t)(i / 16) * 16 * k + (size_t)(j / 4) * 64 + (i % 16) * 4 + j % 4 : (size_t)i * k + j;
        WP[at] = W[(size_t)i * k + j];
    }
    for (int i = 0; i < m; i++) for (int g = 0; g < ng; g++)
        WSP[i < m / 16 * 16 ? (size_t)(i / 16) * 16 * ng + g * 16 + i % 16 : (size_t)i * ng + g] = WS[(size_t)i * ng + g];
}
int main(void) {
    srand(5);
    int cfg[][2] = {{36, 12}, {96, 4}, {160, 32}, {192, 64}, {320, 32}, {128, 64}, {64, 32}};
    int ms[] = {1, 15, 16, 17, 37, 64, 70};
    int cases = 0, bad = 0;
    for (int c = 0; c < 7; c++) for (int mi = 0; mi < 7; mi++) for (int n = 1; n <= N; n++) {
        int k = cfg[c][0], g = cfg[c][1], m = ms[mi], ng = k / g, bias = (n + mi) % 2;
        const float *bp = bias ? B : 0;
        for (int i = 0; i < k * m; i++) W[i] = (int8_t)(rand() % 255 - 127);
        for (int i = 0; i < n * k; i++) X[i] = (int8_t)(rand() % 256 - 128);
        for (int i = 0; i < m * ng; i++) WS[i] = (float)(rand() % 1000 + 1) * 1e-5f;
        for (int i = 0; i < n * ng; i++) XS[i] = (float)(rand() % 1000) * 1e-3f;
        for (int i = 0; i < m; i++) B[i] = (float)(rand() % 2001 - 1000) * 1e-3f;
        pack(m, k, ng);
        memset(XC, 0xa5, sizeof XC);
        slmc_linear_q8_rows16(O1, X, XS, WP, WSP, bp, XC, n, k, m, g);
        for (size_t i = (size_t)n * k; i < sizeof XC / 4; i++) if (XC[i] != (int32_t)0xa5a5a5a5) { bad++; printf("scratch overrun\n"); break; }
        for (int s = 0; s < n; s++) slmc_linear_q8(O2 + s * m, X + s * k, XS + s * ng, W, WS, bp, 1, k, m, g);
        if (memcmp(O1, O2, sizeof(float) * n * m)) { bad++; printf("linear_q8_rows16 differs: k=%d g=%d m=%d n=%d\n", k, g, m, n); }
        if (n == 1) {
            for (int i = 0; i < m; i++) IDS[i] = m - 1 - i;
            slmc_embedding_q8_rows16(E1, WP, WSP, IDS, m, k, g, m);
            slmc_embedding_q8(E2, W, WS, IDS, m, k, g);
            if (memcmp(E1, E2, sizeof(float) * m * k)) { bad++; printf("embedding_q8_rows16 differs: k=%d g=%d m=%d\n", k, g, m); }
        }
        cases++;
    }
    printf("cases %d bad %d\n", cases, bad);
    return bad;
}
"""


@pytest.mark.parametrize("env", [{}, {"SLMC_NO_AVX512": "1"}, {"SLMC_NO_VNNI": "1"}, {"SLMC_NO_AVX2": "1"},
                                 {"SLMC_NO_AVX2": "1", "SLMC_NO_SSE2": "1"}], ids=["avx512", "avxvnni", "avx2", "sse2", "plain"])
def test_host_rows16_kernel_is_bit_identical_to_linear_q8(tmp_path, env):
    """linear_q8_rows16.c (weights in quant/q8.py's rows16 order, packed again here in C) against linear_q8.c
    called once per row: 1 to 17 token rows (chunks of 8 and 4 and their remainders), 1 to 70 output rows (whole
    blocks of 16, a tail of 1..15 rows, only a tail), k of 36 to 320 in groups of 4, 12, 32 and 64, with and
    without a bias; and embedding_q8_rows16.c against embedding_q8.c. Each path the CPU has, then the next down
    (SLMC_NO_AVX512, SLMC_NO_VNNI, SLMC_NO_AVX2, SLMC_NO_SSE2; a path the CPU lacks falls through to the next one
    down); the scratch words past the 4 * n * k bytes it declares stay untouched."""
    (tmp_path / "check.c").write_text(ROWS16)
    elf = tmp_path / "check"
    subprocess.run(["cc", "-O2", "-std=c99", "-ffp-contract=off", f"-I{C_DIR}", "-o", str(elf), str(tmp_path / "check.c"),
                    *(str(C_DIR / f) for f in ("linear_q8.c", "linear_q8_rows16.c", "embedding_q8.c",
                                               "embedding_q8_rows16.c")), "-lm"], check=True)
    r = subprocess.run([str(elf)], capture_output=True, text=True, timeout=300, env={**os.environ, **env})
    assert r.returncode == 0 and "cases 833 bad 0" in r.stdout, r.stdout + r.stderr


def test_rows16_order_and_its_numpy_twins():
    """quant/q8.py's rows16 order: blocks of 16 rows, [block][k/4][row][4 bytes], scales [block][group][row], the rows
    after the last block row-major (checked element by element against that formula); the numpy twins of linear_q8 and
    embedding_q8 read it back to the row-major results."""
    import numpy as np

    from slmc.quant.q8 import pack_rows16, unpack_rows16
    from slmc.reference.llm_ops import embedding_q8, linear_q8

    rng = np.random.default_rng(4)
    m, k, g = 37, 96, 32
    q = rng.integers(-127, 128, (m, k)).astype(np.int8)
    s = rng.random((m, k // g)).astype(np.float32)
    pq, ps = pack_rows16(q, s)
    flat_q, flat_s = pq.reshape(-1), ps.reshape(-1)
    for i in (0, 5, 15, 16, 31, 32, 36):
        for j in (0, 3, 4, 95):
            at = (i // 16) * 16 * k + (j // 4) * 64 + (i % 16) * 4 + j % 4 if i < 32 else i * k + j
            assert flat_q[at] == q[i, j]
        at = (i // 16) * 16 * (k // g) + 2 * 16 + i % 16 if i < 32 else i * (k // g) + 2
        assert flat_s[at] == s[i, 2]
    uq, us = unpack_rows16(pq, ps)
    assert np.array_equal(uq, q) and np.array_equal(us, s)
    xq = rng.integers(-127, 128, (3, k)).astype(np.int8)
    xs = rng.random((3, k // g)).astype(np.float32)
    want = linear_q8([xq, xs, q, s, None], {"group": g})[0]
    assert np.array_equal(linear_q8([xq, xs, pq, ps, None], {"group": g, "layout": "rows16"})[0], want)
    ids = np.array([36, 0, 17], np.int32)
    assert np.array_equal(embedding_q8([pq, ps, ids], {"group": g, "layout": "rows16"})[0],
                          embedding_q8([q, s, ids], {"group": g})[0])
