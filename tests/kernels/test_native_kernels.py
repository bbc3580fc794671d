"""The host-native kernels (kernels/native.py) against the exact portable ones they stand for, on random data,
built for this machine (-march=native), for an AVX2 + FMA machine without AVX-512 (haswell) and for baseline
x86-64 (no AVX: the portable loops, bit-identical). Not bit-exact with vectors, so within float rounding."""

import platform
import shutil
import subprocess

import pytest

from slmc.kernels.registry import C_DIR

pytestmark = pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64") or not shutil.which("gcc"),
                                reason="x86-64 kernels, built with gcc")

HARNESS = r"""
#include "slmc_kernels.h"
#include <stdio.h>
#include <stdlib.h>
void slmc_linear_q8(float*,const int8_t*,const float*,const int8_t*,const float*,const float*,int,int,int,int);
void slmc_linear_q8_native(float*,const int8_t*,const float*,const int8_t*,const float*,const float*,int,int,int,int);
void slmc_linear_f32(float*,const float*,const float*,const float*,int,int,int);
void slmc_linear_f32_native(float*,const float*,const float*,const float*,int,int,int);
void slmc_linear_swiglu_f32(float*,const float*,const float*,const float*,const float*,int,int,int);
void slmc_linear_swiglu_f32_native(float*,const float*,const float*,const float*,const float*,int,int,int);
void slmc_attention_f32(float*,const float*,const float*,const float*,float*,int,int,int,int,int,int,float);
void slmc_attention_f32_native(float*,const float*,const float*,const float*,float*,int,int,int,int,int,int,float);
static float fr(void) { return rand() / (float)RAND_MAX - 0.5f; }
static double rel(const float *a, const float *b, int n) {  /* max |a - b| / max |a| */
    double e = 0, m = 1e-30;
    for (int i = 0; i < n; i++) { double d = fabs(a[i] - b[i]); e = d > e ? d : e; m = fabs(a[i]) > m ? fabs(a[i]) : m; }
    return e / m;
}
int main(void) {
    static const int mm[][3] = {{172, 13, 4}, {64, 16, 64}, {288, 9, 32}, {768, 24, 32}, {20, 3, 4}, {48, 5, 16}, {250, 5, 1}};
    double worst_q8 = 0, worst_f32 = 0, worst_att = 0;
    srand(1);
    for (int c = 0; c < 7; c++) {
        int k = mm[c][0], m = mm[c][1], g = mm[c][2], n = 3, ng = k / g;
        int8_t *x = malloc(n * k), *w = malloc(m * k);
        float *xs = malloc(4 * n * ng), *ws = malloc(4 * m * ng), *b = malloc(4 * m), *o1 = malloc(4 * n * m),
              *o2 = malloc(4 * n * m), *xf = malloc(4 * n * k), *wf = malloc(4 * m * k), *gt = malloc(4 * n * m);
        for (int i = 0; i < n * k; i++) x[i] = rand() % 255 - 127, xf[i] = fr();
        for (int i = 0; i < m * k; i++) w[i] = rand() % 255 - 127, wf[i] = fr();
        for (int i = 0; i < n * ng; i++) xs[i] = fr() + 0.6f;
        for (int i = 0; i < m * ng; i++) ws[i] = 0.01f * (fr() + 0.6f);
        for (int i = 0; i < m; i++) b[i] = fr();
        for (int i = 0; i < n * m; i++) gt[i] = 4 * fr();
        slmc_linear_q8(o1, x, xs, w, ws, b, n, k, m, g); slmc_linear_q8_native(o2, x, xs, w, ws, b, n, k, m, g);
        double e = rel(o1, o2, n * m); worst_q8 = e > worst_q8 ? e : worst_q8;
        slmc_linear_f32(o1, xf, wf, b, n, k, m); slmc_linear_f32_native(o2, xf, wf, b, n, k, m);
        e = rel(o1, o2, n * m); worst_f32 = e > worst_f32 ? e : worst_f32;
        slmc_linear_swiglu_f32(o1, xf, wf, b, gt, n, k, m); slmc_linear_swiglu_f32_native(o2, xf, wf, b, gt, n, k, m);
        e = rel(o1, o2, n * m); worst_f32 = e > worst_f32 ? e : worst_f32;
    }
    static const int aa[][6] = {{8, 4, 8, 37, 0, 1}, {6, 6, 48, 100, 0, 1}, {4, 2, 16, 50, 16, 3}, {2, 1, 12, 9, 0, 2}};
    for (int c = 0; c < 4; c++) {  /* heads, kv heads, head_dim, pos, window, rows */
        int nh = aa[c][0], nkv = aa[c][1], hd = aa[c][2], pos = aa[c][3], win = aa[c][4], n = aa[c][5], seq = pos + n;
        float *q = malloc(4 * n * nh * hd), *kc = malloc(4 * seq * nkv * hd), *vc = malloc(4 * seq * nkv * hd),
              *att = malloc(4 * seq), *o1 = malloc(4 * n * nh * hd), *o2 = malloc(4 * n * nh * hd);
        for (int i = 0; i < n * nh * hd; i++) q[i] = 3 * fr();
        for (int i = 0; i < seq * nkv * hd; i++) kc[i] = 3 * fr(), vc[i] = fr();
        slmc_attention_f32(o1, q, kc, vc, att, n, nh, nkv, hd, pos, win, 0.0f);
        slmc_attention_f32_native(o2, q, kc, vc, att, n, nh, nkv, hd, pos, win, 0.0f);
        double e = rel(o1, o2, n * nh * hd); worst_att = e > worst_att ? e : worst_att;
    }
    printf("%g %g %g\n", worst_q8, worst_f32, worst_att);
    return 0;
}
"""

FILES = ["linear_q8.c", "linear_q8_native.c", "linear_f32.c", "linear_f32_native.c", "linear_swiglu_f32.c",
         "linear_swiglu_f32_native.c", "attention_f32.c", "attention_f32_native.c"]


def _cpu_has(flag: str) -> bool:
    try:
        return flag in open("/proc/cpuinfo").read().split()
    except OSError:
        return False


@pytest.mark.parametrize("march", ["native", "haswell", "x86-64"])
def test_native_kernels_match_the_portable_ones(tmp_path, march):
    if march == "haswell" and not (_cpu_has("avx2") and _cpu_has("fma")):
        pytest.skip("this machine cannot run AVX2 code")
    (tmp_path / "h.c").write_text(HARNESS)
    exe = tmp_path / "h"
    subprocess.run(["gcc", "-O3", f"-march={march}", "-std=c99", "-ffp-contract=fast", "-fno-math-errno", "-w",
                    f"-I{C_DIR}", "-o", str(exe), str(tmp_path / "h.c"), *(str(C_DIR / f) for f in FILES), "-lm"],
                   check=True)
    q8, f32, att = (float(v) for v in subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split())
    if march == "x86-64":  # no AVX2: every native kernel takes the portable loop, bit-identical
        assert q8 == f32 == att == 0.0
    assert q8 < 1e-6 and f32 < 1e-5 and att < 1e-5, (q8, f32, att)  # measured: 2.5e-7, 3.3e-7, 3.8e-7


QUANTIZE = r"""
#include "slmc_kernels.h"
#include <stdio.h>
#include <stdlib.h>
void slmc_quantize_q8(int8_t *, float *, const float *, int, int, int);
void slmc_quantize_q8_native(int8_t *, float *, const float *, int, int, int);
int main(void) {
    static const int gs[] = {4, 8, 16, 32, 64, 6};
    int bad = 0;
    srand(2);
    for (int c = 0; c < 6; c++) {
        int g = gs[c], k = g * 12, n = 3;
        float *x = malloc(4 * n * k), *s1 = malloc(4 * n * k), *s2 = malloc(4 * n * k);
        int8_t *q1 = malloc(n * k), *q2 = malloc(n * k);
        for (int i = 0; i < n * k; i++) x[i] = (rand() / (float)RAND_MAX - 0.5f) * 10;
        for (int i = 0; i < g; i++) x[i] = 0;                                   /* an all-zero group */
        for (int i = g; i < 2 * g; i++) x[i] = (i % 2 ? 0.5f : -2.5f) + i % 3;  /* exact halves: scale 1 */
        x[g] = 127.0f;
        slmc_quantize_q8(q1, s1, x, n, k, g);
        slmc_quantize_q8_native(q2, s2, x, n, k, g);
        bad += memcmp(q1, q2, n * k) != 0 || memcmp(s1, s2, 4 * n * (k / g)) != 0;
    }
    printf("%d\n", bad);
    return 0;
}
"""


@pytest.mark.parametrize("march", ["native", "haswell", "x86-64"])
def test_native_quantizer_is_bit_identical(tmp_path, march):
    if march == "haswell" and not _cpu_has("avx2"):
        pytest.skip("this machine cannot run AVX2 code")
    (tmp_path / "q.c").write_text(QUANTIZE)
    exe = tmp_path / "q"
    subprocess.run(["gcc", "-O3", f"-march={march}", "-std=c99", "-ffp-contract=fast", "-fno-math-errno", "-w",
                    f"-I{C_DIR}", "-o", str(exe), str(tmp_path / "q.c"), str(C_DIR / "quantize_q8.c"),
                    str(C_DIR / "quantize_q8_native.c"), "-lm"], check=True)
    assert subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split() == ["0"]
