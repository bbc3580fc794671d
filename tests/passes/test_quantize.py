"""The quantization passes over the one float graph (passes/quantize_q8.py, passes/quantize_int8.py) and the
roles they read (ir/roles.py). Their numerics are checked end to end elsewhere (llama2.c's reference
logits, tests/quant/test_int8.py); here: what each pass must keep or refuse."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from slmc.errors import SlmcError
from slmc.frontend.build import build_float_graph
from slmc.frontend.calibrate import formats_for
from slmc.frontend.logits import graph_logits
from slmc.frontend.random_model import SHAPES, random_decoder
from slmc.ir.roles import Role
from slmc.passes import quantize_int8, quantize_q8
from slmc.quant.q8 import Q8Tensor, quantize_rows

SMALL = replace(SHAPES["stories260K"], dim=48, hidden_dim=96, n_layers=2, n_heads=6, n_kv_heads=2, vocab_size=64,
                seq_len=32)


def test_every_node_of_a_decoder_has_its_layer_and_role():
    g = build_float_graph(random_decoder(SMALL, seed=1))
    assert all(n.role is not None for n in g.nodes)
    linears = [(n.layer, n.role) for n in g.nodes if n.op == "linear"]
    block = [Role.Q, Role.K, Role.V, Role.O, Role.GATE, Role.UP, Role.DOWN]
    assert linears == [(i, r) for i in range(SMALL.n_layers) for r in block] + [(None, Role.CLASSIFIER)]


def test_q8_keeps_the_checkpoint_s_own_quantization():
    """A weight stored quantized is used as stored: quantizing its float copy again would change it (its
    integers stay within +-63 here, so re-quantizing stretches them to +-127)."""
    model = random_decoder(SMALL, seed=2)
    q = quantize_rows(model.layers[0].wq, 16)
    odd = Q8Tensor((q.q // 2).astype(np.int8), q.s, 16)
    assert not np.array_equal(quantize_rows(odd.dequantize(), 16).q, odd.q)  # the point of the test
    model.layers[0].wq = odd
    g = quantize_q8.run(build_float_graph(model))
    assert np.array_equal(g.values["layers.0.wq.q"].data, odd.q)
    assert np.array_equal(g.values["layers.0.wq.s"].data, odd.s)
    node = next(n for n in g.nodes if n.op == "linear_q8" and n.role is Role.Q and n.layer == 0)
    assert node.attrs["group"] == 16


def test_q8_stores_a_tied_table_once_in_the_classifier_s_order():
    g = quantize_q8.run(build_float_graph(random_decoder(SMALL, seed=3)), "rows4")
    emb = next(n for n in g.nodes if n.op == "embedding_q8")
    cls = next(n for n in g.nodes if n.role is Role.CLASSIFIER and n.op == "linear_q8")
    assert emb.inputs[0] is cls.inputs[2] and emb.attrs["layout"] == cls.attrs["layout"] == "rows4"
    untied = quantize_q8.run(build_float_graph(random_decoder(SMALL, seed=3, tied=False)), "rows4")
    assert "layout" not in next(n for n in untied.nodes if n.op == "embedding_q8").attrs


def test_int8_pass_agrees_with_the_float_graph():
    model = random_decoder(SMALL, seed=4)
    fm = formats_for(model)
    ids = list(range(1, 17))
    ref = graph_logits(build_float_graph(model), ids)
    got = graph_logits(quantize_int8.run(build_float_graph(model), fm), ids) * 2.0 ** -fm.logits
    assert (ref.argmax(1) == got.argmax(1)).mean() >= 0.9
    assert np.abs(ref - got).max() < 0.1 * np.abs(ref).max()


@pytest.mark.parametrize("change, bias, words", [  # LayerNorm, GELU, learned positions, biases: integer forms now
    (dict(n_experts=4, top_k=2), False, "no integer form of linear .in the model's router"),
])
def test_int8_pass_refuses_what_has_no_integer_form(change, bias, words):
    model = random_decoder(replace(SMALL, **change), seed=5, bias=bias)
    fm = formats_for(random_decoder(SMALL, seed=5))   # formats of a model it can do
    with pytest.raises(SlmcError, match=words):
        quantize_int8.run(build_float_graph(model), fm)
