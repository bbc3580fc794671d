"""slmc_step_rows (issue 19): rows whose logits nobody reads skip the final norm and the classifier.

A batched step's rows that are not sampled (a prompt chunk's rows before the prompt's last) still advance their
sequence but ask for no logits; the nodes after the blocks that only make logits are found from the graph
(passes/batch.py logits_tail) and run over the wanted rows alone, moved to the front in order. Checked: the
wanted rows' logits are bit-identical to what the all-rows call (slmc_step) writes for them, over a schedule
of prompt chunks, decode rows and masks (host, fp32 / q8 / int8, a C harness against the unmodified call), and
every sequence's ids with long prompt chunks (10-30 tokens) are its single run's: host fp32 / q8 / int8, q8 on
the Cortex-M33 and int8 on RV32 under QEMU.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import run_slmc

sys.path.append(str(Path(__file__).parent))
from test_batch import _compile, _model  # noqa: E402  (beside the tests)

ROWS = 4
VOCAB = 512


def _prompts(lengths: list[int], seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [",".join(["1", *map(str, rng.integers(2, VOCAB, n - 1))]) for n in lengths]


def _alone(project: Path, ids: str, steps: int) -> list[int]:
    r = run_slmc("run", project, "--prompt-ids", ids, "--steps", steps, "--ids")
    assert r.returncode == 0, r.stderr
    return [int(x) for x in r.stdout.split()]


def test_tail_is_found_from_the_graph():
    """The final norm (and its quantizer) and the classifier, for each numerics; the rows they read from before
    them are the last block's residual stream. A node of a block ends the tail: only what comes after it skips."""
    from slmc.frontend.build import build_float_graph, build_step_graph
    from slmc.frontend.calibrate import formats_for
    from slmc.frontend.load import load_model
    from slmc.passes import batch, quantize_int8

    m = load_model(_model())
    want = {"fp32": ["rmsnorm", "linear"], "q8": ["rmsnorm", "quantize_q8", "linear_q8"],
            "int8": ["rmsnorm_i", "linear_i8"]}
    for numerics, ops in want.items():
        g = (quantize_int8.run(build_float_graph(m, ROWS), formats_for(m), "") if numerics == "int8"
             else build_step_graph(m, ROWS, numerics))
        bg = batch.run(g, ROWS)
        tail, reads = batch.logits_tail(bg)
        assert [n.op for n in tail] == ops, numerics
        assert tail[-1].outputs[0] is bg.outputs[0]
        assert [v.name for v in reads] == [f"layers.{m.config.n_layers - 1}.x_ffn"]
        tail[0].layer = 0  # as if the final norm were a block's: it runs every row, the nodes after it may not
        assert [n.op for n in batch.logits_tail(bg)[0]] == ops[1:]
        tail[-1].layer = 0
        assert batch.logits_tail(bg) == ([], [])


def _schedule(seed: int = 3) -> tuple[list[list[tuple[int, int, int]]], list[list[int]]]:
    """Steps of rows (token, position, slot): prompt chunks of several rows and single rows of four sequences,
    as a scheduler mixes them, and a want mask per step (all, none, one, random)."""
    rng = np.random.default_rng(seed)
    pos = [0] * ROWS
    steps, masks = [], []
    for k in range(14):
        rows: list[tuple[int, int, int]] = []
        for slot in rng.permutation(ROWS):
            c = int(rng.integers(1, ROWS - len(rows) + 1)) if len(rows) < ROWS else 0
            rows += [(int(rng.integers(1, VOCAB)), pos[slot] + j, int(slot)) for j in range(c)]
            pos[slot] += c
        n = len(rows)
        mask = [1] * n if k == 0 else [0] * n if k == 1 else [int(j == n - 1) for j in range(n)] if k == 2 \
            else [int(x) for x in rng.integers(0, 2, n)]
        steps.append(rows)
        masks.append(mask)
    return steps, masks


HARNESS = r"""
#include <stdio.h>
#include <string.h>
#include "model.h"
#define STEPS %(steps)d
static const int n_rows[STEPS] = {%(n)s};
static const int tok[STEPS][SLMC_ROWS] = {%(tok)s}, ps[STEPS][SLMC_ROWS] = {%(pos)s}, sl[STEPS][SLMC_ROWS] = {%(slot)s};
static const unsigned char want[STEPS][SLMC_ROWS] = {%(want)s};
static float ref[STEPS][SLMC_ROWS][SLMC_VOCAB_SIZE], got[SLMC_ROWS * SLMC_VOCAB_SIZE];
int main(void) {
    slmc_reset();
    for (int k = 0; k < STEPS; k++)
        if (slmc_step(tok[k], ps[k], sl[k], n_rows[k], &ref[k][0][0]) != SLMC_OK) return 3;
    slmc_reset();
    int compared = 0, differ = 0, skipped = 0;
    for (int k = 0; k < STEPS; k++) {
        memset(got, 0xff, sizeof got);
        if (slmc_step_rows(tok[k], ps[k], sl[k], n_rows[k], want[k], got) != SLMC_OK) return 4;
        int j = 0;
        for (int i = 0; i < n_rows[k]; i++) {
            if (!want[k][i]) { skipped++; continue; }
            differ += memcmp(&got[(size_t)j * SLMC_VOCAB_SIZE], ref[k][i], sizeof ref[k][i]) != 0;
            compared++;
            j++;
        }
        for (size_t x = (size_t)j * SLMC_VOCAB_SIZE; x < sizeof got / sizeof got[0]; x++) {  /* nothing past them */
            unsigned u; memcpy(&u, &got[x], 4);
            if (u != 0xffffffffu) { differ++; break; }
        }
    }
    /* bad input: NULL logits with rows wanted, a bad row count */
    int bad = slmc_step_rows(tok[0], ps[0], sl[0], n_rows[0], want[0], NULL) == SLMC_ERR_NULL
              && slmc_step_rows(tok[0], ps[0], sl[0], 0, want[0], got) == SLMC_ERR_COUNT;
    printf("%%d %%d %%d %%d\n", compared, differ, skipped, bad);
    return 0;
}
"""


def _c_rows(rows: list[list[int]]) -> str:
    return ", ".join("{" + ", ".join(map(str, r + [0] * (ROWS - len(r)))) + "}" for r in rows)


@pytest.mark.parametrize("numerics", ["fp32", "q8", "int8"])
def test_wanted_rows_logits_bit_identical_to_the_all_rows_step(tmp_path, numerics):
    project = _compile(tmp_path / "b", "host", numerics, "--batch", str(ROWS))
    code = (project / "model.c").read_text()
    assert "int slmc_step_rows(" in code and "slmc_step_rows(" in (project / "model.h").read_text()
    if numerics == "q8" and platform.machine().lower() in ("x86_64", "amd64"):  # the wanted rows: still multi-row
        assert "slmc_linear_q8_rows16(logits, " in code.split("if (n == 0) return;")[1]
    steps, masks = _schedule()
    (project / "main.c").write_text(HARNESS % dict(
        steps=len(steps), n=", ".join(str(len(s)) for s in steps),
        tok=_c_rows([[t for t, _, _ in s] for s in steps]), pos=_c_rows([[p for _, p, _ in s] for s in steps]),
        slot=_c_rows([[k for _, _, k in s] for s in steps]), want=_c_rows(masks)))
    r = subprocess.run(["make", "-s", "-C", str(project)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = subprocess.run([str(project / "model")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    compared, differ, skipped, bad = map(int, out.stdout.split())
    assert (compared, skipped) == (sum(map(sum, masks)), sum(len(m) - sum(m) for m in masks))
    assert compared > 10 and skipped > 10 and differ == 0 and bad == 1


LONG = [10, 23, 14, 30, 12, 19]  # prompt lengths: chunks of several rows that want no logits
LONG_STEPS = 40


@pytest.mark.parametrize("numerics", ["fp32", "q8", "int8"])
def test_host_long_prompts_every_sequence_as_alone(tmp_path, numerics):
    prompts = _prompts(LONG)
    single = _compile(tmp_path / "single", "host", numerics)
    batched = _compile(tmp_path / "batch", "host", numerics, "--batch", str(ROWS))
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(prompts) + "\n")
    r = run_slmc("run", batched, "--prompt-ids-file", ids, "--steps", LONG_STEPS, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert [s["ids"] for s in out["sequences"]] == [_alone(single, p, LONG_STEPS) for p in prompts]
    # a row asks for logits only where it is sampled: a decode row, or the row that ends a prompt
    sampled = sum(pos + rows >= LONG[seq] for _, seq, pos, rows in out["schedule"])
    assert out["logit_rows"] == sampled and out["rows"] - sampled >= sum(LONG) - len(LONG)
    assert any(rows > 1 for _, _, _, rows in out["schedule"])
    # main.c's -a 1 (every row's logits, as slmc_step) generates the same ids through every row's classifier
    runs = [subprocess.run([str(batched / "model"), "-n", str(LONG_STEPS), "-f", str(ids), *a], capture_output=True,
                           text=True, timeout=120) for a in ([], ["-a", "1"])]
    gen = [[ln.split()[:5] for ln in r.stdout.splitlines() if ln[:2] in ("G ", "D ")] for r in runs]  # (D: no time)
    stats = [dict(ln.split()[1:] for ln in r.stdout.splitlines() if ln.startswith("S ")) for r in runs]
    assert gen[0] == gen[1] and len(gen[0]) > len(LONG) and stats[1]["logit_rows"] == str(out["rows"])


@pytest.mark.slow
@pytest.mark.parametrize("target,numerics", [("rp2350-arm", "q8"), ("rv32imac", "int8")])
def test_emulated_long_prompts_every_sequence_as_alone(tmp_path, target, numerics):
    from e2e.test_emulated import need_toolchain

    need_toolchain(target)
    prompts, steps = _prompts([12, 17, 10], seed=1), 20
    single = _compile(tmp_path / "single", target, numerics)
    batched = _compile(tmp_path / "batch", target, numerics, "--batch", "2")
    code = (batched / "model.c").read_text()
    if numerics == "q8":  # the wanted rows go through the M33's multi-row product
        assert "slmc_linear_q8_dsp_rows(logits, " in code.split("if (n == 0) return;")[1]
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(prompts) + "\n")
    r = run_slmc("run", batched, "--prompt-ids-file", ids, "--steps", steps, "--ids")
    assert r.returncode == 0, r.stderr
    assert [[int(x) for x in ln.split()] for ln in r.stdout.splitlines()] == [_alone(single, p, steps) for p in prompts]
