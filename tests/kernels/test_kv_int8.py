"""The int8 KV cache (--kv-cache int8): kv_write_i8.c and attention_i8kv.c, and attention_i8kv_dsp.c (SXTB16/SMLAD)
on the Cortex-M33, bit for bit against their twin (reference/kv_int8.py) on the same inputs, built for the host
and run under QEMU on the M33 and RV32: grouped and plain heads, head_dim 6 (portable only), 8 and 16, a prompt
chunk at a position, a window, a soft-cap, a zero query, zero keys and an all-zero value head, scores far apart (the exp's
clamp), and 600 positions (integer weights under 32767 so the int32 sums cannot overflow); the DSP kernel's
paired-head path (head_dim 8, two query heads per KV head) from position 0, and four heads per KV head (its
other path); and the DSP kernel split in two ranges of KV heads as a --cores 2 build splits it
(slmc_attention_i8kv_dsp_heads, each range with its own scratch): the same bits as the twin; and the DSP kernel
writes nothing past the scratch the registry gives it (kernels/llm.py _i8kv_scratch; the paired-head path keeps
its int16 weights over the scores)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from slmc.kernels.registry import C_DIR
from slmc.reference import kv_int8
from slmc.targets import get_target

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Case:
    nh: int
    nkv: int
    hd: int
    seq: int
    pos: int
    n: int
    window: int = 0
    softcap: float = 0.0
    q_scale: float = 1.0
    zero: bool = False  # head 0's query, key rows 1-2 and every value of KV head 0 zero (no weights there)

    def data(self, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        rows, kv = self.pos + self.n, self.nkv * self.hd
        k = rng.standard_normal((rows, kv)).astype(np.float32) * np.float32(2.0)
        v = rng.standard_normal((rows, kv)).astype(np.float32)
        q = (rng.standard_normal((self.n, self.nh * self.hd)) * self.q_scale).astype(np.float32)
        if self.zero:
            q[:, :self.hd] = 0
            k[1:3, :self.hd] = 0
            v[:, :self.hd] = 0
        return q, k, v


CASES = [Case(8, 4, 8, 40, 17, 1), Case(6, 2, 8, 48, 5, 7), Case(4, 4, 16, 32, 9, 3, window=4),
         Case(6, 2, 8, 24, 3, 2, softcap=5.0), Case(3, 3, 6, 20, 4, 2), Case(2, 1, 12, 16, 6, 1, q_scale=300.0),
         Case(4, 2, 8, 16, 4, 2, zero=True), Case(2, 1, 4, 600, 599, 1),
         # attention_i8kv_dsp.c's head_dim-8 pair of query heads per KV head from position 0 (1, 2, 3 positions
         # seen); four query heads per KV head
         Case(8, 4, 8, 8, 0, 3), Case(8, 2, 8, 24, 10, 3)]


def twin(c: Case, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    q, k, v = c.data(seed)
    width = c.nkv * (c.hd + kv_int8.SCALE_BYTES)
    kc, vc = np.zeros((c.seq, width), np.int8), np.zeros((c.seq, width), np.int8)
    kv_int8.kv_write(kc, k, 0, c.hd)
    kv_int8.kv_write(vc, v, 0, c.hd)
    out = kv_int8.attention(q, kc, vc, c.pos, dict(n_heads=c.nh, n_kv_heads=c.nkv, head_dim=c.hd, window=c.window,
                                                   softcap=c.softcap))
    return kc, vc, out


def _arr(name: str, ctype: str, words: np.ndarray) -> str:
    body = ",".join(f"0x{int(w):08x}u" for w in words.ravel().view(np.uint32))
    return f"static const uint32_t {name}_bits[] = {{{body}}};\n#define {name} ((const {ctype} *)(const void *){name}_bits)\n"


def harness(dsp: bool) -> str:
    """A C program running every case (and the DSP kernel too where `dsp`): prints the caches' and the output's
    words in hex, one case per line."""
    src = ['#include <stdio.h>\n#include "slmc_kernels.h"',
           "void slmc_kv_write_i8(int8_t *cache, const float *x, int pos, int n, int n_kv_heads, int hd);",
           "void slmc_attention_i8kv(float *, const float *, const int8_t *, const int8_t *, float *, int, int, int, "
           "int, int, int, float);",
           "void slmc_attention_i8kv_dsp(float *, const float *, const int8_t *, const int8_t *, float *, int, int, "
           "int, int, int, int, float);",
           "void slmc_attention_i8kv_dsp_heads(float *, const float *, const int8_t *, const int8_t *, float *, int, int, "
           "int, int, int, int, float, int, int);",
           "static uint32_t kc[600 * 16], vc[600 * 16], att[4096], att2[4096], out[1024];",
           "static void dump(const uint32_t *w, int n) { for (int i = 0; i < n; i++) printf(\"%08lx\", "
           "(unsigned long)w[i]); }",
           "static void bytes(const void *p, int n) { for (int i = 0; i < n; i++) printf(\"%02x\", "
           "((const uint8_t *)p)[i]); }"]
    body = []
    for i, c in enumerate(CASES):
        q, k, v = c.data(i)
        src += [_arr(f"q{i}", "float", q), _arr(f"k{i}", "float", k), _arr(f"v{i}", "float", v)]
        size = c.seq * c.nkv * (c.hd + kv_int8.SCALE_BYTES)
        call = (f"((float *)out, q{i}, (const int8_t *)kc, (const int8_t *)vc, (float *)att, {c.n}, {c.nh}, {c.nkv}, {c.hd}, "
                f"{c.pos}, {c.window}, {c.softcap!r}f);")
        kernels = ["slmc_attention_i8kv"] + (["slmc_attention_i8kv_dsp", "split"] if dsp and c.hd % 4 == 0 else [])
        split = c.nkv // 2 if c.nkv > 1 else 1  # KV heads 0..split-1 on one "core", the rest on the other
        halves = (f"slmc_attention_i8kv_dsp_heads{call[:-2]}, 0, {split});\n    "
                  f"slmc_attention_i8kv_dsp_heads{call[:-2].replace('(float *)att', '(float *)att2')}, {split}, {c.nkv});")
        words = _scratch_bytes(c, "dsp") // 4  # the registry's scratch: what the DSP kernel may write, no more
        for fn in kernels:
            guard = (f"    for (int j = {words}; j < 4096; j++) att[j] = 0xa5a5a5a5u;\n"
                     if fn == "slmc_attention_i8kv_dsp" else "")
            check = (f"    for (int j = {words}; j < 4096; j++) if (att[j] != 0xa5a5a5a5u) printf(\"overflow \");\n"
                     if fn == "slmc_attention_i8kv_dsp" else "")
            body.append(f"    memset(kc, 0, sizeof kc); memset(vc, 0, sizeof vc); memset(out, 0xff, sizeof out);\n"
                        f"    slmc_kv_write_i8((int8_t *)kc, k{i}, 0, {c.pos + c.n}, {c.nkv}, {c.hd});\n"
                        f"    slmc_kv_write_i8((int8_t *)vc, v{i}, 0, {c.pos + c.n}, {c.nkv}, {c.hd});\n"
                        + guard + (f"    {halves}\n" if fn == "split" else f"    {fn}{call}\n") + check +
                        f"    printf(\"{i} {fn} \"); bytes(kc, {size}); printf(\" \"); bytes(vc, {size}); printf(\" \");\n"
                        f"    dump(out, {c.n * c.nh * c.hd}); printf(\"\\n\");")
    return "\n".join(src) + "\nint main(void) {\n" + "\n".join(body) + "\n    return 0;\n}\n"


def _scratch_bytes(c: Case, isa: str) -> int:
    from types import SimpleNamespace

    from slmc.kernels.llm import _i8kv_scratch

    node = SimpleNamespace(attrs=dict(n_heads=c.nh, n_kv_heads=c.nkv, head_dim=c.hd, softcap=c.softcap),
                           inputs=[None, SimpleNamespace(shape=(c.seq,))])
    return _i8kv_scratch(node, isa)  # type: ignore[arg-type]


def expected() -> dict[int, str]:
    want = {}
    for i, c in enumerate(CASES):
        kc, vc, out = twin(c, i)
        want[i] = " ".join([kc.tobytes().hex(), vc.tobytes().hex(), "".join(f"{int(w):08x}" for w in out.view(np.uint32).ravel())])
    return want


def check(lines: list[str], dsp: bool) -> None:
    want, seen = expected(), set()
    for ln in lines:
        i, fn, rest = ln.split(" ", 2)
        assert rest == want[int(i)], f"case {i} ({CASES[int(i)]}) differs from the twin in {fn}"
        seen.add((int(i), fn))
    assert len(seen) == len(CASES) + (2 * sum(c.hd % 4 == 0 for c in CASES) if dsp else 0)


def _files(tmp: Path, dsp: bool) -> list[str]:
    (tmp / "h.c").write_text(harness(dsp))
    return [str(tmp / "h.c"), str(C_DIR / "kv_write_i8.c"), str(C_DIR / "attention_i8kv.c")] + \
        ([str(C_DIR / "attention_i8kv_dsp.c"), str(C_DIR / "attention_i8kv_dsp_pair.c")] if dsp else [])


def test_the_twin_is_the_host_build(tmp_path):
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    exe = tmp_path / "h"
    subprocess.run(["gcc", *get_target("host").cflags, f"-I{C_DIR}", "-o", str(exe), *_files(tmp_path, False), "-lm"],
                   check=True)
    check(subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split("\n")[:-1], False)


@pytest.mark.parametrize("target", ["cortex-m33", "rv32imac"])
def test_the_twin_is_the_emulated_build(tmp_path, target):
    from slmc.toolchain.qemu import qemu_command

    t = get_target(target)
    if shutil.which(t.cc) is None or shutil.which(t.emulator.qemu[0]) is None:  # type: ignore[union-attr]
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{t.cc} or QEMU not installed")
        pytest.skip(f"{t.cc} or QEMU not installed (`make toolchains`)")
    dsp = "dsp" in t.features
    mem = [f"-Wl,--defsym=__flash=0x{t.flash.origin:x}", f"-Wl,--defsym=__flash_size={t.flash.size}",  # type: ignore[union-attr]
           f"-Wl,--defsym=__ram=0x{t.sram.origin:x}", f"-Wl,--defsym=__ram_size={t.sram.size}",  # type: ignore[union-attr]
           f"-Wl,--defsym=__stack_size={t.stack_bytes}", "-Tpicolibc.ld"]
    elf = tmp_path / "h.elf"
    subprocess.run([t.cc, *t.cflags, *t.cflags_for("dsp"), f"-I{C_DIR}", "-o", str(elf), *_files(tmp_path, dsp),
                    *t.ldflags, *mem], check=True)
    r = subprocess.run(qemu_command(t, elf, []), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = [ln for ln in (r.stdout + r.stderr).split("\n") if ln[:1].isdigit()]
    check(lines, dsp)
