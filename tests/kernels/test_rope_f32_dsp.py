"""rope_f32_dsp.c (RoPE on the Cortex-M33: interleaved heads of 8 in registers) against a numpy twin (float32
products, then the difference and the sum, as rope_f32.c writes them) and rope_f32.c, built for the M33 and run
under QEMU: heads of 8 interleaved (the fast path) at a position over 1 and 3 rows, in place and not; heads of 8
in halves, heads of 16, and a partial rotation (rot 4 of 8), which take the portable loop."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest


sys.path.append(str(Path(__file__).parent))
from emulated_kernels import run_harness  # noqa: E402  (beside the tests)

pytestmark = pytest.mark.slow

# (rows n, features, head_dim, rot, pos, interleaved, in place)
CASES = [(1, 64, 8, 8, 5, 1, 0), (3, 32, 8, 8, 2, 1, 1), (2, 64, 8, 8, 0, 0, 0), (2, 32, 16, 16, 3, 1, 0),
         (2, 32, 8, 4, 1, 1, 1)]
SEQ = 8


def data(c: tuple, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n, feat, hd, rot, pos, inter, _ = c
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, feat)) * 3).astype(np.float32)
    ang = rng.uniform(-3, 3, (SEQ, rot // 2)).astype(np.float32)
    return x, np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)


def twin(c: tuple, seed: int) -> np.ndarray:
    n, feat, hd, rot, pos, inter, _ = c
    x, ct, st = data(c, seed)
    out = x.copy()
    half = rot // 2
    for s in range(n):
        cs, sn = ct[pos + s], st[pos + s]
        for h in range(0, feat, hd):
            for i in range(half):
                i0, i1 = (2 * i, 2 * i + 1) if inter else (i, i + half)
                v0, v1 = x[s, h + i0], x[s, h + i1]
                out[s, h + i0] = np.float32(v0 * cs[i]) - np.float32(v1 * sn[i])
                out[s, h + i1] = np.float32(v0 * sn[i]) + np.float32(v1 * cs[i])
    return out


def _arr(name: str, a: np.ndarray) -> str:
    return f"static uint32_t {name}[] = {{{','.join(f'0x{int(w):08x}u' for w in a.ravel().view(np.uint32))}}};"


def harness() -> str:
    src = ["#include <stdio.h>\n#include <stdint.h>\n#include <string.h>",
           "void slmc_rope_f32(float *, const float *, const float *, const float *, int, int, int, int, int, int);",
           "void slmc_rope_f32_dsp(float *, const float *, const float *, const float *, int, int, int, int, int, int);",
           "static uint32_t buf[256], xin[256];"]
    body = []
    for i, c in enumerate(CASES):
        n, feat, hd, rot, pos, inter, inplace = c
        x, ct, st = data(c, i)
        src += [_arr(f"x{i}", x), _arr(f"c{i}", ct), _arr(f"s{i}", st)]
        for fn in ("slmc_rope_f32", "slmc_rope_f32_dsp"):
            src_ptr = "(const float *)buf" if inplace else "(const float *)xin"
            body.append(f"    memcpy(buf, x{i}, sizeof x{i}); memcpy(xin, x{i}, sizeof x{i});\n"
                        f"    {fn}((float *)buf, {src_ptr}, (const float *)c{i}, (const float *)s{i}, {n}, {feat}, {hd}, "
                        f"{rot}, {pos}, {inter});\n"
                        f"    printf(\"{i} {fn} \"); for (int j = 0; j < {n * feat}; j++) printf(\"%08lx\", "
                        f"(unsigned long)buf[j]); printf(\"\\n\");")
    return "\n".join(src) + "\nint main(void) {\n" + "\n".join(body) + "\n    return 0;\n}\n"


def test_the_m33_rope_is_the_twin(tmp_path):
    out = run_harness("cortex-m33", tmp_path, harness(), ["rope_f32.c", "rope_f32_dsp.c"])
    seen = set()
    for ln in out.split("\n"):
        if not ln[:1].isdigit():
            continue
        i, fn, got = ln.split(" ")
        want = "".join(f"{int(w):08x}" for w in twin(CASES[int(i)], int(i)).ravel().view(np.uint32))
        assert got == want, f"case {CASES[int(i)]}: {fn} differs from the twin"
        seen.add((int(i), fn))
    assert len(seen) == 2 * len(CASES)
