"""kv_write_i8_dsp.c (the int8 KV cache's write on the Cortex-M33: head_dim 8 in asm) against the twin
(reference/kv_int8.py kv_write) and the portable kv_write_i8.c, built for the M33 and run under QEMU: head_dim 8
(the asm), 16 and 6 (the portable loop), several rows at a position, an all-zero head (scale 0), exact halves
(the magic-number rounding's ties to even), a negative maximum and a scale below 2^-14 (a subnormal binary16)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from slmc.reference import kv_int8

sys.path.append(str(Path(__file__).parent))
from emulated_kernels import run_harness  # noqa: E402  (beside the tests)

pytestmark = pytest.mark.slow

CASES = [(4, 8, 3, 2), (1, 8, 0, 1), (2, 16, 5, 3), (3, 6, 1, 2)]  # (n_kv_heads, head_dim, pos, rows)
SEQ = 8


def data(nkv: int, hd: int, rows: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((rows, nkv * hd)) * 2).astype(np.float32)
    x[0, :hd] = 0.0                                                   # an all-zero head
    x[-1, -hd:] = (np.arange(hd) % 5 - 2) * np.float32(0.5)           # halves: x / scale on .5 ties
    x[-1, -hd] = np.float32(-127.0)                                   # a negative maximum, scale 1
    if nkv > 1:
        x[-1, :hd] *= np.float32(3e-5)                                # a scale below 2^-14: a subnormal binary16
    return x


def harness() -> str:
    src = ["#include <stdio.h>\n#include <string.h>\n#include <stdint.h>",
           "void slmc_kv_write_i8(int8_t *cache, const float *x, int pos, int n, int n_kv_heads, int hd);",
           "void slmc_kv_write_i8_dsp(int8_t *cache, const float *x, int pos, int n, int n_kv_heads, int hd);",
           f"static uint32_t cache[{SEQ} * 4 * 20 / 4];"]
    body = []
    for c, (nkv, hd, pos, rows) in enumerate(CASES):
        words = ",".join(f"0x{int(w):08x}u" for w in data(nkv, hd, rows, c).ravel().view(np.uint32))
        src.append(f"static const uint32_t x{c}[] = {{{words}}};")
        size = SEQ * nkv * (hd + kv_int8.SCALE_BYTES)
        for fn in ("slmc_kv_write_i8", "slmc_kv_write_i8_dsp"):
            body.append(f"    memset(cache, 0, sizeof cache);\n"
                        f"    {fn}((int8_t *)cache, (const float *)(const void *)x{c}, {pos}, {rows}, {nkv}, {hd});\n"
                        f"    printf(\"{c} {fn} \"); for (int i = 0; i < {size}; i++) printf(\"%02x\", "
                        f"((const uint8_t *)cache)[i]); printf(\"\\n\");")
    return "\n".join(src) + "\nint main(void) {\n" + "\n".join(body) + "\n    return 0;\n}\n"


def test_the_m33_cache_write_is_the_twin(tmp_path):
    out = run_harness("cortex-m33", tmp_path, harness(), ["kv_write_i8.c", "kv_write_i8_dsp.c"])
    seen = set()
    for ln in out.split("\n"):
        if not ln[:1].isdigit():
            continue
        c, fn, got = ln.split(" ")
        nkv, hd, pos, rows = CASES[int(c)]
        want = np.zeros((SEQ, nkv * (hd + kv_int8.SCALE_BYTES)), np.int8)
        kv_int8.kv_write(want, data(nkv, hd, rows, int(c)), pos, hd)
        assert got == want.tobytes().hex(), f"case {CASES[int(c)]}: {fn}'s cache differs from the twin"
        seen.add((int(c), fn))
    assert len(seen) == 2 * len(CASES)
