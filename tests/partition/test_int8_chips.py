"""-q int8 over N chips (passes/partition.py over passes/quantize_int8.py's graph): integer partial sums added over the chips before
the shift, so the partitioned model is one chip's bit for bit, with exactly two synchronisations per
block; in the numpy reference (every chip's graph in lockstep) and in the compiled processes."""

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import shared_path
from slmc.frontend.build import build_float_graph
from slmc.passes import partition, quantize_int8
from slmc.frontend.decoder import DecoderConfig
from slmc.frontend.random_model import random_decoder
from slmc.plan.partition import partition_model
from slmc.frontend import calibrate as cal
from slmc.quant import int8 as q
from slmc.reference.interp import new_state, run
from slmc.reference.multichip import new_states, run_chips

CFG = DecoderConfig(dim=64, hidden_dim=96, n_layers=2, n_heads=8, n_kv_heads=2, vocab_size=96, seq_len=24)


@pytest.mark.parametrize("n", [2, 3, 5])
def test_reference_of_the_chips_equals_one_chip(n):
    model = random_decoder(CFG, seed=2)
    fm = cal.calibrate(model, cal.calibration_ids(model, 1, 16))
    one = quantize_int8.run(build_float_graph(model), fm)
    plan = partition_model(model, n, 2, "int8")
    assert plan.syncs_per_block == 2 and not plan.q8_max_sync
    graphs = [partition.run(one, plan, c) for c in range(n)]
    st1, sts = new_state(one), new_states(graphs)
    for p, t in enumerate([1, 9, 33, 4, 70, 12, 5, 60]):
        feeds = {"tokens": np.array([t], np.int32), "pos": np.array([p], np.int32)}
        want = run(one, feeds, st1)[one.outputs[0].name]
        got = run_chips(graphs, plan, feeds, sts)[0][graphs[0].outputs[0].name]
        assert np.array_equal(got, want), p
    assert all(not g.outputs for g in graphs[1:])


def test_partial_product_sums_to_the_whole():
    from slmc.reference.int_llm_ops import linear_i8, linear_i8_partial, requant_i64

    rng = np.random.default_rng(3)
    w = rng.standard_normal((6, 40)).astype(np.float32)
    iw = q.int_weights(w, 11, 20)                      # group 8 (64 halved until it divides 40)
    x = rng.integers(-3000, 3000, (1, 40)).astype(np.int16)
    whole = linear_i8([x, iw.q, iw.m], dict(group=iw.group, shift=iw.shift, out_bits=32))[0]
    parts = []
    for c0, c1 in ((0, 13), (13, 29), (29, 40)):      # cuts inside groups
        g0, g1 = c0 // iw.group, (c1 - 1) // iw.group
        parts.append(linear_i8_partial([x[:, c0:c1], iw.q[:, c0:c1], iw.m[:, g0:g1 + 1]],
                                       dict(offset=c0, group=iw.group))[0])
    assert np.array_equal(requant_i64([sum(parts)], dict(shift=iw.shift))[0], whole)


@pytest.mark.slow
@pytest.mark.parametrize("n", [2, 3, 4])
def test_stories260k_int8_over_chips_is_one_chip(tmp_path, n):
    from slmc.driver import CompileOptions, compile_model

    ckpt = shared_path("models/stories260K/stories260K.bin")
    one, many = tmp_path / "one", tmp_path / f"chips{n}"
    compile_model(CompileOptions(ckpt, "host", "int8", one))
    manifest = compile_model(CompileOptions(ckpt, "host", "int8", many, chips=n))
    assert manifest["partition"]["syncs_per_block"] == 2
    out = {}
    for d in (one, many):
        logits = tmp_path / f"{d.name}.f32"
        r = subprocess.run([sys.executable, "-m", "slmc.cli", "run", str(d), "--steps", "32", "--json", "--dump-logits",
                            str(logits)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        out[d.name] = (json.loads(r.stdout), np.fromfile(logits, np.float32))
    assert out[many.name][0]["ids"] == out["one"][0]["ids"]
    assert np.array_equal(out[many.name][1], out["one"][1])
    planned = manifest["partition"]["link_bytes_per_decode_step"]
    assert {f"{x['src']}->{x['dst']}": x["bytes_per_token"] for x in out[many.name][0]["links"]} == planned
    assert planned["1->0"] == 8 * 5 * 2 * 64  # per block two all-reduces of dim int64 partial sums
