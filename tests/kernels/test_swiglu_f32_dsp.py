"""swiglu_f32_dsp.c (the SwiGLU gate on the Cortex-M33 with picolibc's expf inlined) against swiglu_f32.c, which
calls picolibc's expf, built together for the M33 and run under QEMU: bit-identical outputs over 200,000 gates
with random signs and exponents from 2^-30 to 2^8, every argument range of expf's (|x| < 2^-23, under 0.5 ln2,
under 1.5 ln2, beyond; the k < -125 tail, the overflow bound, NaN and infinities) and the words on each side of its
range limits. The reference is the library's expf itself, through the portable kernel."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest


sys.path.append(str(Path(__file__).parent))
from emulated_kernels import run_harness  # noqa: E402  (beside the tests)

pytestmark = pytest.mark.slow

HARNESS = r"""#include <stdio.h>
#include <stdint.h>
#include <string.h>
void slmc_swiglu_f32(float *out, const float *g, const float *u, int count);
void slmc_swiglu_f32_dsp(float *out, const float *g, const float *u, int count);
#define N 4096
static float G[N], U[N], O1[N], O2[N];
static uint32_t st = 2463534242u;
static uint32_t rnd(void) { st ^= st << 13; st ^= st >> 17; st ^= st << 5; return st; }
static float word(uint32_t w) { float f; memcpy(&f, &w, 4); return f; }
int main(void) {
    /* expf(-g)'s limits, as words of |x|: 2^-23, 0.5 ln2, 1.5 ln2, the overflow bound; and arguments around them */
    static const uint32_t lim[] = {0x34000000u, 0x3eb17218u, 0x3f851592u, 0x42b17217u, 0x42aa0000u, 0x42ad0000u,
                                   0x42c00000u, 0x42cff1b5u, 0x3f800000u, 0x40000000u};
    long bad = 0, total = 0;
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < N; i++) {
            uint32_t r = rnd();
            int e = (int)(r % 39) - 30;                          /* 2^-30 .. 2^8 */
            uint32_t w = ((uint32_t)(127 + e) << 23) | (rnd() & 0x7fffffu) | (r & 0x80000000u);
            G[i] = word(w);
            U[i] = i & 1 ? 1.0f : word((127u << 23) | (rnd() & 0x7fffffu)) * (r & 2 ? -1.5f : 0.75f);
        }
        if (round == 0) {
            int j = 0;
            for (int l = 0; l < 10; l++)
                for (int d = -3; d <= 3; d++)
                    for (int s = 0; s < 2; s++) G[j++] = word((uint32_t)((int32_t)lim[l] + d) | (s ? 0x80000000u : 0));
            for (int v = 0; v < 400; v++) G[j++] = -86.0f - v * 0.0075f;   /* k from -124 to -128 */
            for (int v = 0; v < 400; v++) G[j++] = 86.0f + v * 0.0075f;
            G[j++] = word(0x7fc00000u), G[j++] = word(0x7f800000u), G[j++] = word(0xff800000u);
            G[j++] = 0.0f, G[j++] = -0.0f, G[j++] = word(1u), G[j++] = word(0x80000001u);
        }
        slmc_swiglu_f32(O1, G, U, N);
        slmc_swiglu_f32_dsp(O2, G, U, N);
        for (int i = 0; i < N; i++, total++)
            if (memcmp(O1 + i, O2 + i, 4)) {
                uint32_t a, b, g;
                memcpy(&a, O1 + i, 4), memcpy(&b, O2 + i, 4), memcpy(&g, G + i, 4);
                if (bad++ < 10) printf("g %08lx: %08lx != %08lx\n", (unsigned long)g, (unsigned long)a, (unsigned long)b);
            }
    }
    printf("bad %ld of %ld\n", bad, total);
    return 0;
}
"""


def test_the_inlined_expf_is_picolibcs(tmp_path):
    out = run_harness("cortex-m33", tmp_path, HARNESS, ["swiglu_f32.c", "swiglu_f32_dsp.c"], ("-lm",))
    assert "bad 0 of 204800" in out, out[-2000:]
