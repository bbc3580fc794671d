"""swiglu_f32.c's AVX-512 path (x86-64 hosts) against llama2.c's loop, written again here: the same bits for every
count from 1 to 70 (blocks of 16 and the scalar rest), values at many magnitudes (exp overflowing and underflowing),
signed zeros, infinities and NaNs, and the output written over the gate or over u (its element-wise overlap). Its
vector expf (glibc's algorithm as __expf_fma computes it) against this machine's libm expf: the once-per-process
check, and with SLMC_EXHAUSTIVE=1 all 2^32 float inputs (about half a minute)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from slmc.kernels.registry import C_DIR

sys.path.append(str(Path(__file__).parent))
from emulated_kernels import run_host_harness  # noqa: E402  (beside the tests)

HARNESS = r"""#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
void slmc_swiglu_f32(float *out, const float *g, const float *u, int count);
static void loop(float *out, const float *g, const float *u, int count) {  /* llama2.c's SwiGLU */
    for (int i = 0; i < count; i++) {
        float v = g[i];
        v = v * (1.0f / (1.0f + expf(-v)));
        out[i] = v * u[i];
    }
}
int main(void) {
    static float G[80], U[80], O1[80], O2[80], O3[80];
    const float special[] = {0.0f, -0.0f, NAN, INFINITY, -INFINITY, 88.8f, -88.8f, -104.0f, 1e-40f};
    int bad = 0, cases = 0;
    srand(11);
    for (int c = 0; c < 20000; c++) {
        int n = 1 + c % 70, kind = c % 4;
        for (int i = 0; i < n; i++) {
            G[i] = (float)(rand() % 20001 - 10000) * (kind == 0 ? 1e-3f : kind == 1 ? 1e-2f : kind == 2 ? 1e-5f : 1.7e-2f);
            U[i] = (float)(rand() % 20001 - 10000) * 1e-3f;
            if (kind == 3 && rand() % 7 == 0) G[i] = special[rand() % 9];
            if (kind == 3 && rand() % 11 == 0) U[i] = special[rand() % 9];
        }
        loop(O1, G, U, n);
        slmc_swiglu_f32(O2, G, U, n);
        memcpy(O3, G, sizeof G);
        slmc_swiglu_f32(O3, O3, U, n);   /* over the gate */
        if (memcmp(O1, O2, sizeof(float) * n) || memcmp(O1, O3, sizeof(float) * n)) { bad++; if (bad < 5) printf("differs: n=%d kind=%d\n", n, kind); }
        memcpy(O3, U, sizeof U);
        slmc_swiglu_f32(O3, G, O3, n);   /* over u */
        if (memcmp(O1, O3, sizeof(float) * n)) { bad++; if (bad < 5) printf("over u differs: n=%d\n", n); }
        cases++;
    }
    printf("cases %d bad %d\n", cases, bad);
    return bad != 0;
}
"""


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="an x86-64 path")
@pytest.mark.parametrize("env", [{}, {"SLMC_NO_AVX512": "1"}], ids=["avx512", "loop"])
def test_swiglu_f32_avx512_is_bit_identical_to_the_loop(tmp_path, env):
    out = run_host_harness(tmp_path, HARNESS, ["swiglu_f32.c"], env)
    assert "cases 20000 bad 0" in out, out


EXHAUSTIVE = r"""#include "swiglu_f32.c"
#include <stdio.h>
SW_512 static long check(uint64_t step) {  /* every float bit pattern (step 16), or a spread of them */
    long bad = 0;
    float x[16], y[16];
    for (uint64_t b = 0; b < (1ull << 32); b += step) {
        for (int l = 0; l < 16; l++) { uint32_t u = (uint32_t)(b + l); memcpy(&x[l], &u, 4); }
        _mm512_storeu_ps(y, sw_exp16(_mm512_loadu_ps(x)));
        for (int l = 0; l < 16; l++) {
            float e = expf(x[l]);
            if (memcmp(&e, &y[l], 4)) { if (bad < 5) printf("differs at %08x: %a, libm %a\n", (unsigned)(b + l), y[l], e); bad++; }
        }
    }
    return bad;
}
int main(int argc, char **argv) {
    if (!__builtin_cpu_supports("avx512f")) { printf("no avx512f\n"); return 0; }
    long bad = (sw_exp_matches_libm() ? 0 : 1) + check(argc > 1 ? 16 : 4093 * 16);
    printf("bad %ld\n", bad);
    return bad != 0;
}
"""


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="an x86-64 path")
@pytest.mark.parametrize("every", [False, pytest.param(True, marks=pytest.mark.skipif(
    os.environ.get("SLMC_EXHAUSTIVE") != "1", reason="SLMC_EXHAUSTIVE=1 checks all 2^32 floats"))], ids=["spread", "all"])
def test_vector_expf_is_libm_expf(tmp_path, every):
    (tmp_path / "exh.c").write_text(EXHAUSTIVE)
    subprocess.run(["cc", "-O2", "-std=c99", "-ffp-contract=off", f"-I{C_DIR}", "-o", str(tmp_path / "exh"),
                    str(tmp_path / "exh.c"), "-lm"], check=True)
    out = subprocess.run([str(tmp_path / "exh"), *(["all"] if every else [])], capture_output=True, text=True).stdout
    assert "bad 0" in out or "no avx512f" in out, out
