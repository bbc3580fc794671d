"""attention_f32_x86.c (x86-64 host builds, batched and unbatched) against attention_f32.c, bit for bit: head sizes
3 to 128 (multiples of 16 and 8, and neither), grouped-query heads, 1 to 4 rows at positions 0 to 79, sliding
windows, soft-capping (which it hands to attention_f32.c), signed zeros, scores that overflow to inf and NaN, and
the output written over the queries (its overlap contract). Each path the CPU has, then the next down
(SLMC_NO_AVX512, SLMC_NO_AVX2, SLMC_NO_SSE2: a path the CPU lacks falls through to the next one). attention_f32.c is
the operator's numpy twin's C (tests/kernels/test_llm_kernels_host.py compares the host builds, which bind this
kernel, with the numpy reference)."""

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
void slmc_attention_f32(float *out, const float *q, const float *kc, const float *vc, float *att, int n, int n_heads, int n_kv_heads, int hd, int pos, int window, float softcap);
void slmc_attention_f32_x86(float *out, const float *q, const float *kc, const float *vc, float *att, int n, int n_heads, int n_kv_heads, int hd, int pos, int window, float softcap);
#define SEQ 80
static float K[SEQ * 512], V[SEQ * 512], Q[4 * 1024], O1[4 * 1024], O2[4 * 1024], A1[SEQ + 8], A2[SEQ + 8];
static float rnd(int kind) {
    float v = (float)(rand() % 20001 - 10000) * (kind == 1 ? 1e-1f : kind == 2 ? 3e-3f : 1e-4f);
    if (kind == 3 && rand() % 13 == 0) v = rand() % 2 ? -0.0f : 0.0f;
    if (kind == 4 && rand() % 50 == 0) v = 1e30f;
    return v;
}
int main(void) {
    int hds[] = {48, 8, 64, 6, 17, 16, 32, 80, 3, 128};
    int bad = 0, cases = 0;
    srand(7);
    for (int c = 0; c < 3000; c++) {
        int hd = hds[c % 10], nkv = 1 + rand() % 3, kvmul = 1 + rand() % 3, nh = nkv * kvmul;
        if (nh * hd > 1024 || nkv * hd > 512) { nkv = 1; kvmul = 2; nh = 2; }
        int n = 1 + rand() % 4, pos = rand() % (SEQ - n), kind = c % 5;
        int window = c % 7 == 0 ? 1 + rand() % 20 : 0;
        float softcap = c % 23 == 0 ? 30.0f : 0.0f;
        int kv_dim = nkv * hd;
        for (int i = 0; i < SEQ * kv_dim; i++) { K[i] = rnd(kind); V[i] = rnd(kind); }
        for (int i = 0; i < n * nh * hd; i++) Q[i] = rnd(kind);
        memset(O1, 0x55, sizeof O1); memset(O2, 0x55, sizeof O2);
        slmc_attention_f32(O1, Q, K, V, A1, n, nh, nkv, hd, pos, window, softcap);
        slmc_attention_f32_x86(O2, Q, K, V, A2, n, nh, nkv, hd, pos, window, softcap);
        if (memcmp(O1, O2, sizeof O1)) { bad++; if (bad < 5) printf("differs: hd=%d nh=%d nkv=%d n=%d pos=%d kind=%d window=%d\n", hd, nh, nkv, n, pos, kind, window); }
        /* in place: out over q */
        memcpy(O2, Q, sizeof Q);
        slmc_attention_f32_x86(O2, O2, K, V, A2, n, nh, nkv, hd, pos, window, softcap);
        if (memcmp(O1, O2, sizeof(float) * n * nh * hd)) { bad++; if (bad < 5) printf("in place differs: hd=%d\n", hd); }
        cases++;
    }
    printf("cases %d bad %d\n", cases, bad);
    return bad != 0;
}
"""


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="an x86-64 kernel")
@pytest.mark.parametrize("env", [{}, {"SLMC_NO_AVX512": "1"}, {"SLMC_NO_AVX2": "1"},
                                 {"SLMC_NO_AVX2": "1", "SLMC_NO_SSE2": "1"}], ids=["avx512", "avx2", "sse2", "plain"])
def test_attention_f32_x86_is_bit_identical_to_attention_f32(tmp_path, env):
    out = run_host_harness(tmp_path, HARNESS, ["attention_f32.c", "attention_f32_x86.c"], env)
    assert "cases 3000 bad 0" in out, out


def test_host_q8_builds_bind_it():
    """the default x86-64 host target binds it for the fp32 cache's attention, batched (per row) and unbatched"""
    from slmc.kernels.registry import REGISTRY

    names = {(k.op, k.c_file, k.isa) for k in REGISTRY}
    assert ("attention", "attention_f32_x86.c", "sse2") in names
    assert ("attention_rows", "attention_f32_x86.c", "sse2") in names
