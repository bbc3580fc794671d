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
    "gemma": ("GemmaConfig", "GemmaForCausalLM", dict(head_dim=16, hidden_act="gelu_pytorch_tanh"),
              ("GemmaForCausalLM", "GeGLU", "embedding multiplier")),
    "gemma2": ("Gemma2Config", "Gemma2ForCausalLM", dict(head_dim=16, sliding_window=4096, final_logit_softcapping=30.0,
                                                        attn_logit_softcapping=50.0),
               ("Gemma2ForCausalLM", "soft-capping", "sliding-window")),
    "gemma3": ("Gemma3TextConfig", "Gemma3ForCausalLM", dict(head_dim=16, sliding_window=512),
               ("Gemma3ForCausalLM", "qk-norm", "local/global")),
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM", dict(head_dim=16), ("Qwen3ForCausalLM", "qk-norm")),
    "phi": ("PhiConfig", "PhiForCausalLM", dict(partial_rotary_factor=0.5),
            ("PhiForCausalLM", "parallel attention+MLP residual", "partial rotary")),
    "gpt_neo": ("GPTNeoConfig", "GPTNeoForCausalLM", dict(num_layers=2, num_heads=4, window_size=256,
                                                          attention_types=[[["global", "local"], 1]]),
                ("GPTNeoForCausalLM", "unscaled attention", "local")),
    "gpt_neox": ("GPTNeoXConfig", "GPTNeoXForCausalLM", dict(rotary_pct=0.25, use_parallel_residual=True),
                 ("GPTNeoXForCausalLM", "parallel", "partial rotary")),
    "opt": ("OPTConfig", "OPTForCausalLM", dict(ffn_dim=128, word_embed_proj_dim=64, activation_function="relu"),
            ("OPTForCausalLM", "ReLU", "offset by 2")),
    "stablelm": ("StableLmConfig", "StableLmForCausalLM", dict(partial_rotary_factor=0.25),
                 ("StableLmForCausalLM", "partial rotary")),
    "olmo2": ("Olmo2Config", "Olmo2ForCausalLM", dict(), ("Olmo2ForCausalLM", "qk-norm", "post-norm")),
    "granite": ("GraniteConfig", "GraniteForCausalLM", dict(embedding_multiplier=12.0, residual_multiplier=0.22,
                                                            attention_multiplier=0.0078125, logits_scaling=8.0),
                ("GraniteForCausalLM", "multipliers")),
    "smollm3": ("SmolLM3Config", "SmolLM3ForCausalLM", dict(no_rope_layer_interval=4), ("SmolLM3ForCausalLM", "NoPE")),
    "mixtral": ("MixtralConfig", "MixtralForCausalLM", dict(num_local_experts=4, num_experts_per_tok=2),
                ("MixtralForCausalLM", "mixture-of-experts")),
    # supported families with a feature slmc lacks
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


def test_context_beyond_the_sliding_window_in_one_line(tmp_path: Path) -> None:
    from families.hf_cases import SUPPORTED, hf_model, save

    case = SUPPORTED["mistral"]
    folder = save(hf_model(type(case)(case.config, case.model, case.real | {"sliding_window": 8})), tmp_path / "m")
    one_line_error(run_slmc("compile", folder, "--context", "16", "-o", tmp_path / "out"), "--context 16", "1..8")
