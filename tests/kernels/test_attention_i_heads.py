"""attention_i.c (-q int8's integer attention) split by query heads as a --cores 2 build splits it
(slmc_attention_i_heads on two ranges of heads, each with its own scratch, parallel_attention_i.c), and whole,
bit for bit against its numpy twin (reference/int_llm_ops.py attention_i) under QEMU on RV32 and the M33:
head_dim 8 and 16 (the unrolled fast paths) and 12 (the general one), grouped heads, a prompt chunk, a window."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.append(str(Path(__file__).parent))
from emulated_kernels import run_harness  # noqa: E402  (beside the tests)
from slmc.passes.quantize_int8 import attention_attrs  # noqa: E402
from slmc.quant import int8 as q8i  # noqa: E402
from slmc.reference.int_llm_ops import attention_i  # noqa: E402

pytestmark = pytest.mark.slow

# (n_heads, n_kv_heads, head_dim, seq_len, pos, n, window)
CASES = [(8, 4, 8, 48, 37, 1, 0), (6, 2, 16, 24, 5, 3, 0), (4, 2, 12, 20, 9, 2, 0), (4, 4, 8, 32, 20, 2, 6)]


def _case(i: int, c: tuple) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray]:
    nh, nkv, hd, seq, pos, n, window = c
    rng = np.random.default_rng(100 + i)
    attrs = dict(attention_attrs(hd, 10, 12, window=window, seq_len=seq), n_heads=nh, n_kv_heads=nkv)
    q = np.clip(rng.standard_normal((n, nh * hd)) * 2 ** 10, -32768, 32767).astype(np.int16)
    k = np.clip(rng.standard_normal((seq, nkv * hd)) * 2 ** 10, -32768, 32767).astype(np.int16)
    v = np.clip(rng.standard_normal((seq, nkv * hd)) * 2 ** 12, -32768, 32767).astype(np.int16)
    return attrs, q, k, v


def _arr(name: str, a: np.ndarray, ctype: str) -> str:
    return f"static const {ctype} {name}[] = {{{','.join(str(int(x)) for x in a.ravel())}}};"


def harness() -> str:
    src = ['#include <stdio.h>\n#include "slmc_kernels.h"',
           "void slmc_attention_i(int16_t *, const int16_t *, const int16_t *, const int16_t *, void *, const int32_t *, "
           "int, int, int, int, int, int, int64_t, int, int64_t, int, int, int, int, int, const int32_t *, int64_t, int, "
           "int64_t, int, int);",
           "void slmc_attention_i_heads(int16_t *, const int16_t *, const int16_t *, const int16_t *, void *, "
           "const int32_t *, int, int, int, int, int, int, int64_t, int, int64_t, int, int, int, int, int, "
           "const int32_t *, int64_t, int, int64_t, int, int, int, int);",
           _arr("lut", q8i.EXP2_LUT, "int32_t"),
           "static int32_t s0[1024], s1[1024];\nstatic int16_t out[512];"]
    body = []
    for i, c in enumerate(CASES):
        nh, nkv, hd, seq, pos, n, window = c
        a, q, k, v = _case(i, c)
        src += [_arr(f"q{i}", q, "int16_t"), _arr(f"k{i}", k, "int16_t"), _arr(f"v{i}", v, "int16_t")]
        args = (f"out, q{i}, k{i}, v{i}, {{s}}, lut, {n}, {nh}, {nkv}, {hd}, {pos}, {seq}, (int64_t){a['c']}LL, "
                f"{a['t_shift']}, (int64_t){a['t_cap']}LL, {a['q_shift']}, {a['q_max']}, {a['f_out']}, {a['f_v']}, "
                f"{window}, NULL, 0, 0, 0, 0, 0")
        half = nh // 2
        for kind, calls in (("whole", [f"slmc_attention_i({args.format(s='s0')});"]),
                            ("split", [f"slmc_attention_i_heads({args.format(s='s0')}, 0, {half});",
                                       f"slmc_attention_i_heads({args.format(s='s1')}, {half}, {nh});"])):
            body.append("    for (int j = 0; j < 512; j++) out[j] = 0x5555;\n    " + "\n    ".join(calls)
                        + f'\n    printf("{i} {kind}"); for (int j = 0; j < {n * nh * hd}; j++) printf(" %d", out[j]); '
                        'printf("\\n");')
    return "\n".join(src) + "\nint main(void) {\n" + "\n".join(body) + "\n    return 0;\n}\n"


@pytest.mark.parametrize("target", ["rv32imac", "cortex-m33"])
def test_heads_split_is_the_twin(tmp_path, target):
    out = run_harness(target, tmp_path, harness(), ["attention_i.c"])
    got = {tuple(ln.split()[:2]): [int(x) for x in ln.split()[2:]] for ln in out.splitlines() if ln[:1].isdigit()}
    for i, c in enumerate(CASES):
        a, q, k, v = _case(i, c)
        want = attention_i([q, k, v, np.array([c[4]], np.int32), q8i.EXP2_LUT], a)[0].ravel().tolist()
        for kind in ("whole", "split"):
            assert got[(str(i), kind)] == want, f"case {i} {c} ({kind}) differs from the twin"
