"""HuggingFace Llama folders: logits of our numpy reference on the loaded model against transformers' own
forward on the same random model; malformed folders raise SlmcError naming the problem."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save_file

from slmc.errors import SlmcError
from slmc.frontend import hf
from slmc.frontend.logits import reference_logits

IDS = [1, 17, 42, 99, 3, 3, 64, 0, 5, 80]


def _hf_model(seed: int = 0, **overrides: Any) -> "Any":
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    kw: dict[str, Any] = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                              num_key_value_heads=2, vocab_size=100, max_position_embeddings=32,
                              rms_norm_eps=1e-5, initializer_range=0.15, tie_word_embeddings=False)
    kw.update(overrides)
    torch.manual_seed(seed)
    model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**kw, attn_implementation="eager")).eval()
    with torch.no_grad():  # norms start at 1.0; random ones catch a norm weight read from the wrong tensor
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1 + 0.3 * torch.randn_like(p))
            elif name.endswith(".bias"):  # initialised to 0, which would hide a bias read from the wrong tensor
                p.copy_(0.3 * torch.randn_like(p))
    return model


def _hf_logits(model: Any, ids: list[int]) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float().numpy()


@pytest.mark.parametrize("overrides", [
    {},                                                   # GQA, untied
    {"tie_word_embeddings": True},
    {"num_key_value_heads": 4, "rope_theta": 500.0},      # MHA, another RoPE base
    {"head_dim": 32},                                     # q_dim (4 x 32) wider than hidden (64)
    {"attention_bias": True, "mlp_bias": True},           # biases on every projection
], ids=["gqa", "tied", "mha_theta", "head_dim", "biases"])
def test_logits_match_transformers(tmp_path: Path, overrides: dict[str, Any]) -> None:
    model = _hf_model(**overrides)
    model.save_pretrained(tmp_path, safe_serialization=True)
    ours = hf.load(tmp_path)
    assert ours.config.rope_interleaved is False
    assert (ours.wcls is None) == bool(overrides.get("tie_word_embeddings"))
    want = _hf_logits(model, IDS)
    got = reference_logits(ours, IDS)
    assert got.shape == want.shape == (len(IDS), 100)
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    assert np.abs(want).max() > 0.5  # logits big enough that 1e-4 means something


def test_rope_convention_matters(tmp_path: Path) -> None:
    # the comparison above would be blind if both RoPE pairings gave the same logits
    from dataclasses import replace

    model = _hf_model()
    model.save_pretrained(tmp_path, safe_serialization=True)
    ours = hf.load(tmp_path)
    ours.config = replace(ours.config, rope_interleaved=True)
    assert np.abs(reference_logits(ours, IDS) - _hf_logits(model, IDS)).max() > 1e-2


def test_sharded_and_bf16(tmp_path: Path) -> None:
    import torch

    model = _hf_model(seed=1).to(torch.bfloat16)
    model.save_pretrained(tmp_path, safe_serialization=True, max_shard_size="40KB")
    assert (tmp_path / "model.safetensors.index.json").is_file()
    assert len(list(tmp_path.glob("model-*-of-*.safetensors"))) > 1
    ours = hf.load(tmp_path)
    sd = {k: v.float().numpy() for k, v in model.state_dict().items()}
    np.testing.assert_array_equal(ours.tok_emb, sd["model.embed_tokens.weight"])
    np.testing.assert_array_equal(ours.layers[1].wk, sd["model.layers.1.self_attn.k_proj.weight"])
    np.testing.assert_array_equal(ours.layers[0].w2, sd["model.layers.0.mlp.down_proj.weight"])
    np.testing.assert_array_equal(ours.wcls, sd["lm_head.weight"])


# malformed folders: written by hand, so these run without transformers -------------------------------

CONFIG = dict(architectures=["LlamaForCausalLM"], model_type="llama", hidden_size=8, intermediate_size=16,
              num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1, vocab_size=10,
              max_position_embeddings=16, rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=True,
              hidden_act="silu")


def _tiny_folder(d: Path, **config: Any) -> Path:
    cfg = {**CONFIG, **config}
    rng = np.random.default_rng(0)
    shapes = {"model.embed_tokens.weight": (10, 8), "model.norm.weight": (8,),
              "model.layers.0.input_layernorm.weight": (8,), "model.layers.0.post_attention_layernorm.weight": (8,),
              "model.layers.0.self_attn.q_proj.weight": (8, 8), "model.layers.0.self_attn.k_proj.weight": (4, 8),
              "model.layers.0.self_attn.v_proj.weight": (4, 8), "model.layers.0.self_attn.o_proj.weight": (8, 8),
              "model.layers.0.mlp.gate_proj.weight": (16, 8), "model.layers.0.mlp.up_proj.weight": (16, 8),
              "model.layers.0.mlp.down_proj.weight": (8, 16)}
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.json").write_text(json.dumps(cfg))
    save_file({k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()},
              str(d / "model.safetensors"))
    return d


def test_hand_written_folder_loads(tmp_path: Path) -> None:
    m = hf.load(_tiny_folder(tmp_path))
    assert (m.config.dim, m.config.n_kv_heads, m.config.kv_dim, m.wcls) == (8, 1, 4, None)


@pytest.mark.parametrize("config, field", [
    ({"rope_scaling": {"rope_type": "mrope", "factor": 2.0}}, "RoPE scaling 'mrope' is not supported"),
    ({"rope_parameters": {"rope_type": "llama3", "rope_theta": 1e4, "factor": 8.0}}, "rope_parameters.low_freq_factor"),
    ({"partial_rotary_factor": 0.5}, "partial rotary"),
    ({"attention_bias": True}, "q_proj.bias is missing"),   # biases are read when the config says so
    ({"mlp_bias": True}, "gate_proj.bias is missing"),
    ({"hidden_act": "gelu"}, "hidden_act"),
    ({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}, "'n_embd' is missing"),
    ({"architectures": ["GPT2LMHeadModel"]}, "do not include LlamaForCausalLM"),
    ({"model_type": "gemma3", "architectures": ["Gemma3ForConditionalGeneration"]},
     "Gemma3ForConditionalGeneration .* needs a vision tower"),
    ({"model_type": "mamba"}, "'mamba' / architectures .* is not a model family slmc reads"),
    ({"hidden_size": "64"}, "hidden_size"),
    ({"num_key_value_heads": 3}, "n_kv_heads"),
])
def test_unsupported_config_names_the_field(tmp_path: Path, config: dict[str, Any], field: str) -> None:
    with pytest.raises(SlmcError, match=field):
        hf.load(_tiny_folder(tmp_path, **config))


def test_broken_folders(tmp_path: Path) -> None:
    with pytest.raises(SlmcError, match="not a folder"):
        hf.load(tmp_path / "nowhere")
    d = _tiny_folder(tmp_path / "ok")

    def broken(name: str) -> Path:
        b = tmp_path / name
        shutil.copytree(d, b)
        return b

    b = broken("no_config")
    (b / "config.json").unlink()
    with pytest.raises(SlmcError, match="config.json"):
        hf.load(b)
    b = broken("bad_json")
    (b / "config.json").write_text("{hidden_size: 8")
    with pytest.raises(SlmcError, match="not valid JSON"):
        hf.load(b)
    b = broken("no_weights")
    (b / "model.safetensors").unlink()
    with pytest.raises(SlmcError, match="model.safetensors"):
        hf.load(b)
    b = broken("truncated")
    raw = (b / "model.safetensors").read_bytes()
    (b / "model.safetensors").write_bytes(raw[:-100])
    with pytest.raises(SlmcError, match="truncated"):
        hf.load(b)
    b = broken("garbage")
    (b / "model.safetensors").write_bytes(np.random.default_rng(1).bytes(5000))
    with pytest.raises(SlmcError, match="not a safetensors file"):
        hf.load(b)
    b = broken("wrong_shape")
    cfg = json.loads((b / "config.json").read_text())
    (b / "config.json").write_text(json.dumps({**cfg, "intermediate_size": 12}))
    with pytest.raises(SlmcError, match=r"gate_proj.weight has shape \[16, 8\], config.json implies \[12, 8\]"):
        hf.load(b)
    b = broken("untied_without_lm_head")
    (b / "config.json").write_text(json.dumps({**cfg, "tie_word_embeddings": False}))
    with pytest.raises(SlmcError, match="lm_head.weight is missing"):
        hf.load(b)
    b = broken("bad_index")
    (b / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"x": "../../etc/passwd"}}))
    with pytest.raises(SlmcError, match="outside the folder"):
        hf.load(b)
