"""rmsnorm_f32.c's AVX-512 path (x86-64 hosts, two rows or more: a batched step's) against the loop, written again
here: the same bits for 1 to 20 rows (one lane per row, 16 at a time), widths 1 to 300 (blocks of 16 and the scalar
rest), values at many magnitudes (sums that overflow), signed zeros, infinities and NaNs, and out written over x."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).parent))
from emulated_kernels import run_host_harness  # noqa: E402  (beside the tests)

HARNESS = r"""#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
void slmc_rmsnorm_f32(float *out, const float *x, const float *w, int n, int dim, float eps);
static void loop(float *out, const float *x, const float *w, int n, int dim, float eps) {
    for (int s = 0; s < n; s++) {
        const float *xr = x + (size_t)s * dim;
        float *o = out + (size_t)s * dim;
        float ss = 0.0f;
        for (int j = 0; j < dim; j++) ss += xr[j] * xr[j];
        ss /= (float)dim;
        ss += eps;
        ss = 1.0f / sqrtf(ss);
        for (int j = 0; j < dim; j++) o[j] = w[j] * (ss * xr[j]);
    }
}
int main(void) {
    static float X[20 * 300], W[300], O1[20 * 300], O2[20 * 300];
    const float special[] = {0.0f, -0.0f, NAN, INFINITY, -INFINITY, 1e30f, 1e-40f};
    int bad = 0, cases = 0;
    srand(13);
    for (int c = 0; c < 3000; c++) {
        int n = 1 + c % 20, dim = 1 + rand() % 300, kind = c % 4;
        float eps = c % 2 ? 1e-5f : 1e-6f;
        for (int i = 0; i < n * dim; i++) {
            X[i] = (float)(rand() % 20001 - 10000) * (kind == 1 ? 1e-6f : kind == 2 ? 1e15f : 1e-3f);
            if (kind == 3 && rand() % 50 == 0) X[i] = special[rand() % 7];
        }
        for (int i = 0; i < dim; i++) W[i] = (float)(rand() % 2001 - 1000) * 1e-3f;
        loop(O1, X, W, n, dim, eps);
        slmc_rmsnorm_f32(O2, X, W, n, dim, eps);
        if (memcmp(O1, O2, sizeof(float) * n * dim)) { bad++; if (bad < 5) printf("differs: n=%d dim=%d kind=%d\n", n, dim, kind); }
        slmc_rmsnorm_f32(X, X, W, n, dim, eps);   /* in place */
        if (memcmp(O1, X, sizeof(float) * n * dim)) { bad++; if (bad < 5) printf("in place differs: n=%d dim=%d\n", n, dim); }
        cases++;
    }
    printf("cases %d bad %d\n", cases, bad);
    return bad != 0;
}
"""


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="an x86-64 path")
@pytest.mark.parametrize("env", [{}, {"SLMC_NO_AVX512": "1"}], ids=["avx512", "loop"])
def test_rmsnorm_f32_avx512_is_bit_identical_to_the_loop(tmp_path, env):
    out = run_host_harness(tmp_path, HARNESS, ["rmsnorm_f32.c"], env)
    assert "cases 3000 bad 0" in out, out
