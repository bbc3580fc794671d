"""Decoders exported from PyTorch (tests/onnx/torch_decoders.py), with both torch.onnx exporters: slmc
recognises them as language models, reads the weights exactly, and the compiled C's logits over a 32-token
prompt and 32 greedy steps match onnxruntime on the same 64-token sequence within 1e-4."""

from __future__ import annotations

import json

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
sys.path.append(str(Path(__file__).parent))
import torch_decoders as td  # noqa: E402

from slmc.frontend.decoder import DecoderModel  # noqa: E402
from slmc.frontend.onnx_import import load  # noqa: E402

SLMC = [sys.executable, "-m", "slmc.cli"]
EXPORTS = {"llama-torchscript17": ("llama", False), "llama-dynamo18": ("llama", True),
           "gpt2-torchscript17": ("gpt2", False), "gpt2-dynamo18": ("gpt2", True)}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory):
    """name -> (torch model, path of its ONNX export), exported once per module."""
    cache: dict[str, tuple[object, Path]] = {}

    def get(name: str) -> tuple[object, Path]:
        if name not in cache:
            style, dynamo = EXPORTS[name]
            model = td.make(style)
            path = td.export(model, tmp_path_factory.mktemp(name) / f"{name}.onnx", dynamo)
            cache[name] = (model, path)
        return cache[name]
    return get


def _check_weights(m: DecoderModel, model: object, style: str) -> None:
    sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}  # type: ignore[attr-defined]
    c = m.config
    assert (c.dim, c.n_layers, c.n_heads, c.vocab_size, c.hidden_dim) == (64, 2, 4, 96, 128)
    assert c.norm_eps == pytest.approx(1e-5)
    l0, l1 = m.layers
    if style == "llama":
        assert (c.n_kv_heads, c.norm, c.ffn, c.pos, c.rope_theta, c.rope_interleaved) == (2, "rms", "swiglu", "rope", 10000.0, False)
        np.testing.assert_array_equal(m.tok_emb, sd["embed.weight"])
        np.testing.assert_array_equal(l1.wk, sd["blocks.1.k_proj.weight"])
        np.testing.assert_array_equal(l0.w1, sd["blocks.0.gate.weight"])
        np.testing.assert_array_equal(l0.w3, sd["blocks.0.up.weight"])
        np.testing.assert_array_equal(l1.ffn_norm, sd["blocks.1.ffn_norm.weight"])
        np.testing.assert_array_equal(m.wcls, sd["lm_head.weight"])
        np.testing.assert_array_equal(m.final_norm, sd["norm.weight"])
    else:
        assert (c.n_kv_heads, c.norm, c.ffn, c.pos, c.seq_len) == (4, "layer", "gelu_tanh", "learned", 128)
        assert m.wcls is None  # tied to the embedding
        np.testing.assert_array_equal(m.pos_emb, sd["wpe.weight"])
        qkv, bqkv = sd["blocks.1.c_attn.weight"], sd["blocks.1.c_attn.bias"]
        np.testing.assert_array_equal(l1.wv, qkv[128:])  # the fused projection, split
        np.testing.assert_array_equal(l1.bq, bqkv[:64])
        np.testing.assert_array_equal(l0.attn_norm_b, sd["blocks.0.ln_1.bias"])
        np.testing.assert_array_equal(l0.b2, sd["blocks.0.mlp_proj.bias"])


@pytest.mark.parametrize("style", ["llama", "gpt2"])
def test_torchscript_export_is_read_exactly(style: str, exported) -> None:
    model, path = exported(f"{style}-torchscript17")
    m = load(path)
    assert isinstance(m, DecoderModel)
    _check_weights(m, model, style)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(EXPORTS))
def test_compiled_logits_match_onnxruntime(name: str, exported, tmp_path: Path) -> None:
    model, path = exported(name)
    _check_weights(load(path), model, EXPORTS[name][0])
    out = tmp_path / "out"
    subprocess.run([*SLMC, "compile", str(path), "-t", "host", "-q", "fp32", "-o", str(out)], check=True,
                   capture_output=True)
    prompt = [int(i) for i in np.random.default_rng(7).integers(0, td.VOCAB, 32)]
    dump = tmp_path / "logits.f32"
    r = subprocess.run([*SLMC, "run", str(out), "--prompt-ids", ",".join(map(str, prompt)), "--steps", "64",
                        "--temperature", "0", "--ids", "--dump-logits", str(dump)],
                       check=True, capture_output=True, text=True)
    ids = (prompt + [int(t) for t in r.stdout.split()])[:64]
    assert len(ids) == 64
    got = np.fromfile(dump, np.float32).reshape(-1, td.VOCAB)
    want = ort.InferenceSession(str(path)).run(None, {"input_ids": np.array([ids], np.int64)})[0][0]
    assert got.shape == want.shape == (64, td.VOCAB)
    assert np.abs(got - want).max() < 1e-4
    assert np.abs(want).max() > 0.5  # logits large enough for 1e-4 to mean something


@pytest.mark.slow
@pytest.mark.parametrize("style", ["llama", "gpt2"])
def test_static_shape_export_compiles_as_a_generic_graph(style: str, tmp_path: Path) -> None:
    """Without a dynamic axis the same model is an ordinary graph: the generic kernels run all of it
    (MatMul, Softmax, LayerNormalization, Expand, Where, Gather, ...) through `slmc run --inputs`."""
    model = td.make(style)
    ids = torch.randint(0, td.VOCAB, (1, 16), generator=torch.Generator().manual_seed(3))
    path = tmp_path / "static.onnx"
    with torch.no_grad():
        torch.onnx.export(model, (ids,), str(path), dynamo=False, opset_version=17, input_names=["input_ids"],
                          output_names=["logits"])
    out = tmp_path / "out"
    subprocess.run([*SLMC, "compile", str(path), "-o", str(out)], check=True, capture_output=True)
    np.savez(tmp_path / "in.npz", input_0=ids.numpy())
    subprocess.run([*SLMC, "run", str(out), "--inputs", str(tmp_path / "in.npz"), "--save", str(tmp_path / "o.npz")],
                   check=True, capture_output=True)
    want = ort.InferenceSession(str(path)).run(None, {"input_ids": ids.numpy()})[0]
    np.testing.assert_allclose(np.load(tmp_path / "o.npz")["output_0"], want, rtol=0, atol=1e-4)
    # element-wise outputs planned over the operands they consume (kernels/overlap.py), and still the same logits
    rep = json.loads((out / "report.json").read_text())
    assert rep["memory_sharing"] and rep["arena_bytes"] <= rep["lower_bound_bytes"]


def test_non_finite_decoder_weights_are_refused(exported, tmp_path: Path) -> None:
    """A NaN or Inf in a decoder's weights (issue 15, point 5) is an error naming the tensor, not garbage ids."""
    import onnx
    from onnx import numpy_helper

    from slmc.errors import SlmcError

    _, path = exported("llama-torchscript17")
    m = onnx.load(str(path))
    w = next(t for t in m.graph.initializer if len(t.dims) == 2 and t.dims[0] == t.dims[1] // 2)  # a projection
    arr = numpy_helper.to_array(w).copy()
    arr[1, 2] = np.inf
    w.CopyFrom(numpy_helper.from_array(arr, w.name))
    onnx.save(m, str(tmp_path / "nan.onnx"))
    with pytest.raises(SlmcError, match=r"tensor layers\.\d\.\w+ holds a non-finite value \(inf\)"):
        load(tmp_path / "nan.onnx")
