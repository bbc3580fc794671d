"""The C API an embedding application calls (model.h): slmc_decode and slmc_prefill refuse tokens, positions,
counts and NULL pointers they cannot take, with the SLMC_ERR_* codes, and a refused call changes nothing.
A small C program calls a host build of stories260K; its valid calls match the numpy reference."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import shared_path

pytestmark = pytest.mark.slow
SLMC = [sys.executable, "-m", "slmc.cli"]

# (call, the code it must return); toks = {1, 17, 42}, one row of logits per token
BAD = [
    ("slmc_decode(-1, 0, logits)", "SLMC_ERR_TOKEN"),
    ("slmc_decode(SLMC_VOCAB_SIZE, 0, logits)", "SLMC_ERR_TOKEN"),
    ("slmc_decode(INT_MIN, 0, logits)", "SLMC_ERR_TOKEN"),
    ("slmc_decode(1, -1, logits)", "SLMC_ERR_POS"),
    ("slmc_decode(1, SLMC_SEQ_LEN, logits)", "SLMC_ERR_POS"),
    ("slmc_decode(1, INT_MAX, logits)", "SLMC_ERR_POS"),
    ("slmc_decode(1, 0, NULL)", "SLMC_ERR_NULL"),
    ("slmc_prefill(NULL, 1, 0, logits)", "SLMC_ERR_NULL"),
    ("slmc_prefill(toks, 1, 0, NULL)", "SLMC_ERR_NULL"),
    ("slmc_prefill(toks, 0, 0, logits)", "SLMC_ERR_COUNT"),
    ("slmc_prefill(toks, -3, 0, logits)", "SLMC_ERR_COUNT"),
    ("slmc_prefill(toks, 1, -1, logits)", "SLMC_ERR_POS"),
    ("slmc_prefill(toks, 1, SLMC_SEQ_LEN, logits)", "SLMC_ERR_POS"),
    ("slmc_prefill(toks, 3, SLMC_SEQ_LEN - 2, logits)", "SLMC_ERR_POS"),
    ("slmc_prefill(toks, INT_MAX, 1, logits)", "SLMC_ERR_POS"),       # pos + n overflows int: still refused
    ("slmc_prefill(bad_last, 3, 0, logits)", "SLMC_ERR_TOKEN"),      # two good tokens first: not processed
    ("slmc_prefill(bad_neg, 3, 0, logits)", "SLMC_ERR_TOKEN"),
]

HARNESS = r"""
#include <limits.h>
#include <stdio.h>
#include "model.h"
static float logits[4 * SLMC_VOCAB_SIZE];

/* prompt 1 17 42 through slmc_prefill, then 99 through slmc_decode; with `hostile`, every refused call
   between the two (they must leave the KV cache as it was) */
static int run(int hostile, const char *path) {
    int32_t toks[3] = {1, 17, 42}, bad_last[3] = {7, 8, SLMC_VOCAB_SIZE}, bad_neg[3] = {7, -1, 8};
    (void)bad_last; (void)bad_neg;
    slmc_reset();
    if (slmc_prefill(toks, 3, 0, logits) != SLMC_OK) return 1;
    if (hostile) {
/*CALLS*/
    }
    if (slmc_decode(99, 3, logits + 3 * SLMC_VOCAB_SIZE) != SLMC_OK) return 1;
    FILE *f = fopen(path, "wb");
    fwrite(logits, sizeof(float), 4 * SLMC_VOCAB_SIZE, f);
    fclose(f);
    return slmc_decode(5, SLMC_SEQ_LEN - 1, logits) != SLMC_OK;  /* the last position is a valid one */
}

int main(void) {
    printf("codes %d %d %d %d %d\n", SLMC_OK, SLMC_ERR_TOKEN, SLMC_ERR_POS, SLMC_ERR_COUNT, SLMC_ERR_NULL);
    return run(1, "hostile.f32") || run(0, "clean.f32");
}
"""


def _build(out: Path) -> None:
    calls = "\n".join(f'        printf("%d %d\\n", {i}, {call});' for i, (call, _) in enumerate(BAD))
    (out / "harness.c").write_text(HARNESS.replace("/*CALLS*/", calls))
    srcs = ["harness.c", "model.c", "weights.S", *sorted(str(f.relative_to(out)) for f in (out / "kernels").glob("*.c"))]
    subprocess.run(["gcc", "-O2", "-std=c99", "-ffp-contract=off", "-Wall", "-Werror", "-Ikernels", "-I.", "-o", "h",
                    *srcs, "-lm"], cwd=out, check=True, capture_output=True)


@pytest.mark.parametrize("flags", [[], ["--seq", "0"], ["-q", "int8"]], ids=["fp32", "prefill_through_decode", "int8"])
def test_bad_arguments_get_error_codes_and_change_nothing(tmp_path: Path, flags: list[str]) -> None:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    ckpt = shared_path("models/stories260K/stories260K.bin")
    out = tmp_path / "p"
    subprocess.run([*SLMC, "compile", str(ckpt), "-o", str(out), *flags], check=True, capture_output=True)
    _build(out)
    r = subprocess.run(["./h"], cwd=out, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.split("\n")
    codes = dict(zip(["SLMC_OK", "SLMC_ERR_TOKEN", "SLMC_ERR_POS", "SLMC_ERR_COUNT", "SLMC_ERR_NULL"],
                     map(int, lines[0].split()[1:])))
    assert codes["SLMC_OK"] == 0 and len(set(codes.values())) == 5 and all(v < 0 for k, v in codes.items() if k != "SLMC_OK")
    got = [int(ln.split()[1]) for ln in lines[1:] if ln]
    assert got == [codes[want] for _, want in BAD], [c for (c, w), g in zip(BAD, got) if codes[w] != g]
    hostile, clean = (np.fromfile(out / f, np.float32).reshape(4, -1) for f in ("hostile.f32", "clean.f32"))
    assert np.array_equal(hostile, clean)        # the refused calls left the KV cache as it was
    if "int8" not in flags:
        from slmc.frontend import llama2c
        from slmc.frontend.logits import reference_logits

        want = reference_logits(llama2c.load(ckpt), [1, 17, 42, 99])
        assert np.abs(clean - want).max() < 1e-4


def test_the_generation_loop_refuses_more_prompt_ids_than_the_context(tmp_path: Path) -> None:
    """main_llm.c no longer cuts a prompt that does not fit: one `E` line, exit 2."""
    if shutil.which("gcc") is None or shutil.which("make") is None:
        pytest.skip("gcc and make are needed")
    out = tmp_path / "p"
    subprocess.run([*SLMC, "compile", str(shared_path("models/stories260K/stories260K.bin")), "-o", str(out),
                    "--context", "8"], check=True, capture_output=True)
    subprocess.run(["make", "-s"], cwd=out, check=True, capture_output=True)
    ok = subprocess.run(["./model", "-i", ",".join(["1"] * 8), "-n", "8"], cwd=out, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    r = subprocess.run(["./model", "-i", ",".join(["1"] * 9), "-n", "8"], cwd=out, capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("E more prompt ids than the context holds (8)")
