"""The numpy twins of the link operators, and the reference of a partitioned graph set against the
unpartitioned one (reference/multichip.py runs every chip's graph in lockstep)."""

import numpy as np
import pytest

from slmc.frontend.build import build_step_graph
from slmc.passes import partition as cut
from slmc.frontend.decoder import DecoderConfig
from slmc.frontend.random_model import random_decoder
from slmc.plan.partition import partition, partition_model, tree
from slmc.quant.q8 import quantize_activations, quantize_rows
from slmc.reference.interp import new_state, run
from slmc.reference.link_ops import COLLECTIVES, allreduce_max, allreduce_sum, broadcast
from slmc.reference.multichip import new_states, run_chips
from slmc.reference.registry import REFERENCE

LLAMA_GQA = DecoderConfig(dim=64, hidden_dim=128, n_layers=2, n_heads=8, n_kv_heads=2, vocab_size=96, seq_len=24)
GPT2 = DecoderConfig(dim=48, hidden_dim=96, n_layers=2, n_heads=3, n_kv_heads=3, vocab_size=80, seq_len=24,
                     norm="layer", ffn="gelu", pos="learned")


def test_allreduce_sum_adds_in_tree_order():
    rng = np.random.default_rng(0)
    parts = [rng.standard_normal((2, 5)).astype(np.float32) * 10 ** i for i in range(5)]
    _, children = tree(5, 2)          # 0 <- 1, 2 <- 3, 0 <- 2, 0 <- 4
    want = ((parts[0] + parts[1]) + (parts[2] + parts[3])) + parts[4]
    for out in allreduce_sum(parts, children, (2, 5)):
        assert out.dtype == np.float32 and np.array_equal(out, want)


def test_allreduce_max_and_absent_inputs():
    parts = [np.array([[1.0, 5.0]], np.float32), None, np.array([[3.0, 2.0]], np.float32)]
    _, children = tree(3, 3)
    outs = allreduce_max(parts, children, (1, 2))
    assert all(np.array_equal(o, [[3.0, 5.0]]) for o in outs)
    sums = allreduce_sum(parts, children, (1, 2))
    assert np.array_equal(sums[1], [[4.0, 7.0]])


def test_broadcast_and_the_one_chip_group():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert all(np.array_equal(o, x) for o in broadcast([x, None, None], [[1, 2], [], []], (2, 3)))
    for op in ("allreduce_sum", "allreduce_max", "broadcast"):  # a build of one chip: the collective is its input
        assert np.array_equal(REFERENCE[op]([x], {"_out_shapes": [(2, 3)]})[0], x)


def test_split_q8_linear_equals_the_one_chip_linear_bit_for_bit():
    """Columns cut inside a group (the group maxima agreed by allreduce_max), int32 dots per chip,
    floats folded in column order: exactly linear_q8's result."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 128)).astype(np.float32)
    w = quantize_rows(rng.standard_normal((5, 128)).astype(np.float32), 64)
    b = rng.standard_normal(5).astype(np.float32)
    xq, xs = quantize_activations(x, 64)
    want = REFERENCE["linear_q8"]([xq, xs, w.q, w.s, b], {"group": 64})[0]
    bounds = [0, 16, 40, 64, 100, 128]  # five chips, every cut but one inside a group
    parent, children = tree(5, 2)
    amax = [REFERENCE["q8_absmax"]([x[:, a:e]], {"offset": a, "group": 64, "_out_shapes": [(3, 2)]})[0]
            for a, e in zip(bounds, bounds[1:])]
    top = allreduce_max(amax, children, (3, 2))[0]
    ins, attrs = [], []
    for i, (a, e) in enumerate(zip(bounds, bounds[1:])):
        q, s = REFERENCE["quantize_q8_scaled"]([x[:, a:e], top], {"offset": a, "group": 64})
        assert np.array_equal(q, xq[:, a:e])
        dots = REFERENCE["linear_q8_dots"]([q, w.q[:, a:e]], {"offset": a, "group": 64})[0]
        g0, g1 = a // 64, (e - 1) // 64
        ins.append([dots, w.s[:, g0:g1 + 1], s, b if i == 0 else None])
        attrs.append({"offset": a, "k": e - a, "group": 64, "carry": 1})
    for out in COLLECTIVES["fold_q8"](ins, attrs, children, (3, 5)):
        assert np.array_equal(out, want)


def _steps(model, numerics, ids, chunk=1):
    """Logits of the one-chip reference and of each partition's, position by position (or by chunks)."""
    g = build_step_graph(model, chunk, numerics)
    st = new_state(g)
    feeds = [dict(tokens=np.array(ids[i:i + chunk], np.int32), pos=np.array([i], np.int32)) for i in range(0, len(ids), chunk)]
    return g, [run(g, f, st)[g.outputs[0].name] for f in feeds], feeds


@pytest.mark.parametrize("cfg,seed", [(LLAMA_GQA, 0), (GPT2, 1)])
@pytest.mark.parametrize("numerics", ["fp32", "q8"])
@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_partitioned_reference_equals_the_unpartitioned_one(cfg, seed, numerics, n):
    model = random_decoder(cfg, seed, bias=cfg.norm == "layer")
    ids = [1, 5, 9, 33, 2, 70, 11, 4]
    for chunk in (1, 4):
        g, ref, feeds = _steps(model, numerics, ids, chunk)
        plan = partition_model(model, n, 2, numerics)
        graphs = [cut.run(build_step_graph(model, chunk, plan.numerics), plan, c) for c in range(n)]
        assert [bool(x.outputs) for x in graphs] == [True] + [False] * (n - 1)
        states = new_states(graphs)
        for f, want in zip(feeds, ref):
            got = run_chips(graphs, plan, f, states)[0][graphs[0].outputs[0].name]
            if numerics == "q8":  # the exact fold: bit for bit
                assert np.array_equal(got, want), (n, chunk)
            assert np.abs(got - want).max() < 1e-4, (numerics, n, chunk)
            assert np.array_equal(got.argmax(-1), want.argmax(-1))


def test_chip_graphs_hold_their_slices_and_the_planned_collectives():
    model = random_decoder(LLAMA_GQA, 0)
    for numerics in ("fp32", "q8"):
        plan = partition_model(model, 3, 2, numerics)
        for c in range(3):
            g = cut.run(build_step_graph(model, 1, plan.numerics), plan, c)
            ops = [n.op for n in g.nodes if n.op in COLLECTIVES]
            assert ops.count("broadcast") == 1 and ops[0] == "broadcast"
            assert len(ops) == plan.syncs_per_step
            sums = "fold_q8" if numerics == "q8" else "allreduce_sum"
            assert ops.count(sums) == 2 * LLAMA_GQA.n_layers
            has_emb = any(n.op.startswith("embedding") for n in g.nodes)
            assert has_emb == (c == 0)


def test_partition_of_a_shared_group_needs_no_max_sync_when_aligned():
    cfg = DecoderConfig(dim=128, hidden_dim=256, n_layers=1, n_heads=4, n_kv_heads=4, vocab_size=50, seq_len=8)
    model = random_decoder(cfg, 3)
    plan = partition_model(model, 2, 2, "q8")
    assert not plan.q8_max_sync and plan.syncs_per_block == 2
    g = cut.run(build_step_graph(model, 1, plan.numerics), plan, 1)
    assert not any(n.op in ("allreduce_max", "q8_absmax") for n in g.nodes)


@pytest.mark.parametrize("kv", ["fp16", "int8"])
def test_fp16_kv_cache_partitions_too(kv):
    model = random_decoder(LLAMA_GQA, 4)
    ids = [1, 7, 3, 50, 8]
    g = build_step_graph(model, 1, "q8", kv)
    st = new_state(g)
    plan = partition_model(model, 3, 2, "q8")
    graphs = [cut.run(build_step_graph(model, 1, plan.numerics, kv), plan, c) for c in range(3)]
    states = new_states(graphs)
    for p, t in enumerate(ids):
        f = dict(tokens=np.array([t], np.int32), pos=np.array([p], np.int32))
        want = run(g, f, st)[g.outputs[0].name]
        assert np.array_equal(run_chips(graphs, plan, f, states)[0][graphs[0].outputs[0].name], want)


def test_pre_quantized_checkpoint_keeps_its_groups():
    """A Q8_0 file (llama2.c version 2) brings its own groups (here 32): the plan aligns to them."""
    from dataclasses import replace

    model = random_decoder(LLAMA_GQA, 5)
    names = ("wq", "wk", "wv", "wo", "w1", "w2", "w3")
    layers = [replace(lw, **{n: quantize_rows(getattr(lw, n), 32) for n in names}) for lw in model.layers]
    model = replace(model, layers=layers)
    plan = partition_model(model, 3, 2, "q8")
    assert plan.wo_group == 32 and plan.w2_group == 32
    assert all(c.ffn[0] % 32 == 0 for c in plan.chips)
    g, ref, feeds = _steps(model, "q8", [1, 2, 3, 4], 1)
    graphs = [cut.run(build_step_graph(model, 1, plan.numerics), plan, c) for c in range(3)]
    states = new_states(graphs)
    for f, want in zip(feeds, ref):
        assert np.array_equal(run_chips(graphs, plan, f, states)[0][graphs[0].outputs[0].name], want)
