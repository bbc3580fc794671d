"""Families (and features of supported families) slmc's decoder cannot compute exactly yet: `slmc compile`
refuses each with one line naming the architecture and the missing feature, exit code 2, no traceback.
The folders hold config.json as transformers writes it from the real config (shrunk): the refusal comes
before any weight is read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import one_line_error, run_slmc

transformers = pytest.importorskip("transformers")

SMALL = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
             vocab_size=256, bos_token_id=1, eos_token_id=2, pad_token_id=None)

# name -> (config class, architecture, the real config's distinctive fields, words the error must hold)
REFUSED: dict[str, tuple[str, str, dict[str, Any], tuple[str, ...]]] = {
    "phimoe": ("PhimoeConfig", "PhimoeForCausalLM", dict(num_local_experts=4, num_experts_per_tok=2),
               ("PhimoeForCausalLM", "sparsemixer")),
    "gemma3_vision": ("Gemma3Config", "Gemma3ForConditionalGeneration", dict(), ("Gemma3ForConditionalGeneration",
                                                                                 "vision tower")),
    # supported families with a feature slmc lacks
    "opt_post_ln": ("OPTConfig", "OPTForCausalLM", dict(ffn_dim=128, word_embed_proj_dim=64, do_layer_norm_before=False),
                    ("OPTForCausalLM", "do_layer_norm_before")),
    "stablelm_qk_layernorm": ("StableLmConfig", "StableLmForCausalLM", dict(qk_layernorm=True),
                              ("StableLmForCausalLM", "qk_layernorm")),
    "phi4_mini_partial_rotary": ("Phi3Config", "Phi3ForCausalLM", dict(partial_rotary_factor=0.75),
                                 ("Phi3ForCausalLM", "partial rotary")),
    "olmo_clip_qkv": ("OlmoConfig", "OlmoForCausalLM", dict(clip_qkv=8.0), ("OlmoForCausalLM", "clip_qkv")),
    "llama_geglu": ("LlamaConfig", "LlamaForCausalLM", dict(hidden_act="gelu_pytorch_tanh"),
                    ("LlamaForCausalLM", "hidden_act", "SwiGLU")),
    "gpt2_layer_scaled": ("GPT2Config", "GPT2LMHeadModel", dict(n_embd=64, n_layer=2, n_head=4,
                                                                scale_attn_by_inverse_layer_idx=True),
                          ("GPT2LMHeadModel", "scale_attn_by_inverse_layer_idx")),
    "llama_proportional_rope": ("LlamaConfig", "LlamaForCausalLM", dict(rope_parameters=dict(
        rope_type="proportional", rope_theta=10000.0, factor=2.0)), ("LlamaForCausalLM", "'proportional'")),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_refused_in_one_line(tmp_path: Path, name: str) -> None:
    cls, arch, real, needles = REFUSED[name]
    config = getattr(transformers, cls)(**SMALL | real)
    config.architectures = [arch]
    config.save_pretrained(tmp_path / name)
    r = run_slmc("compile", tmp_path / name, "-o", tmp_path / "out")
    line = one_line_error(r, *needles)
    assert "config.json" in line


def test_unknown_architecture_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text('{"model_type": "mamba", "architectures": ["MambaForCausalLM"]}')
    one_line_error(run_slmc("compile", tmp_path / "m", "-o", tmp_path / "out"), "'mamba'", "MambaForCausalLM",
                   "not a model family slmc reads", "Llama, Mistral, Qwen2, OLMo, Phi-3, GPT-2")
