"""quantize_q8_sse2.c (x86-64 hosts) against quantize_q8.c, llama2.c runq.c's quantize(): the same scales and int8
values, bit for bit, for groups of 4 to 64 (multiples of 16 in AVX-512, of 4 in SSE2, 3 and 5 through quantize_q8.c), 1 to 4 rows,
values at many magnitudes (denormal to 1e40, which is inf), exact halves (roundf's away-from-zero), NaNs, signed
zeros and all-zero groups."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).parent))
from emulated_kernels import run_host_harness  # noqa: E402  (beside the tests)

HARNESS = r"""#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
void slmc_quantize_q8(int8_t *q, float *s, const float *x, int n, int k, int group);
void slmc_quantize_q8_sse2(int8_t *q, float *s, const float *x, int n, int k, int group);
static float X[8 * 1024], S1[8 * 1024], S2[8 * 1024];
static int8_t Q1[8 * 1024], Q2[8 * 1024];
int main(void) {
    int groups[] = {4, 8, 12, 16, 20, 32, 48, 64, 3, 5};
    int bad = 0, cases = 0;
    srand(9);
    for (int c = 0; c < 4000; c++) {
        int g = groups[c % 10], ng = 1 + rand() % 6, n = 1 + rand() % 4, k = g * ng;
        int kind = c % 7;
        for (int i = 0; i < n * k; i++) {
            float v = (float)(rand() % 20001 - 10000) * (kind == 1 ? 1e-3f : kind == 2 ? 1e-41f : kind == 3 ? (rand() % 3 ? 1e30f : 1e36f) : 0.0137f);
            if (kind == 4 && rand() % 9 == 0) v = (float)(rand() % 255 - 127) * 0.5f;       /* exact halves */
            if (kind == 5 && rand() % 17 == 0) v = rand() % 2 ? NAN : (rand() % 2 ? -0.0f : 0.0f);
            if (kind == 6 && rand() % 5) v = 0.0f;
            X[i] = v;
        }
        if (kind == 6 && c % 2) for (int i = 0; i < g; i++) X[i] = 0.0f;  /* an all-zero group */
        memset(Q1, 0x55, sizeof Q1); memset(Q2, 0x55, sizeof Q2);
        slmc_quantize_q8(Q1, S1, X, n, k, g);
        slmc_quantize_q8_sse2(Q2, S2, X, n, k, g);
        if (memcmp(Q1, Q2, sizeof Q1) || memcmp(S1, S2, sizeof(float) * n * ng)) { bad++; if (bad < 4) printf("differs: g=%d n=%d k=%d kind=%d\n", g, n, k, kind); }
        cases++;
    }
    printf("cases %d bad %d\n", cases, bad);
    return bad != 0;
}
"""


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="an x86-64 kernel")
@pytest.mark.parametrize("env", [{}, {"SLMC_NO_AVX512": "1"}], ids=["avx512", "sse2"])
def test_quantize_q8_sse2_is_bit_identical_to_quantize_q8(tmp_path, env):
    """groups of a multiple of 16 take its AVX-512 path where the CPU has one (SLMC_NO_AVX512: the SSE2 loop)"""
    out = run_host_harness(tmp_path, HARNESS, ["quantize_q8.c", "quantize_q8_sse2.c"], env)
    assert "cases 4000 bad 0" in out, out
