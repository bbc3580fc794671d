"""--batch (issue 19): many sequences through one step graph, each with its own position and KV slot.

Every sequence's ids are those of running it alone (the unbatched build, same target): 8 prompts of different
lengths through 4 slots, so sequences join and leave between steps and prompt chunks share steps with decode
rows; fp32, q8 and int8 on the host, q8 on the Cortex-M33 and int8 on RV32 under QEMU. The batching pass is
checked on the numpy twins too (rows of a step scheduled any way give each sequence's own logits, exactly).
Bad input: more requests than the queue holds wait, a prompt longer than the context is one line for that
sequence while the others finish, malformed files and options are one-line errors.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import one_line_error, run_slmc, shared_path

PROMPTS = ["1", "1,400,300,20", "1,7,9", "1,50", "1,60,61,62,63,64,65", "1,5", "1,90,91", "1,33,34,35,36,37,38,39,40"]
STEPS = 24


def _model() -> Path:
    return shared_path("models/stories260K/stories260K.bin")


def _compile(out: Path, target: str, numerics: str, *extra: str) -> Path:
    r = run_slmc("compile", _model(), "-t", target, "-q", numerics, *extra, "-o", out)
    assert r.returncode == 0, r.stderr
    return out


def _alone(project: Path, ids: str, steps: int = STEPS) -> list[int]:
    r = run_slmc("run", project, "--prompt-ids", ids, "--steps", steps, "--ids")
    assert r.returncode == 0, r.stderr
    return [int(x) for x in r.stdout.split()]


def _batched(project: Path, ids_file: Path, steps: int = STEPS) -> dict:
    r = run_slmc("run", project, "--prompt-ids-file", ids_file, "--steps", steps, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def ids_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("prompts") / "ids.txt"
    p.write_text("\n".join(PROMPTS) + "\n")
    return p


def test_pass_rows_of_any_sequence_give_each_sequence_its_own_logits():
    """The numpy twins of the batched graph against the one-token graph, for each numerics: a prompt chunk,
    decode rows of two sequences and an idle padding row in one step."""
    from slmc.frontend.build import build_float_graph, build_step_graph
    from slmc.frontend.calibrate import formats_for
    from slmc.frontend.load import load_model
    from slmc.passes import batch, quantize_int8
    from slmc.reference.interp import new_state, run

    m = load_model(_model())
    seqs = [[1, 400, 300, 20, 50], [1, 7, 9]]
    sched = [[(0, 0), (0, 1), (0, 2), (1, 0)], [(0, 3), (1, 1)], [(1, 2), (0, 4)]]
    for numerics in ("fp32", "q8", "int8"):
        def graph(rows):
            if numerics == "int8":
                return quantize_int8.run(build_float_graph(m, rows), formats_for(m), "")
            return build_step_graph(m, rows, numerics)
        one, bg = graph(1), batch.run(graph(4), 4)
        assert [v.name for v in bg.inputs] == ["tokens", "pos", "slot"]
        want = []
        for s in seqs:
            st = new_state(one)
            want.append([run(one, {"tokens": np.array([t], np.int32), "pos": np.array([p], np.int32)}, st)
                         [one.outputs[0].name][0] for p, t in enumerate(s)])
        st, got = new_state(bg), {}
        for rows in sched:
            pad = 4 - len(rows)
            feed = {"tokens": [seqs[q][p] for q, p in rows] + [0] * pad, "pos": [p for _, p in rows] + [0] * pad,
                    "slot": [q for q, _ in rows] + [3] * pad}
            out = run(bg, {k: np.array(v, np.int32) for k, v in feed.items()}, st)[bg.outputs[0].name]
            for i, (q, p) in enumerate(rows):
                got[(q, p)] = out[i]
        for q, s in enumerate(seqs):
            for p in range(len(s)):
                assert np.array_equal(got[(q, p)], want[q][p]), (numerics, q, p)


def test_pass_decides_from_the_registry():
    """Row-wise operators stay shared; those that read the position or the cache get their per-row form."""
    from slmc.frontend.build import build_step_graph
    from slmc.frontend.load import load_model
    from slmc.passes import batch

    g = batch.run(build_step_graph(load_model(_model()), 4, "q8"), 4)
    ops = {n.op for n in g.nodes}
    assert {"rope_rows", "kv_write_rows", "attention_rows", "linear_q8", "quantize_q8"} <= ops
    assert not ops & {"rope", "kv_write", "attention"}
    assert all(v.shape[0] == 4 * 512 for v in g.states())


@pytest.mark.parametrize("numerics", ["fp32", "q8", "int8"])
def test_host_every_sequence_as_alone(tmp_path, ids_file, numerics):
    single = _compile(tmp_path / "single", "host", numerics)
    batched = _compile(tmp_path / "batch", "host", numerics, "--batch", "4")
    rep = json.loads((batched / "report.json").read_text())
    assert rep["batch"]["slots"] == 4 and rep["macs_per_token"] == json.loads((single / "report.json").read_text())["macs_per_token"]
    out = _batched(batched, ids_file)
    assert [s["ids"] for s in out["sequences"]] == [_alone(single, p) for p in PROMPTS]
    # 8 sequences through 4 slots: later ones join as earlier ones leave, and steps mix sequences
    assert max(s["admitted_step"] for s in out["sequences"]) > 0
    steps: dict[int, list] = {}
    for step, seq, pos, rows in out["schedule"]:
        steps.setdefault(step, []).append((seq, pos, rows))
    assert any(len(v) > 1 for v in steps.values())
    assert any(any(r > 1 for _, _, r in v) and any(r == 1 for _, _, r in v) for v in steps.values())  # chunk + decode
    assert all(sum(r for _, _, r in v) <= 4 for v in steps.values())
    assert out["tokens_per_s"] > 0 and all(s["latency_s"] is not None for s in out["sequences"])


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="linear_q8_rows16.c is x86-64's")
@pytest.mark.parametrize("batch", ["1", "3"])
def test_host_rows16_every_sequence_as_alone(tmp_path, ids_file, batch):
    """q8 on an x86-64 host: a batched build (B = 1 too) stores its weights in the rows16 order and runs
    linear_q8_rows16.c (the tied table's embedding reads that order too); the single run keeps linear_q8_sse2.c
    over row-major weights, and every sequence's ids are still its single run's."""
    single = _compile(tmp_path / "single", "host", "q8")
    batched = _compile(tmp_path / "batch", "host", "q8", "--batch", batch)
    code = (batched / "model.c").read_text()
    assert "slmc_linear_q8_rows16(" in code and "slmc_embedding_q8_rows16(" in code
    assert "slmc_linear_q8_rows16(" not in (single / "model.c").read_text()
    out = _batched(batched, ids_file)
    assert [s["ids"] for s in out["sequences"]] == [_alone(single, p) for p in PROMPTS]


def test_fewer_rows_per_step_than_slots_every_sequence_as_alone(tmp_path, ids_file):
    """--batch 4 --batch-rows 2: four sequences hold KV slots, a step runs two rows of them (decode rows taken in
    turn when more sequences decode than the step has rows); each sequence's ids are still its single run's."""
    single = _compile(tmp_path / "single", "host", "q8")
    batched = _compile(tmp_path / "batch", "host", "q8", "--batch", "4", "--batch-rows", "2")
    rep = json.loads((batched / "report.json").read_text())
    assert (rep["batch"]["slots"], rep["batch"]["rows_per_step"]) == (4, 2)
    assert "#define SLMC_ROWS 2" in (batched / "model.h").read_text()
    out = _batched(batched, ids_file)
    assert [s["ids"] for s in out["sequences"]] == [_alone(single, p) for p in PROMPTS]
    steps: dict[int, list] = {}
    for step, seq, pos, rows in out["schedule"]:
        steps.setdefault(step, []).append((seq, pos, rows))
    assert all(sum(r for _, _, r in v) <= 2 for v in steps.values())
    # more than two sequences were in their slots at once: the slots, not the rows, bound the sequences served
    live = [(s["admitted_step"], s["done_step"]) for s in out["sequences"]]
    assert max(sum(a <= t <= d for a, d in live) for t in steps) > 2


def test_the_fit_stage_cuts_rows_per_step_before_positions(tmp_path):
    """A 32,000-token vocabulary on the RP2350: the logits of 3 rows (384 KB) do not fit its SRAM beside the KV
    slots, one row does; the fit stage keeps the 3 slots and all 64 positions and runs one row per step, and
    says so. Asked for 3 rows, the same build is a one-line fit error; bad --batch-rows are one-line errors."""
    from slmc.frontend.decoder import DecoderConfig
    from slmc.frontend.llama2c import save_v0
    from slmc.frontend.random_model import random_decoder

    ckpt = tmp_path / "bigvocab.bin"
    save_v0(random_decoder(DecoderConfig(dim=64, hidden_dim=128, n_layers=2, n_heads=4, n_kv_heads=4,
                                         vocab_size=32000, seq_len=64), seed=1), ckpt)
    r = run_slmc("compile", ckpt, "-t", "rp2350-arm", "-q", "q8", "--batch", "3", "-o", tmp_path / "fit")
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp_path / "fit" / "report.json").read_text())
    assert rep["batch"]["slots"] == 3 and rep["batch"]["rows_per_step"] < 3 and rep["config"]["seq_len"] == 64
    assert rep["memory"]["sram"]["margin"] >= 0 and any("--batch-rows" in n for n in rep["notes"])
    one_line_error(run_slmc("compile", ckpt, "-t", "rp2350-arm", "-q", "q8", "--batch", "3", "--batch-rows", "3",
                            "-o", tmp_path / "asked"), "does not fit", "SRAM")
    assert not (tmp_path / "asked").exists()
    one_line_error(run_slmc("compile", ckpt, "--batch-rows", "2", "-o", tmp_path / "z"), "--batch-rows 2", "--batch")
    one_line_error(run_slmc("compile", ckpt, "--batch", "2", "--batch-rows", "3", "-o", tmp_path / "z"), "1..2")


@pytest.mark.slow
@pytest.mark.parametrize("target,numerics,cache", [("cortex-m33", "q8", "fp16"), ("rv32imac", "int8", None),
                                                   ("cortex-m33", "q8", "int8")])
def test_emulated_every_sequence_as_alone(tmp_path, ids_file, target, numerics, cache):
    from e2e.test_emulated import need_toolchain

    need_toolchain(target)
    kv = ["--kv-cache", cache] if cache else []
    single = _compile(tmp_path / "single", target, numerics, *kv)
    batched = _compile(tmp_path / "batch", target, numerics, "--batch", "4", *kv)
    r = run_slmc("run", batched, "--prompt-ids-file", ids_file, "--steps", STEPS, "--ids")
    assert r.returncode == 0, r.stderr
    assert [[int(x) for x in ln.split()] for ln in r.stdout.splitlines()] == [_alone(single, p) for p in PROMPTS]


def test_queue_waits_and_a_long_prompt_fails_alone(tmp_path):
    """B=2 holds 4 requests: the other 6 wait in the file (none dropped); a prompt longer than the context is
    one line for that sequence, the others finish, exit code 2 at the end."""
    batched = _compile(tmp_path / "b", "host", "q8", "--batch", "2", "--context", "32")
    f = tmp_path / "ids.txt"
    long = ",".join(["1"] + ["5"] * 40)
    f.write_text("\n".join(PROMPTS[:4] + [long] + PROMPTS[4:]) + "\n")
    r = run_slmc("run", batched, "--prompt-ids-file", f, "--steps", 20, "--ids")
    one_line_error(r, "sequence 4", "longer than the context")
    assert len(r.stdout.splitlines()) == 8 and all(r.stdout.splitlines())


def test_bad_input_one_line(tmp_path, ids_file):
    batched = _compile(tmp_path / "b", "host", "fp32", "--batch", "2")
    bad = tmp_path / "bad.txt"
    bad.write_text("1,2\n1,x,3\n")
    one_line_error(run_slmc("run", batched, "--prompt-ids-file", bad), "line 2", "integers")
    bad.write_text("1,99999\n")
    one_line_error(run_slmc("run", batched, "--prompt-ids-file", bad), "line 1", "within")
    one_line_error(run_slmc("run", batched, "--prompt-ids-file", tmp_path / "none.txt"), "none.txt")
    one_line_error(run_slmc("run", batched, "--prompt-ids-file", ids_file, "--prompt-ids", "1"), "together")
    one_line_error(run_slmc("compile", _model(), "--batch", "0", "-o", tmp_path / "z"), "--batch 0")
    one_line_error(run_slmc("compile", _model(), "--batch", "2", "--chips", "2", "-o", tmp_path / "z"), "--chips")
    single = _compile(tmp_path / "s", "host", "fp32")
    one_line_error(run_slmc("run", single, "--prompt-ids-file", ids_file), "--batch")
    one = _compile(tmp_path / "one", "host", "fp32", "--batch", "1")  # one slot: the sequences in turn
    assert _batched(one, ids_file)["sequences"][1]["ids"] == _alone(single, PROMPTS[1])
