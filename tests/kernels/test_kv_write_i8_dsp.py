"""kv_write_i8_dsp.c (the int8 KV cache's write on the Cortex-M33: head_dim 8 in asm) against the twin
(reference/kv_int8.py kv_write) and the portable kv_write_i8.c, built for the M33 and run under QEMU: head_dim 8
(the asm), 16 and 6 (the portable loop), several rows at a position, an all-zero head (scale 0), exact halves
(the magic-number rounding's ties to even) and a negative maximum."""

from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest

from slmc.kernels.registry import C_DIR
from slmc.reference import kv_int8
from slmc.targets import get_target

pytestmark = pytest.mark.slow

CASES = [(4, 8, 3, 2), (1, 8, 0, 1), (2, 16, 5, 3), (3, 6, 1, 2)]  # (n_kv_heads, head_dim, pos, rows)
SEQ = 8


def data(nkv: int, hd: int, rows: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((rows, nkv * hd)) * 2).astype(np.float32)
    x[0, :hd] = 0.0                                                   # an all-zero head
    x[-1, -hd:] = (np.arange(hd) % 5 - 2) * np.float32(0.5)           # halves: x / scale on .5 ties
    x[-1, -hd] = np.float32(-127.0)                                   # a negative maximum, scale 1
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
        size = SEQ * nkv * (hd + 4)
        for fn in ("slmc_kv_write_i8", "slmc_kv_write_i8_dsp"):
            body.append(f"    memset(cache, 0, sizeof cache);\n"
                        f"    {fn}((int8_t *)cache, (const float *)(const void *)x{c}, {pos}, {rows}, {nkv}, {hd});\n"
                        f"    printf(\"{c} {fn} \"); for (int i = 0; i < {size}; i++) printf(\"%02x\", "
                        f"((const uint8_t *)cache)[i]); printf(\"\\n\");")
    return "\n".join(src) + "\nint main(void) {\n" + "\n".join(body) + "\n    return 0;\n}\n"


def test_the_m33_cache_write_is_the_twin(tmp_path):
    from slmc.toolchain.qemu import qemu_command

    t = get_target("cortex-m33")
    if shutil.which(t.cc) is None or shutil.which(t.emulator.qemu[0]) is None:  # type: ignore[union-attr]
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{t.cc} or QEMU not installed")
        pytest.skip(f"{t.cc} or QEMU not installed (`make toolchains`)")
    mem = [f"-Wl,--defsym=__flash=0x{t.flash.origin:x}", f"-Wl,--defsym=__flash_size={t.flash.size}",  # type: ignore[union-attr]
           f"-Wl,--defsym=__ram=0x{t.sram.origin:x}", f"-Wl,--defsym=__ram_size={t.sram.size}",  # type: ignore[union-attr]
           f"-Wl,--defsym=__stack_size={t.stack_bytes}", "-Tpicolibc.ld"]
    (tmp_path / "k.c").write_text(harness())
    elf = tmp_path / "k.elf"
    subprocess.run([t.cc, *t.cflags, *t.cflags_for("dsp"), f"-I{C_DIR}", "-o", str(elf), str(tmp_path / "k.c"),
                    str(C_DIR / "kv_write_i8.c"), str(C_DIR / "kv_write_i8_dsp.c"), *t.ldflags, *mem], check=True)
    r = subprocess.run(qemu_command(t, elf, []), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    seen = set()
    for ln in (r.stdout + r.stderr).split("\n"):
        if not ln[:1].isdigit():
            continue
        c, fn, got = ln.split(" ")
        nkv, hd, pos, rows = CASES[int(c)]
        want = np.zeros((SEQ, nkv * (hd + 4)), np.int8)
        kv_int8.kv_write(want, data(nkv, hd, rows, int(c)), pos, hd)
        assert got == want.tobytes().hex(), f"case {CASES[int(c)]}: {fn}'s cache differs from the twin"
        seen.add((int(c), fn))
    assert len(seen) == 2 * len(CASES)
