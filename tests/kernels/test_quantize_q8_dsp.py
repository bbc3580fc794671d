"""quantize_q8_dsp.c (the activation quantizer on the Cortex-M33: four-lane VMAXNM, one zero-scale test per group,
a straight-line path for groups of 4) against the numpy twin (quant/q8.py quantize_activations) and the portable
quantize_q8.c, built for the M33 and run under QEMU: groups of 4 (k = 172, stories260K's w2 input), 8, 12, 16, 32,
64, and 6 (not a multiple of 4: the portable loop), 1 and 3 rows, with an all-zero group, exact halves (roundf's
ties away from zero), negative zeros and a negative maximum."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from slmc.quant.q8 import quantize_activations

sys.path.append(str(Path(__file__).parent))
from emulated_kernels import run_harness  # noqa: E402  (beside the tests)

pytestmark = pytest.mark.slow

CASES = [(172, 4, 1), (172, 4, 3), (64, 8, 1), (96, 12, 3), (64, 16, 1), (128, 32, 3), (128, 64, 1), (192, 64, 3), (36, 6, 3)]


def data(k: int, g: int, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, k)) * 3).astype(np.float32)
    x[0, :g] = 0.0                                               # an all-zero group
    x[0, g:2 * g] = (np.arange(g) % 5 - 2) * np.float32(0.5)     # halves
    x[0, g] = np.float32(127.0)                                  # scale 1: x / scale lands on the .5 ties exactly
    x[-1, -g:] = -0.0
    x[-1, -2 * g] = np.float32(-9.0)                             # a negative maximum
    return x


def harness() -> str:
    src = ["#include <stdio.h>", "#include <stdint.h>",
           "void slmc_quantize_q8(int8_t *, float *, const float *, int, int, int);",
           "void slmc_quantize_q8_dsp(int8_t *, float *, const float *, int, int, int);",
           "static int8_t q[3 * 192]; static float s[3 * 192];",
           "static void out(const char *fn, int c, int nq, int ns) { printf(\"%d %s \", c, fn);"
           " for (int i = 0; i < nq; i++) printf(\"%02x\", (uint8_t)q[i]); printf(\" \");"
           " for (int i = 0; i < ns; i++) { uint32_t w; memcpy(&w, s + i, 4); printf(\"%08lx\", (unsigned long)w); }"
           " printf(\"\\n\"); }"]
    body = []
    for c, (k, g, n) in enumerate(CASES):
        words = ",".join(f"0x{int(w):08x}u" for w in data(k, g, n, c).ravel().view(np.uint32))
        src.append(f"static const uint32_t x{c}[] = {{{words}}};")
        for fn in ("slmc_quantize_q8", "slmc_quantize_q8_dsp"):
            body.append(f"    memset(q, 0x55, sizeof q); memset(s, 0x55, sizeof s);\n"
                        f"    {fn}(q, s, (const float *)(const void *)x{c}, {n}, {k}, {g});\n"
                        f"    out(\"{fn}\", {c}, {n * k}, {n * (k // g)});")
    return ("#include <string.h>\n" + "\n".join(src) + "\nint main(void) {\n" + "\n".join(body)
            + "\n    return 0;\n}\n")


def test_the_m33_quantizer_is_the_twin(tmp_path):
    out = run_harness("cortex-m33", tmp_path, harness(), ["quantize_q8.c", "quantize_q8_dsp.c"])
    seen = set()
    for ln in out.split("\n"):
        if not ln[:1].isdigit():
            continue
        c, fn, qh, sh = ln.split(" ")
        k, g, n = CASES[int(c)]
        q, s = quantize_activations(data(k, g, n, int(c)), g)
        assert qh == q.astype(np.int8).tobytes().hex(), f"case {CASES[int(c)]}: {fn}'s int8 values differ from the twin"
        assert sh == "".join(f"{int(w):08x}" for w in s.astype(np.float32).ravel().view(np.uint32)), \
            f"case {CASES[int(c)]}: {fn}'s scales differ from the twin"
        seen.add((int(c), fn))
    assert len(seen) == 2 * len(CASES)
