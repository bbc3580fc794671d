"""linear_q8_rv32.c's integer rescale (q8_rescale_rows: val += ((float)a * ws) * xs with IEEE binary32
rounding, and the final + bias / + 0.0f) built with the host gcc and compared bit for bit with the host's
float arithmetic (what the soft-float library computes on RV32) over tens of millions of seeded cases:
realistic scales, wild bit patterns, zeros, subnormals, infinities, NaNs, |a| up to 2^24 and beyond."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from slmc.kernels.registry import C_DIR

HARNESS = r"""
#define SLMC_Q8_RESCALE_ONLY
#include "linear_q8_rv32.c"
#include <stdio.h>
#include <stdlib.h>
static uint64_t st = 88172645463325252ull;
static uint32_t rnd(void) { st ^= st << 13; st ^= st >> 7; st ^= st << 17; return (uint32_t)st; }
static float rf(void) {
    uint32_t r = rnd();
    if ((r & 15) == 0) return q8_u2f(rnd());                        /* any bits: nan, inf, negative, tiny */
    if ((r & 255) == 16) return 0.0f;
    uint32_t e = 100 + rnd() % 40;                                  /* the usual scales, 2^-27 .. 2^12 */
    if ((r & 255) == 1) e = 1 + rnd() % 8;
    if ((r & 255) == 2) e = 225 + rnd() % 30;
    return q8_u2f((e << 23) | (rnd() & 0x7fffff));
}
int main(int argc, char **argv) {
    long n = atol(argv[1]), bad = 0;
    for (long i = 0; i < n; i++) {
        uint32_t r = rnd();
        int32_t a = (int32_t)(rnd() >> (r % 32));
        if (r & 32) a = -a;
        if ((r & 0x3c0) == 0) a = (int32_t)(rnd() % 5) - 2;
        if ((r & 0x3c00) == 0) a = (int32_t)((rnd() & 0xffffff) | 0xff0000) * ((r >> 20 & 1) ? -1 : 1);
        float ws = rf(), xs = rf(), v = ((r >> 14) & 3) ? rf() * (r & (1 << 16) ? -1.0f : 1.0f) : 0.0f;
        int first = (r >> 17) & 1;
        if (first) v = 0.0f;
        volatile float wsv = ws, xsv = xs, vv = v, bias = rf();
        float want = vv + ((float)a * wsv) * xsv, got = v;
        q8_rescale_rows(&got, &a, &ws, 1, xs, 1, first);
        if (q8_f2u(want) != q8_f2u(got) && !(want != want && got != got)) {
            if (bad++ < 8) printf("a=%d ws=%08x xs=%08x v=%08x first=%d: want %08x got %08x\n", (int)a, q8_f2u(ws),
                                  q8_f2u(xs), q8_f2u(v), first, q8_f2u(want), q8_f2u(got));
        }
        float wb = want + bias, gb = q8_fadd(got, bias), w0 = want + 0.0f, g0 = q8_plus_zero(got);
        if ((q8_f2u(wb) != q8_f2u(gb) && !(wb != wb && gb != gb)) || (q8_f2u(w0) != q8_f2u(g0) && !(w0 != w0)))
            bad++;
    }
    printf("%ld of %ld differ\n", bad, n);
    return bad != 0;
}
"""


def test_the_rv32_rescale_is_bit_exact(tmp_path):
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    (tmp_path / "h.c").write_text(HARNESS)
    exe = tmp_path / "h"
    subprocess.run(["gcc", "-O2", "-std=c99", "-ffp-contract=off", f"-I{C_DIR}", "-o", str(exe), str(tmp_path / "h.c")],
                   check=True)
    r = subprocess.run([str(exe), "20000000"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout
