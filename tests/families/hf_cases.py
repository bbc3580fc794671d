"""The HuggingFace families of tests/families, each as transformers builds it from its real config.json
(the structural fields kept: RoPE base and scaling, norms, eps, biases, tying, windows), shrunk to
2 layers, hidden 64, 4 heads (2 KV heads where the family has GQA), vocabulary 256, intermediate 128.
Weights are seeded and scaled so that the logits are far from 0 (1e-4 then means something)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

SHRINK = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, vocab_size=256,
              bos_token_id=1, eos_token_id=2, pad_token_id=None)


@dataclass(frozen=True)
class Case:
    config: str                      # transformers' config class
    model: str                       # its causal-LM class
    real: dict[str, Any]             # the real checkpoint's config fields that are not sizes
    shrink: dict[str, Any] = field(default_factory=lambda: dict(SHRINK))
    scaled_rope: bool = False        # needs the builder to take rope.rope_tables(cfg)


LONG = [1.0, 1.1, 1.3, 1.8, 3.0, 6.0, 12.0, 24.0]
SHORT = [1.0, 1.02, 1.05, 1.1, 1.2, 1.4, 1.8, 2.5]

SUPPORTED: dict[str, Case] = {
    # TinyLlama-1.1B
    "llama": Case("LlamaConfig", "LlamaForCausalLM", dict(
        num_key_value_heads=2, max_position_embeddings=2048, rms_norm_eps=1e-5, rope_theta=10000.0,
        tie_word_embeddings=False, hidden_act="silu")),
    # Llama-3.2-1B: llama3 RoPE scaling, tied, head_dim given
    "llama3_2": Case("LlamaConfig", "LlamaForCausalLM", dict(
        num_key_value_heads=2, head_dim=16, max_position_embeddings=131072, rms_norm_eps=1e-5,
        rope_parameters=dict(rope_type="llama3", rope_theta=500000.0, factor=32.0, low_freq_factor=1.0,
                             high_freq_factor=4.0, original_max_position_embeddings=8192),
        tie_word_embeddings=True), scaled_rope=True),
    # Mistral-7B-v0.1: sliding window 4096 (the compiled context, 32, is inside it)
    "mistral": Case("MistralConfig", "MistralForCausalLM", dict(
        num_key_value_heads=2, max_position_embeddings=32768, rms_norm_eps=1e-5, rope_theta=10000.0,
        sliding_window=4096, tie_word_embeddings=False)),
    # Qwen2.5-0.5B: q/k/v biases, tied, RoPE base 1e6
    "qwen2": Case("Qwen2Config", "Qwen2ForCausalLM", dict(
        num_key_value_heads=2, max_position_embeddings=32768, rms_norm_eps=1e-6, rope_theta=1000000.0,
        use_sliding_window=False, sliding_window=32768, max_window_layers=21, tie_word_embeddings=True)),
    # GPT-2 (124M): Conv1D weights, fused c_attn, gelu_new, learned positions, tied
    "gpt2": Case("GPT2Config", "GPT2LMHeadModel", dict(
        n_positions=1024, layer_norm_epsilon=1e-5, activation_function="gelu_new", n_inner=None,
        tie_word_embeddings=True), shrink=dict(n_embd=64, n_layer=2, n_head=4, vocab_size=256, bos_token_id=1,
                                               eos_token_id=2)),
    # OLMo-1B-hf: LayerNorm without weight or bias, MHA, tied
    "olmo": Case("OlmoConfig", "OlmoForCausalLM", dict(
        num_key_value_heads=4, max_position_embeddings=2048, rope_theta=10000.0, attention_bias=False,
        clip_qkv=None, tie_word_embeddings=True)),
    # Phi-3-mini-4k: fused qkv_proj and gate_up_proj, sliding window 2047, MHA
    "phi3": Case("Phi3Config", "Phi3ForCausalLM", dict(
        num_key_value_heads=4, max_position_embeddings=4096, original_max_position_embeddings=4096,
        rms_norm_eps=1e-5, rope_theta=10000.0, sliding_window=2047, tie_word_embeddings=False)),
    # Phi-3.5-mini: LongRoPE (short factors inside the original 4096 positions)
    "phi3_5": Case("Phi3Config", "Phi3ForCausalLM", dict(
        num_key_value_heads=4, max_position_embeddings=131072, original_max_position_embeddings=4096,
        rms_norm_eps=1e-5, sliding_window=262144, tie_word_embeddings=False,
        rope_parameters=dict(rope_type="longrope", rope_theta=10000.0, short_factor=SHORT, long_factor=LONG)),
        scaled_rope=True),
}


def hf_model(case: Case, seed: int = 0) -> Any:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    cfg = getattr(transformers, case.config)(**case.real, **case.shrink, initializer_range=0.15)
    cfg._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = getattr(transformers, case.model)(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1 and name.endswith("weight"):  # norms start at 1: random ones catch a misread norm
                p.copy_(1 + 0.3 * torch.randn_like(p))
            elif name.endswith("bias"):                   # biases start at 0, which would hide a misread one
                p.copy_(0.3 * torch.randn_like(p))
    return model


def save(model: Any, folder: Path) -> Path:
    model.save_pretrained(folder, safe_serialization=True)
    return folder


def hf_logits(model: Any, ids: list[int]) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float().numpy()
