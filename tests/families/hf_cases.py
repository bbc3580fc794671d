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
    seed: int = -1                   # -1: the case's index (a seed whose greedy run meets BOS early is moved)


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
    # Mixtral-8x7B: 8 SwiGLU experts, top-2 renormalised, RoPE base 1e6, no window
    "mixtral": Case("MixtralConfig", "MixtralForCausalLM", dict(
        num_key_value_heads=2, max_position_embeddings=32768, rms_norm_eps=1e-5, rope_theta=1000000.0,
        sliding_window=None, num_local_experts=8, num_experts_per_tok=2, tie_word_embeddings=False)),
    # Qwen3-30B-A3B: Qwen3's block (qk-norm per head) with 128 routed experts (8 here) top-8 (2), renormalised
    "qwen3_moe": Case("Qwen3MoeConfig", "Qwen3MoeForCausalLM", dict(
        num_key_value_heads=2, head_dim=16, max_position_embeddings=40960, rms_norm_eps=1e-6, rope_theta=1000000.0,
        num_experts=8, num_experts_per_tok=2, moe_intermediate_size=48, norm_topk_prob=True, decoder_sparse_step=1,
        mlp_only_layers=[], tie_word_embeddings=False)),
    # OLMoE-1B-7B: qk-norm over the whole q and k, 64 experts (8 here) top-8 (2), not renormalised
    "olmoe": Case("OlmoeConfig", "OlmoeForCausalLM", dict(
        num_key_value_heads=4, max_position_embeddings=4096, rms_norm_eps=1e-5, rope_theta=10000.0,
        num_experts=8, num_experts_per_tok=2, norm_topk_prob=False, clip_qkv=None, tie_word_embeddings=False)),
    # Qwen1.5-MoE-A2.7B: 60 routed experts (8 here) top-4, not renormalised, a sigmoid-gated shared expert,
    # q/k/v biases
    "qwen2_moe": Case("Qwen2MoeConfig", "Qwen2MoeForCausalLM", dict(
        num_key_value_heads=4, max_position_embeddings=8192, rms_norm_eps=1e-6, rope_theta=1000000.0,
        num_experts=8, num_experts_per_tok=4, moe_intermediate_size=32, shared_expert_intermediate_size=128,
        norm_topk_prob=False, decoder_sparse_step=1, mlp_only_layers=[], use_sliding_window=False,
        tie_word_embeddings=False)),
    # Qwen3-0.6B: qk-norm per head, head_dim 128 beside hidden 1024 / 16 heads (here 32 beside 64 / 4), tied
    "qwen3": Case("Qwen3Config", "Qwen3ForCausalLM", dict(
        num_key_value_heads=2, head_dim=32, max_position_embeddings=40960, rms_norm_eps=1e-6,
        rope_theta=1000000.0, attention_bias=False, use_sliding_window=False, tie_word_embeddings=True)),
    # OLMo-2-0425-1B: post-norms only, qk-norm over the whole q and k projections
    "olmo2": Case("Olmo2Config", "Olmo2ForCausalLM", dict(
        num_key_value_heads=4, max_position_embeddings=4096, rms_norm_eps=1e-6, rope_theta=500000.0,
        attention_bias=False, tie_word_embeddings=False), seed=101),
    # StableLM-2-1.6B: LayerNorm with bias, partial rotary 0.25, q/k/v biases
    "stablelm": Case("StableLmConfig", "StableLmForCausalLM", dict(
        num_key_value_heads=4, max_position_embeddings=4096, layer_norm_eps=1e-5, use_qkv_bias=True,
        use_parallel_residual=False, qk_layernorm=False, tie_word_embeddings=False,
        rope_parameters=dict(rope_type="default", rope_theta=10000.0, partial_rotary_factor=0.25))),
    # phi-2: parallel attention+MLP on one shared norm, partial rotary 0.4 (here 6 of 16), lm_head bias
    "phi": Case("PhiConfig", "PhiForCausalLM", dict(
        max_position_embeddings=2048, layer_norm_eps=1e-5, hidden_act="gelu_new", qk_layernorm=False,
        tie_word_embeddings=False, rope_parameters=dict(rope_type="default", rope_theta=10000.0,
                                                        partial_rotary_factor=0.4))),
    # Pythia-14m (GPT-NeoX): parallel residual with two norms, fused per-head qkv, partial rotary 0.25, erf GELU
    "gpt_neox": Case("GPTNeoXConfig", "GPTNeoXForCausalLM", dict(
        max_position_embeddings=2048, layer_norm_eps=1e-5, hidden_act="gelu", use_parallel_residual=True,
        attention_bias=True, tie_word_embeddings=False,
        rope_parameters=dict(rope_type="default", rope_theta=10000.0, partial_rotary_factor=0.25))),
    # gemma-2b: GeGLU (tanh), sqrt(hidden) embedding scale, (1 + w) norms, MQA, head_dim given, tied
    "gemma": Case("GemmaConfig", "GemmaForCausalLM", dict(
        num_key_value_heads=1, head_dim=16, hidden_act="gelu_pytorch_tanh", max_position_embeddings=8192,
        rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=True)),
    # gemma-2-2b: sandwich norms, soft-capping 50/30, scores by query_pre_attn_scalar 256, local/global
    # alternation with window 4096 (here 8: the 20 positions go past it)
    "gemma2": Case("Gemma2Config", "Gemma2ForCausalLM", dict(
        num_key_value_heads=2, head_dim=16, hidden_activation="gelu_pytorch_tanh", max_position_embeddings=8192,
        rms_norm_eps=1e-6, rope_theta=10000.0, query_pre_attn_scalar=256, sliding_window=8,
        attn_logit_softcapping=50.0, final_logit_softcapping=30.0, tie_word_embeddings=True)),
    # gemma-3-1b: qk-norm, local layers with their own RoPE base 1e4 (global 1e6), window 512 (here 8)
    "gemma3": Case("Gemma3TextConfig", "Gemma3ForCausalLM", dict(
        num_key_value_heads=1, head_dim=16, hidden_activation="gelu_pytorch_tanh", max_position_embeddings=32768,
        rms_norm_eps=1e-6, query_pre_attn_scalar=256, sliding_window=8,
        layer_types=["sliding_attention", "full_attention"], tie_word_embeddings=True,
        rope_parameters=dict(sliding_attention=dict(rope_type="default", rope_theta=10000.0),
                             full_attention=dict(rope_type="default", rope_theta=1000000.0)))),
    # granite-3.0-2b: embedding, residual, attention and logit multipliers
    "granite": Case("GraniteConfig", "GraniteForCausalLM", dict(
        num_key_value_heads=2, max_position_embeddings=4096, rms_norm_eps=1e-5, rope_theta=10000.0,
        embedding_multiplier=12.0, residual_multiplier=0.22, attention_multiplier=0.015625, logits_scaling=8.0,
        tie_word_embeddings=True)),
    # SmolLM3-3B: every 4th layer without RoPE (here the second of two)
    "smollm3": Case("SmolLM3Config", "SmolLM3ForCausalLM", dict(
        num_key_value_heads=2, max_position_embeddings=65536, rms_norm_eps=1e-6, rope_theta=5000000.0,
        no_rope_layers=[1, 0], use_sliding_window=False, tie_word_embeddings=True), seed=102),
    # opt-125m: ReLU, learned positions at offset 2, biases, tied
    "opt": Case("OPTConfig", "OPTForCausalLM", dict(
        max_position_embeddings=2048, activation_function="relu", do_layer_norm_before=True, enable_bias=True,
        tie_word_embeddings=True), shrink=dict(hidden_size=64, ffn_dim=128, word_embed_proj_dim=64,
                                               num_hidden_layers=2, num_attention_heads=4, vocab_size=256,
                                               bos_token_id=1, eos_token_id=2, pad_token_id=None)),
    # TinyStories-1M (GPT-Neo): unscaled scores, global/local layers with window 256 (here 8), gelu_new
    "gpt_neo": Case("GPTNeoConfig", "GPTNeoForCausalLM", dict(
        max_position_embeddings=2048, attention_types=[[["global", "local"], 1]], window_size=8,
        activation_function="gelu_new", intermediate_size=None, tie_word_embeddings=True),
        shrink=dict(hidden_size=64, num_layers=2, num_heads=4, vocab_size=256, bos_token_id=1, eos_token_id=2)),
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


def compiled_logits_error(model: Any, folder: Path, tmp: Path, target: str, context: int, prompt: list[int],
                          decode: int) -> tuple[float, np.ndarray]:
    """`slmc compile FOLDER -q fp32 -t TARGET` then `slmc run` over the prompt and `decode` greedy steps: the
    largest |logit - transformers| over the tokens the C program fed itself, and transformers' logits."""
    from conftest import run_slmc

    out, dump = tmp / "out", tmp / "logits.f32"
    r = run_slmc("compile", folder, "-t", target, "-q", "fp32", "--context", context, "-o", out)
    assert r.returncode == 0, r.stderr
    r = run_slmc("run", out, "--steps", len(prompt) + decode, "--prompt-ids", ",".join(map(str, prompt)), "--ids",
                 "--dump-logits", dump)
    assert r.returncode == 0, r.stderr
    got = np.fromfile(dump, np.float32).reshape(-1, 256)
    assert got.shape == (len(prompt) + decode, 256)
    # the tokens the C program fed itself (greedy from the prompt's last position), fed to transformers at once
    ids = prompt + [int(t) for t in got[len(prompt) - 1:-1].argmax(axis=1)]
    want = hf_logits(model, ids)
    return float(np.abs(got - want).max()), want
