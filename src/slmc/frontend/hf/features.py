"""Llama-shaped HuggingFace families with structural features beyond the Llama block: their config.json
read onto DecoderConfig's feature fields, and the extra tensors (qk-norm, post-norms) read after the
Llama-shaped ones (llama_like.weights).

- Qwen3: qk-norm per head (q_norm/k_norm [head_dim]).
- StableLM (2): LayerNorm with bias, partial rotary.
- Gemma, Gemma 2, Gemma 3 (text): GeGLU, sqrt(dim) embedding scale, (1 + weight) norms folded; Gemma 2/3
  sandwich norms, windows, soft-capping (2), qk-norm and a local RoPE base (3).
- Granite: multipliers. SmolLM3: NoPE layers.
- OLMo 2: no norm before attention or FFN; a norm of each sublayer's output (post_attention_layernorm,
  post_feedforward_layernorm) before its add; qk-norm over the whole q and k projections.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from slmc.frontend.decoder import DecoderModel
from slmc.frontend.hf import llama_like
from slmc.frontend.hf.fields import Fields
from slmc.frontend.hf.files import Weights
from slmc.frontend.hf.rope_config import partial_rotary
from slmc.frontend.hf.spec import Layout, Spec


def qwen3(f: Fields) -> Spec:
    spec = llama_like.qwen2(f)
    bias = f.bool("attention_bias", False)
    return replace(spec, config=replace(spec.config, qk_norm="head"), layout=Layout(qkv_bias=bias, o_bias=bias))


def olmo2(f: Fields) -> Spec:
    bias = f.bool("attention_bias", False)
    cfg, notes = llama_like._config(f, norm="rms", eps=f.num("rms_norm_eps", 1e-5))
    return Spec(replace(cfg, qk_norm="full", norm_place="post"), f.bool("tie_word_embeddings", False),
                Layout(qkv_bias=bias, o_bias=bias, input_norm=False), tuple(notes))


def stablelm(f: Fields) -> Spec:
    """StableLM (2): Llama names, LayerNorm with bias, partial rotary, q/k/v biases with use_qkv_bias."""
    if f.bool("qk_layernorm", False):
        raise f.refuse("qk_layernorm true (a LayerNorm per head on q and k) is not supported",
                       "use a model with qk_layernorm false")
    if f.bool("use_parallel_residual", False):
        raise f.refuse("use_parallel_residual true (one norm for attention and MLP) is not supported for StableLM",
                       "use a model with use_parallel_residual false")
    cfg, notes = llama_like._config(f, norm="layer", eps=f.num("layer_norm_eps", 1e-5), partial_rotary=True)
    cfg = replace(cfg, rotary_dim=partial_rotary(f, cfg.head_dim))
    bias = f.bool("use_qkv_bias", False)
    return Spec(cfg, f.bool("tie_word_embeddings", False), Layout(qkv_bias=bias, norm_bias=True), tuple(notes))


GEGLU = {"gelu_pytorch_tanh": "geglu_tanh", "gelu_new": "geglu_tanh", "gelu": "geglu"}


def gemma(f: Fields) -> Spec:
    """Gemma (1): a GeGLU FFN, the embedding times sqrt(hidden_size), (1 + weight) RMSNorms, tied."""
    act_key = "hidden_activation" if f.has("hidden_activation") else "hidden_act"
    cfg, notes = llama_like._config(f, norm="rms", eps=f.num("rms_norm_eps", 1e-6), acts=GEGLU, act_key=act_key)
    return _gemma_spec(f, cfg, notes)


def gemma2(f: Fields) -> Spec:
    """Gemma 2: Gemma's block with norms before and after each sublayer, attention and final-logit soft-capping,
    sliding-window layers (layer_types, alternating), scores scaled by query_pre_attn_scalar^-1/2."""
    cfg, notes = llama_like._config(f, norm="rms", eps=f.num("rms_norm_eps", 1e-6), acts=GEGLU,
                                    act_key="hidden_activation")
    cfg = replace(cfg, norm_place="sandwich", attn_softcap=_cap(f, "attn_logit_softcapping"),
                  logit_softcap=_cap(f, "final_logit_softcapping"), **_windows(f, ["sliding_attention", "full_attention"]),
                  attn_scale=_query_scale(f, cfg.head_dim))
    return _gemma_spec(f, cfg, notes)


def gemma3(f: Fields) -> Spec:
    """Gemma 3 (text): Gemma 2's block with qk-norm per head instead of soft-capping, 5 local layers per global
    one, and the local layers' own RoPE base (rope_parameters per layer type, or rope_local_base_freq)."""
    nested = f.obj("rope_parameters")
    local_theta = 10000.0
    if "full_attention" in nested or "sliding_attention" in nested:
        local = f.within("rope_parameters").within("sliding_attention")
        if local.str("rope_type", "default") != "default":
            raise f.refuse("RoPE scaling on the local layers is not supported", "use a model without it")
        local_theta = local.num("rope_theta", 10000.0)
        f = Fields(dict(f.c, rope_parameters=nested.get("full_attention") or {}), f.path, f.where, f.arch)
    else:
        local_theta = f.num("rope_local_base_freq", 10000.0)
    cfg, notes = llama_like._config(f, norm="rms", eps=f.num("rms_norm_eps", 1e-6), acts=GEGLU,
                                    act_key="hidden_activation")
    n = cfg.n_layers
    windows = _windows(f, ["sliding_attention" if (i + 1) % 6 else "full_attention" for i in range(n)])
    cfg = replace(cfg, norm_place="sandwich", qk_norm="head", attn_softcap=_cap(f, "attn_logit_softcapping"),
                  logit_softcap=_cap(f, "final_logit_softcapping"), attn_scale=_query_scale(f, cfg.head_dim),
                  rope_local_theta=local_theta if windows["sliding_window"] else 0.0, **windows)
    return _gemma_spec(f, cfg, notes)


def _gemma_spec(f: Fields, cfg, notes: list[str]) -> Spec:
    bias = f.bool("attention_bias", False)
    cfg = replace(cfg, embed_scale=float(np.float32(np.sqrt(np.float32(cfg.dim)))))
    return Spec(cfg, f.bool("tie_word_embeddings", True), Layout(qkv_bias=bias, o_bias=bias, norm_offset=1.0),
                tuple(notes))


def _cap(f: Fields, key: str) -> float:
    return f.num(key) if f.has(key) else 0.0


def _query_scale(f: Fields, head_dim: int) -> float:
    """query_pre_attn_scalar^-1/2 as the attention scale, 0 (the kernel's 1/sqrt(head_dim)) where equal."""
    qpas = f.num("query_pre_attn_scalar", float(head_dim))
    return 0.0 if qpas == head_dim else float(qpas) ** -0.5


def _windows(f: Fields, default: list[str]) -> dict:
    """sliding_window and the layers it applies to, from layer_types (or the family's pattern)."""
    sliding = llama_like.window_layers(f, default)
    window = f.int("sliding_window", 4096) if any(sliding) else 0
    return dict(sliding_window=window, window_layers=sliding if window and not all(sliding) else ())


def granite(f: Fields) -> Spec:
    """Granite (3.x): Llama with an embedding multiplier, a residual multiplier on each sublayer's output, the
    attention scale attention_multiplier, and the logits divided by logits_scaling."""
    spec = llama_like.llama(f)
    cfg = replace(spec.config, embed_scale=f.num("embedding_multiplier", 1.0),
                  residual_scale=f.num("residual_multiplier", 1.0), attn_scale=f.num("attention_multiplier", 1.0),
                  logit_scale=1.0 / f.num("logits_scaling", 1.0))
    return replace(spec, config=cfg)


def smollm3(f: Fields) -> Spec:
    """SmolLM3: Llama with NoPE layers (no_rope_layers: 1 rotates, 0 does not); windows as Qwen2's."""
    spec = llama_like.qwen2(f)
    n = spec.config.n_layers
    every = f.int("no_rope_layer_interval", 4)
    flags = f.c.get("no_rope_layers")
    if flags is None:
        flags = [int((i + 1) % every != 0) for i in range(n)]
    if not isinstance(flags, list) or len(flags) != n or any(x not in (0, 1) or isinstance(x, bool) for x in flags):
        raise f.bad("no_rope_layers", flags, f"{n} entries of 0 or 1")
    rope = tuple(bool(x) for x in flags)
    bias = f.bool("attention_bias", False)
    return replace(spec, config=replace(spec.config, rope_layers=() if all(rope) else rope),
                   layout=Layout(qkv_bias=bias, o_bias=bias, mlp_bias=f.bool("mlp_bias", False)))


def weights(spec: Spec, get: Weights) -> DecoderModel:
    """llama_like.weights, then each layer's qk-norm and post-norm tensors where the config has them; Gemma's
    (1 + weight) norms folded into their weights."""
    model = llama_like.weights(spec, get)
    cfg, off = spec.config, np.float32(spec.layout.norm_offset)
    D = cfg.dim
    for i, lw in enumerate(model.layers):
        p = f"model.layers.{i}."
        if cfg.qk_norm != "none":
            per_head = cfg.qk_norm == "head"
            lw.q_norm = get(p + "self_attn.q_norm.weight", cfg.head_dim if per_head else cfg.q_dim)
            lw.k_norm = get(p + "self_attn.k_norm.weight", cfg.head_dim if per_head else cfg.kv_dim)
        if cfg.norm_place == "post":   # read as the pre-FFN norm by llama_like: it is attention's post-norm
            lw.post_attn_norm, lw.ffn_norm = lw.ffn_norm, None
            lw.post_ffn_norm = get(p + "post_feedforward_layernorm.weight", D)
        elif cfg.norm_place == "sandwich":
            lw.post_attn_norm, lw.ffn_norm = lw.ffn_norm, get(p + "pre_feedforward_layernorm.weight", D)
            lw.post_ffn_norm = get(p + "post_feedforward_layernorm.weight", D)
        if spec.layout.norm_bias:  # LayerNorm's biases (llama_like reads the weights)
            lw.attn_norm_b = get(p + "input_layernorm.bias", D)
            lw.ffn_norm_b = get(p + "post_attention_layernorm.bias", D)
        if off:
            for name in ("attn_norm", "ffn_norm", "post_attn_norm", "post_ffn_norm", "q_norm", "k_norm"):
                w = getattr(lw, name)
                if w is not None:
                    setattr(lw, name, (w + off).astype(np.float32))
    if spec.layout.norm_bias:
        model.final_norm_b = get("model.norm.bias", D)
    if off:
        model.final_norm = (model.final_norm + off).astype(np.float32)
    return model
