"""The Llama-shaped families: pre-norm blocks, RoPE with rotate_half pairs, a gated FFN, names under
`model.layers.N`. What differs is data (spec.Layout) and a few config.json fields, read here per family.

HF's q/k projections are already permuted for rotate_half RoPE (pairs (i, i + head_dim/2)), so the weights
are kept as stored and the config says `rope_interleaved=False`; permuting them back to llama2.c's pairs
would be a second place where a head-layout bug could hide.
"""

from __future__ import annotations

import numpy as np

from slmc.frontend.decoder import DecoderConfig, DecoderModel, LayerWeights
from slmc.frontend.hf.fields import Fields
from slmc.frontend.hf.files import Weights
from slmc.frontend.hf.rope_config import SCALINGS, read_rope
from slmc.frontend.hf.spec import Layout, Spec


def llama(f: Fields) -> Spec:
    """Llama 1/2/3.x, SmolLM/SmolLM2, TinyLlama, MobileLLM."""
    bias = f.bool("attention_bias", False)
    cfg, notes = _config(f, norm="rms", eps=f.num("rms_norm_eps", 1e-6))
    return Spec(cfg, f.bool("tie_word_embeddings", False),
                Layout(qkv_bias=bias, o_bias=bias, mlp_bias=f.bool("mlp_bias", False)), tuple(notes))


def mistral(f: Fields) -> Spec:
    cfg, notes = _config(f, norm="rms", eps=f.num("rms_norm_eps", 1e-6), window=f.int("sliding_window", 0))
    return Spec(cfg, f.bool("tie_word_embeddings", False), Layout(), tuple(notes))


def qwen2(f: Fields) -> Spec:
    """Qwen2 and Qwen2.5: biases on q, k and v only; a window only with use_sliding_window, and there only on
    the layers layer_types (or max_window_layers) marks as sliding."""
    window = 0
    if f.bool("use_sliding_window", False):
        n = f.int("num_hidden_layers")
        first = f.int("max_window_layers", 28)
        types = f.strs("layer_types") or ["sliding_attention" if i >= first else "full_attention" for i in range(n)]
        odd = [t for t in types if t not in ("full_attention", "sliding_attention")]
        if odd:
            raise f.bad("layer_types", odd[0], "'full_attention' or 'sliding_attention'")
        if "sliding_attention" in types:
            window = f.int("sliding_window", 4096)
    cfg, notes = _config(f, norm="rms", eps=f.num("rms_norm_eps", 1e-6), window=window)
    return Spec(cfg, f.bool("tie_word_embeddings", False), Layout(qkv_bias=True), tuple(notes))


def olmo(f: Fields) -> Spec:
    """OLMo (1): LayerNorm without weight or bias, with transformers' fixed eps of 1e-5."""
    if f.has("clip_qkv"):
        raise f.refuse(f"clip_qkv {f.num('clip_qkv'):g} (q, k and v clamped) is not supported",
                       "use an OLMo model without clip_qkv")
    bias = f.bool("attention_bias", False)
    cfg, notes = _config(f, norm="layer", eps=1e-5)
    return Spec(cfg, f.bool("tie_word_embeddings", False), Layout(qkv_bias=bias, o_bias=bias, norm_weights=False),
                tuple(notes))


def phi3(f: Fields) -> Spec:
    """Phi-3 / Phi-3.5 (mini): fused qkv_proj and gate_up_proj; LongRoPE (old names "su", "yarn")."""
    cfg, notes = _config(f, norm="rms", eps=f.num("rms_norm_eps", 1e-5), window=f.int("sliding_window", 0),
                         rope_aliases={"su": "longrope", "yarn": "longrope"}, rope_kinds=("longrope",))
    return Spec(cfg, f.bool("tie_word_embeddings", False), Layout(fused=True), tuple(notes))


def _config(f: Fields, norm: str, eps: float, window: int = 0, rope_aliases: dict[str, str] | None = None,
            rope_kinds: tuple[str, ...] = SCALINGS) -> tuple[DecoderConfig, list[str]]:
    act = f.str("hidden_act", "silu")
    if act != "silu":
        raise f.refuse(f"hidden_act {act!r} is not supported: the gated FFN is SwiGLU (silu) only",
                       "use a model with hidden_act silu")
    dim, n_heads = f.int("hidden_size"), f.int("num_attention_heads")
    n_kv = f.int("num_key_value_heads", n_heads)
    head_dim = f.int("head_dim", dim // n_heads if n_heads > 0 else 0)
    if f.has("head_dim") and head_dim <= 0:
        raise f.bad("head_dim", head_dim, "a positive integer")
    max_pos = f.int("max_position_embeddings")
    theta, scaling, notes = read_rope(f, head_dim, max_pos, rope_aliases, rope_kinds)
    if window < 0:
        raise f.bad("sliding_window", window, "a positive integer")
    seq_len = max_pos
    if 0 < window < seq_len:
        seq_len = window
        notes.append(f"sliding_window {window}: the context is capped at {window} positions, where full "
                     "attention equals the window's (slmc has no windowed attention yet)")
    if scaling.kind == "longrope" and 0 < scaling.original_max_positions < seq_len:
        seq_len = scaling.original_max_positions
        notes.append(f"longrope: the context is capped at original_max_position_embeddings {seq_len}, beyond which "
                     "transformers switches to long_factor for the whole sequence")
    cfg = DecoderConfig(dim=dim, hidden_dim=f.int("intermediate_size"), n_layers=f.int("num_hidden_layers"),
                        n_heads=n_heads, n_kv_heads=n_kv, vocab_size=f.int("vocab_size"), seq_len=seq_len,
                        norm=norm, norm_eps=eps, rope_theta=theta, rope_interleaved=False,
                        head_dim_=0 if head_dim * n_heads == dim else head_dim, rope_scaling_=scaling,
                        sliding_window=window)
    return cfg, notes


def weights(spec: Spec, get: Weights) -> DecoderModel:
    cfg, lay = spec.config, spec.layout
    D, H, KV, Q, V = cfg.dim, cfg.hidden_dim, cfg.kv_dim, cfg.q_dim, cfg.vocab_size

    def proj(name: str, n_out: int, n_in: int, bias: bool) -> tuple[np.ndarray, np.ndarray | None]:
        return get(name + ".weight", n_out, n_in), get(name + ".bias", n_out) if bias else None

    def norm(name: str) -> np.ndarray:
        return get(name + ".weight", D) if lay.norm_weights else np.ones(D, np.float32)

    layers = []
    for i in range(cfg.n_layers):
        p = f"model.layers.{i}."
        if lay.fused:  # rows: q, then k, then v; gate, then up (Phi3MLP chunks gate first)
            qkv = get(p + "self_attn.qkv_proj.weight", Q + 2 * KV, D)
            wq, wk, wv = qkv[:Q].copy(), qkv[Q:Q + KV].copy(), qkv[Q + KV:].copy()
            gate_up = get(p + "mlp.gate_up_proj.weight", 2 * H, D)
            w1, w3 = gate_up[:H].copy(), gate_up[H:].copy()
            bq = bk = bv = b1 = b3 = None
        else:
            wq, bq = proj(p + "self_attn.q_proj", Q, D, lay.qkv_bias)
            wk, bk = proj(p + "self_attn.k_proj", KV, D, lay.qkv_bias)
            wv, bv = proj(p + "self_attn.v_proj", KV, D, lay.qkv_bias)
            w1, b1 = proj(p + "mlp.gate_proj", H, D, lay.mlp_bias)
            w3, b3 = proj(p + "mlp.up_proj", H, D, lay.mlp_bias)
        wo, bo = proj(p + "self_attn.o_proj", D, Q, lay.o_bias)
        w2, b2 = proj(p + "mlp.down_proj", D, H, lay.mlp_bias)
        layers.append(LayerWeights(attn_norm=norm(p + "input_layernorm"), wq=wq, wk=wk, wv=wv, wo=wo,
                                   ffn_norm=norm(p + "post_attention_layernorm"), w1=w1, w2=w2, w3=w3,
                                   bq=bq, bk=bk, bv=bv, bo=bo, b1=b1, b2=b2, b3=b3))
    tok = get("model.embed_tokens.weight", V, D)
    # a tied checkpoint may still store lm_head (a copy); the config decides, as transformers does
    wcls = None if spec.tied else get("lm_head.weight", V, D)
    return DecoderModel(cfg, tok, layers, norm("model.norm"), wcls)
