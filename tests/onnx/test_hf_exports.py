"""transformers 5 decoders (Llama, Qwen2, GPT-2; tests/onnx/hf_exports.py) through a plain
`torch.onnx.export(model, (ids,), path)`: the exporter's mask and position helpers (CumSum, GatherND) fold
away, and `slmc compile` takes the file as it is.
- a dynamic sequence axis: recognised as a decoder (SDPA's IsNaN guard looked through; an attention_mask
  input bound to ones) and compiled with a KV cache; logits over a 4-token prompt and 16 greedy steps match
  onnxruntime and transformers within 1e-4. The same through the TorchScript exporter (dynamo=False), which
  needs the mask and adds logits_to_keep (bound to the last position: onnxruntime gives that row);
- a static shape: compiled as a generic graph (IsNaN and Where run in C); logits match likewise.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
pytest.importorskip("transformers")
sys.path.append(str(Path(__file__).parent))
import hf_exports as hx  # noqa: E402

pytestmark = pytest.mark.slow
SLMC = [sys.executable, "-m", "slmc.cli"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory):
    """(family, dynamic, mask) -> (transformers model, path of its ONNX export), once per module."""
    cache: dict[tuple, tuple[object, Path]] = {}

    def get(family: str, dynamic: bool, mask: bool = False, legacy: bool = False) -> tuple[object, Path]:
        key = (family, dynamic, mask, legacy)
        if key not in cache:
            model = hx.make(family)
            path = tmp_path_factory.mktemp(family) / f"{family}-{'dyn' if dynamic else 'static'}.onnx"
            cache[key] = (model, hx.export(model, path, dynamic, mask, legacy))
        return cache[key]
    return get


def _onnxruntime(path: Path, ids: list[int]) -> np.ndarray:
    sess = ort.InferenceSession(str(path))
    feed = {"input_ids": np.array([ids], np.int64), "attention_mask": np.ones((1, len(ids)), np.int64),
            "logits_to_keep": np.array(-1)}
    return sess.run(None, {i.name: feed[i.name] for i in sess.get_inputs()})[0][0]


def _compile(path: Path, out: Path) -> None:
    r = subprocess.run([*SLMC, "compile", str(path), "-t", "host", "-q", "fp32", "-o", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("family,mask,legacy", [("llama", False, False), ("qwen2", False, False), ("gpt2", False, False),
                                               ("llama", True, False), ("llama", True, True), ("gpt2", True, True)])
def test_dynamic_export_compiles_as_a_decoder(family: str, mask: bool, legacy: bool, exported, tmp_path: Path) -> None:
    from slmc.frontend.decoder import DecoderModel
    from slmc.frontend.onnx_import import load

    model, path = exported(family, True, mask, legacy)
    m = load(path)
    assert isinstance(m, DecoderModel) and m.config.n_layers == 2 and m.config.vocab_size == hx.VOCAB
    if family == "qwen2":  # the q/k/v biases are read, not dropped
        sd = model.state_dict()
        np.testing.assert_array_equal(m.layers[1].bk, sd["model.layers.1.self_attn.k_proj.bias"].numpy())
    _compile(path, tmp_path / "out")
    prompt = [int(i) for i in np.random.default_rng(7).integers(0, hx.VOCAB, 4)]
    dump = tmp_path / "logits.f32"
    r = subprocess.run([*SLMC, "run", str(tmp_path / "out"), "--prompt-ids", ",".join(map(str, prompt)),
                        "--steps", "20", "--temperature", "0", "--ids", "--dump-logits", str(dump)],
                       check=True, capture_output=True, text=True)
    ids = (prompt + [int(t) for t in r.stdout.split()])[:20]
    got = np.fromfile(dump, np.float32).reshape(-1, hx.VOCAB)[:len(ids)]
    assert got.shape == (20, hx.VOCAB)
    want = _onnxruntime(path, ids)
    mine = got[-1] if legacy else got  # the TorchScript export gives the row logits_to_keep picks: the last
    assert mine.shape == want.shape
    assert np.abs(mine - want).max() < 1e-4
    assert np.abs(got - hx.hf_logits(model, ids)).max() < 1e-4
    assert np.abs(want).max() > 0.5  # logits large enough for 1e-4 to mean something


@pytest.mark.parametrize("family", ["llama", "qwen2", "gpt2"])
def test_static_export_compiles_as_a_generic_graph(family: str, exported, tmp_path: Path) -> None:
    model, path = exported(family, False)
    _compile(path, tmp_path / "out")
    ids = np.random.default_rng(3).integers(0, hx.VOCAB, (1, 8)).astype(np.int64)
    np.savez(tmp_path / "in.npz", input_0=ids)
    subprocess.run([*SLMC, "run", str(tmp_path / "out"), "--inputs", str(tmp_path / "in.npz"), "--save",
                    str(tmp_path / "o.npz")], check=True, capture_output=True)
    got = np.load(tmp_path / "o.npz")["output_0"][0]
    want = _onnxruntime(path, ids[0].tolist())
    assert np.abs(got - want).max() < 1e-4
    assert np.abs(got - hx.hf_logits(model, ids[0].tolist())).max() < 1e-4
    assert np.abs(want).max() > 0.5
