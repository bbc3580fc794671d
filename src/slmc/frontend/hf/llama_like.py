"""The Llama-shaped families: pre-norm blocks, RoPE with rotate_half pairs, a gated FFN, names under
`model.layers.N`. What differs is data (spec.Layout) and a few config.json fields, read here per family.

HF's q/k projections are already permuted for rotate_half RoPE (pairs (i, i + head_dim/2)), so the weights
are kept as stored and the config says `rope_interleaved=False`; permuting them back to llama2.c's pairs
would be a second place where a head-layout bug could hide.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from slmc.frontend.decoder import DecoderConfig, DecoderModel, LayerWeights, MoeWeights
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
    window, sliding = 0, ()
    if f.bool("use_sliding_window", False):
        n = f.int("num_hidden_layers")
        first = f.int("max_window_layers", 28)
        sliding = window_layers(f, ["sliding_attention" if i >= first else "full_attention" for i in range(n)])
        if any(sliding):
            window = f.int("sliding_window", 4096)
    cfg, notes = _config(f, norm="rms", eps=f.num("rms_norm_eps", 1e-6), window=window)
    cfg = replace(cfg, window_layers=sliding if window and not all(sliding) else ())
    return Spec(cfg, f.bool("tie_word_embeddings", False), Layout(qkv_bias=True), tuple(notes))


def window_layers(f: Fields, default: list[str]) -> tuple[bool, ...]:
    """config.json's layer_types (else `default`) as the layers with a sliding window."""
    types = f.strs("layer_types") or default
    odd = [t for t in types if t not in ("full_attention", "sliding_attention")]
    if odd:
        raise f.bad("layer_types", odd[0], "'full_attention' or 'sliding_attention'")
    if len(types) != f.int("num_hidden_layers"):
        raise f.bad("layer_types", types, "one entry per layer")
    return tuple(t == "sliding_attention" for t in types)


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
            rope_kinds: tuple[str, ...] = SCALINGS, acts: dict[str, str] | None = None, act_key: str = "hidden_act",
            partial_rotary: bool = False) -> tuple[DecoderConfig, list[str]]:
    """`acts`: the family's gated activations by config name (default SwiGLU's silu); `partial_rotary`: the
    family's code rotates only partial_rotary_factor of each head (hf/features.py)."""
    acts = acts or {"silu": "swiglu"}
    act = f.str(act_key, "silu")
    if act not in acts:
        gated = {"swiglu": "SwiGLU", "geglu": "GeGLU", "geglu_tanh": "GeGLU"}
        kinds = ", ".join(f"{gated[v]} ({k})" for k, v in acts.items())
        raise f.refuse(f"{act_key} {act!r} is not supported: the gated FFN is {kinds} only",
                       f"use a model with {act_key} {next(iter(acts))}")
    dim, n_heads = f.int("hidden_size"), f.int("num_attention_heads")
    n_kv = f.int("num_key_value_heads", n_heads)
    head_dim = f.int("head_dim", dim // n_heads if n_heads > 0 else 0)
    if f.has("head_dim") and head_dim <= 0:
        raise f.bad("head_dim", head_dim, "a positive integer")
    max_pos = f.int("max_position_embeddings")
    theta, scaling, notes = read_rope(f, head_dim, max_pos, rope_aliases, rope_kinds, partial_rotary)
    if window < 0:
        raise f.bad("sliding_window", window, "a positive integer")
    seq_len = max_pos
    if scaling.kind == "longrope" and 0 < scaling.original_max_positions < seq_len:
        seq_len = scaling.original_max_positions
        notes.append(f"longrope: the context is capped at original_max_position_embeddings {seq_len}, beyond which "
                     "transformers switches to long_factor for the whole sequence")
    cfg = DecoderConfig(dim=dim, hidden_dim=f.int("intermediate_size"), n_layers=f.int("num_hidden_layers"),
                        n_heads=n_heads, n_kv_heads=n_kv, vocab_size=f.int("vocab_size"), seq_len=seq_len,
                        norm=norm, norm_eps=eps, ffn=acts[act], rope_theta=theta, rope_interleaved=False,
                        head_dim_=0 if head_dim * n_heads == dim else head_dim, rope_scaling_=scaling,
                        sliding_window=window)
    return cfg, notes


def experts(get: Weights, prefix: str, cfg: DecoderConfig, names: tuple[str, ...]) -> MoeWeights:
    """A mixture-of-experts FFN (hf/moe.py): layer `prefix`'s router and experts, names (module, gate, down, up)."""
    D, H, E = cfg.dim, cfg.moe_hidden, cfg.n_experts
    module, gate, down, up = names
    p = f"{prefix}{module}."
    moe = MoeWeights(router=get(p + "gate.weight", E, D),
                     w1=[get(f"{p}experts.{e}.{gate}.weight", H, D) for e in range(E)],
                     w2=[get(f"{p}experts.{e}.{down}.weight", D, H) for e in range(E)],
                     w3=[get(f"{p}experts.{e}.{up}.weight", H, D) for e in range(E)])
    S = cfg.shared_expert_hidden
    if S:  # Qwen2-MoE's shared expert and its gate
        moe.shared_w1 = get(p + f"shared_expert.{gate}.weight", S, D)
        moe.shared_w2 = get(p + f"shared_expert.{down}.weight", D, S)
        moe.shared_w3 = get(p + f"shared_expert.{up}.weight", S, D)
        moe.shared_gate = get(p + "shared_expert_gate.weight", 1, D)
    return moe


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
            if not lay.experts:
                w1, b1 = proj(p + "mlp.gate_proj", H, D, lay.mlp_bias)
                w3, b3 = proj(p + "mlp.up_proj", H, D, lay.mlp_bias)
        wo, bo = proj(p + "self_attn.o_proj", D, Q, lay.o_bias)
        moe = experts(get, p, cfg, lay.experts) if lay.experts else None  # the FFN is a mixture of experts
        if moe is not None:
            w1 = w2 = w3 = b1 = b2 = b3 = None
        else:
            w2, b2 = proj(p + "mlp.down_proj", D, H, lay.mlp_bias)
        layers.append(LayerWeights(attn_norm=norm(p + "input_layernorm") if lay.input_norm else None, wq=wq, wk=wk, wv=wv, wo=wo,
                                   ffn_norm=norm(p + "post_attention_layernorm"), w1=w1, w2=w2, w3=w3,
                                   bq=bq, bk=bk, bv=bv, bo=bo, b1=b1, b2=b2, b3=b3, moe=moe))
    tok = get("model.embed_tokens.weight", V, D)
    # a tied checkpoint may still store lm_head (a copy); the config decides, as transformers does
    wcls = None if spec.tied else get("lm_head.weight", V, D)
    return DecoderModel(cfg, tok, layers, norm("model.norm"), wcls)
