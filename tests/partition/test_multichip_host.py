"""stories260K split over 2, 3 (uneven) and 4 chips, each chip its own process on the host, linked
by Unix domain sockets: the same ids as one chip, logits within 1e-4 in fp32 (partial sums added
in another order) and bit-identical in q8 (plan/partition.py: the exact fold), and the bytes each
link carries exactly as the partition plan counts them."""

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import shared_path
from slmc.driver import CompileOptions, compile_model
from slmc.plan.partition import CONTROL_BYTES

pytestmark = pytest.mark.slow
SLMC = [sys.executable, "-m", "slmc.cli"]
CHIPS = (2, 3, 4)
STEPS = 64


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    ckpt = shared_path("models/stories260K/stories260K.bin")
    root = tmp_path_factory.mktemp("chips")
    out = {}
    for q in ("fp32", "q8"):
        for n in (1, *CHIPS):
            d = root / f"{q}_{n}"
            compile_model(CompileOptions(ckpt, "host", q, d, chips=n))
            out[q, n] = d
    return out


def _run(project, tmp_path, *extra):
    logits = tmp_path / f"{project.name}.f32"
    r = subprocess.run([*SLMC, "run", str(project), "--steps", str(STEPS), "--json", "--dump-logits", str(logits), *extra],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout), np.fromfile(logits, np.float32).reshape(-1, 512)


@pytest.mark.parametrize("numerics", ["fp32", "q8"])
@pytest.mark.parametrize("n", CHIPS)
def test_same_ids_and_logits_as_one_chip(builds, tmp_path, numerics, n):
    one, one_logits = _run(builds[numerics, 1], tmp_path)
    many, many_logits = _run(builds[numerics, n], tmp_path)
    assert many["ids"] == one["ids"] and len(one["ids"]) == STEPS
    assert many_logits.shape == one_logits.shape == (STEPS, 512)
    assert np.abs(many_logits - one_logits).max() < 1e-4
    if numerics == "q8":
        assert np.array_equal(many_logits, one_logits)
    if numerics == "fp32":  # one chip is llama2.c's greedy run
        ref = [int(x) for x in shared_path("models/stories260K/greedy_ids_from_bos.txt").read_text().split()]
        assert many["ids"] == ref[:STEPS]


@pytest.mark.parametrize("numerics,n", [("fp32", 4), ("q8", 3)])
def test_bytes_per_link_per_token_match_the_plan(builds, tmp_path, numerics, n):
    manifest = json.loads((builds[numerics, n] / "manifest.json").read_text())
    res, _ = _run(builds[numerics, n], tmp_path)
    planned = manifest["partition"]["link_bytes_per_decode_step"]
    # from BOS every position is one decode step: measured bytes per token equal the plan's count
    assert {f"{x['src']}->{x['dst']}": x["bytes_per_token"] for x in res["links"]} == planned
    assert res["syncs_per_block"] == (3 if numerics == "q8" else 2)
    dim, layers = 64, 5
    if numerics == "fp32":  # per block two all-reduces of dim floats
        up, down = 4 * layers * 2 * dim, 4 * layers * 2 * dim
    else:  # per block: the group maximum; Wo's fold with its int32 carry, W2's fold; both results broadcast
        up, down = 4 * layers * (1 + 2 * dim + dim), 4 * layers * (1 + 2 * dim + dim + 2 * dim)
    assert planned["1->0"] == up and planned["0->1"] == down + 4 * dim + CONTROL_BYTES
    print(f"\n{numerics} over {n} chips: bytes per link per token {planned}")


def test_prompt_through_prefill_steps_on_three_chips(builds, tmp_path):
    prompt = "1," + ",".join(str(t) for t in range(300, 340))  # 41 positions: prompt chunks of 16, 16 and 8
    one, one_logits = _run(builds["q8", 1], tmp_path, "--prompt-ids", prompt)
    many, many_logits = _run(builds["q8", 3], tmp_path, "--prompt-ids", prompt)
    assert many["ids"] == one["ids"]
    assert np.array_equal(many_logits, one_logits)
    # 3 prompt steps and 24 decode steps: control messages per step, payload per position
    per_row = {k: v - (CONTROL_BYTES if k.startswith("0->") else 0)
               for k, v in json.loads((builds["q8", 3] / "manifest.json").read_text())["partition"]
               ["link_bytes_per_decode_step"].items()}
    steps = 3 + (STEPS - 40)
    for x in many["links"]:
        key = f"{x['src']}->{x['dst']}"
        assert x["bytes"] == STEPS * per_row[key] + (steps * CONTROL_BYTES if x["src"] == 0 else 0)


def test_partitioned_output_folder(builds):
    d = builds["q8", 3]
    manifest = json.loads((d / "manifest.json").read_text())
    assert manifest["chips"] == ["chip0", "chip1", "chip2"]
    for i in range(3):
        rep = json.loads((d / f"chip{i}" / "report.json").read_text())
        assert rep["chip"] == i and (d / f"chip{i}" / "Makefile").exists()
        assert (d / f"chip{i}" / "kernels" / "link_runtime.c").exists()
    # no weight stored twice: the chips' matrices add up to one chip's (plus the replicated norms, the
    # q8 scales of Wo's split group and RoPE's tables on every chip)
    one = json.loads((builds["q8", 1] / "report.json").read_text())["weights_bytes"]
    part = manifest["partition"]
    assert manifest["weights_bytes"] <= one + 2 * part["replicated_bytes"] + part["extra_scale_bytes"] + 2 * 16384
    r = subprocess.run([*SLMC, "run", str(d / "chip1")], capture_output=True, text=True)
    assert r.returncode == 2 and "one chip of a partitioned build" in r.stderr


def test_nine_chips_fan_in_three_some_without_a_head(builds, tmp_path):
    """8 heads over 9 chips: one chip adds zero partials to every sum; the tree has fan-in 3."""
    d = tmp_path / "q8_9"
    compile_model(CompileOptions(shared_path("models/stories260K/stories260K.bin"), "host", "q8", d, chips=9, fan_in=3))
    manifest = json.loads((d / "manifest.json").read_text())
    assert any("own no attention head" in n for n in manifest["notes"])
    assert manifest["partition"]["chips"][0]["children"] == [1, 2, 3, 6]
    one, one_logits = _run(builds["q8", 1], tmp_path)
    many, many_logits = _run(d, tmp_path)
    assert many["ids"] == one["ids"] and np.array_equal(many_logits, one_logits)
    assert {f"{x['src']}->{x['dst']}": x["bytes_per_token"] for x in many["links"]} == \
        manifest["partition"]["link_bytes_per_decode_step"]
