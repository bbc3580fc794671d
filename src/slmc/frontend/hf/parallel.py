"""The GPT-J-style families: attention and MLP side by side on one residual add (parallel residual), LayerNorm
with bias, partial rotary (rotate_half pairs over the first rotary_dim features of each head), an ungated GELU
MLP, biases everywhere.

- Phi (1, 1.5, 2): one norm shared by attention and MLP (input_layernorm), q/k/v projections and `dense`,
  fc1/fc2, final_layernorm, lm_head with a bias.
- GPT-NeoX (Pythia): two norms; query_key_value fused per head as [q_h, k_h, v_h] (view(.., heads, 3 * hd)),
  embed_in/embed_out; use_parallel_residual false gives the sequential block.
"""

from __future__ import annotations

import numpy as np

from slmc.frontend.decoder import DecoderConfig, DecoderModel, LayerWeights
from slmc.frontend.hf.fields import Fields
from slmc.frontend.hf.files import Weights
from slmc.frontend.hf.gpt2 import ACTIVATIONS
from slmc.frontend.hf.rope_config import partial_rotary, read_rope
from slmc.frontend.hf.spec import Spec


def _config(f: Fields, act_key: str, parallel: bool, eps_key: str = "layer_norm_eps") -> tuple[DecoderConfig, list[str]]:
    if f.bool("qk_layernorm", False):
        raise f.refuse("qk_layernorm true (a LayerNorm per head on q and k) is not supported",
                       "use a model with qk_layernorm false")
    act = f.str(act_key, "gelu_new")
    if act not in ACTIVATIONS:
        raise f.refuse(f"{act_key} {act!r} is not supported (slmc has {', '.join(ACTIVATIONS)})",
                       "use a model with a GELU MLP")
    dim, n_heads = f.int("hidden_size"), f.int("num_attention_heads")
    head_dim = dim // n_heads if n_heads > 0 else 0
    max_pos = f.int("max_position_embeddings")
    theta, scaling, notes = read_rope(f, head_dim, max_pos, partial_ok=True)
    if scaling.kind != "none":
        raise f.refuse(f"RoPE scaling {scaling.kind!r} with partial rotary is not supported",
                       "use a model without rope_scaling")
    cfg = DecoderConfig(dim=dim, hidden_dim=f.int("intermediate_size"), n_layers=f.int("num_hidden_layers"),
                        n_heads=n_heads, n_kv_heads=f.int("num_key_value_heads", n_heads),
                        vocab_size=f.int("vocab_size"), seq_len=max_pos, norm="layer", norm_eps=f.num(eps_key, 1e-5),
                        ffn=ACTIVATIONS[act], rope_theta=theta, rope_interleaved=False,
                        rotary_dim=partial_rotary(f, head_dim), parallel_residual=parallel)
    return cfg, notes


def phi(f: Fields) -> Spec:
    cfg, notes = _config(f, "hidden_act", parallel=True)
    return Spec(cfg, f.bool("tie_word_embeddings", False), notes=tuple(notes))


def gpt_neox(f: Fields) -> Spec:
    if f.has("rotary_pct") and not f.has("partial_rotary_factor") and "partial_rotary_factor" not in f.obj(
            "rope_parameters"):  # configs written before transformers 5
        f.c = dict(f.c, partial_rotary_factor=f.num("rotary_pct"))
    if f.has("rotary_emb_base") and not f.has("rope_theta") and not f.obj("rope_parameters"):
        f.c = dict(f.c, rope_theta=f.num("rotary_emb_base"))
    cfg, notes = _config(f, "hidden_act", parallel=f.bool("use_parallel_residual", True))
    if cfg.n_kv_heads != cfg.n_heads:
        raise f.bad("num_key_value_heads", cfg.n_kv_heads, "num_attention_heads (GPT-NeoX has no GQA)")
    return Spec(cfg, f.bool("tie_word_embeddings", False), notes=tuple(notes))


def phi_weights(spec: Spec, get: Weights) -> DecoderModel:
    cfg = spec.config
    D, H, Q, KV, V = cfg.dim, cfg.hidden_dim, cfg.q_dim, cfg.kv_dim, cfg.vocab_size

    def lin(name: str, n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray]:
        return get(name + ".weight", n_out, n_in), get(name + ".bias", n_out)

    layers = []
    for i in range(cfg.n_layers):
        p = f"model.layers.{i}."
        (wq, bq), (wk, bk), (wv, bv) = (lin(p + f"self_attn.{x}_proj", n, D) for x, n in (("q", Q), ("k", KV), ("v", KV)))
        wo, bo = lin(p + "self_attn.dense", D, Q)
        w1, b1 = lin(p + "mlp.fc1", H, D)
        w2, b2 = lin(p + "mlp.fc2", D, H)
        norm, norm_b = get(p + "input_layernorm.weight", D), get(p + "input_layernorm.bias", D)
        layers.append(LayerWeights(attn_norm=norm, attn_norm_b=norm_b, ffn_norm=norm, ffn_norm_b=norm_b,
                                   wq=wq, wk=wk, wv=wv, wo=wo, w1=w1, w2=w2, bq=bq, bk=bk, bv=bv, bo=bo, b1=b1, b2=b2))
    tok = get("model.embed_tokens.weight", V, D)
    wcls, bcls = (None, None) if spec.tied else lin("lm_head", V, D)
    if spec.tied and get.has("lm_head.bias"):
        bcls = get("lm_head.bias", V)
    return DecoderModel(cfg, tok, layers, get("model.final_layernorm.weight", D), wcls,
                        final_norm_b=get("model.final_layernorm.bias", D), bcls=bcls)


def neox_weights(spec: Spec, get: Weights) -> DecoderModel:
    cfg = spec.config
    D, H, V, n, hd = cfg.dim, cfg.hidden_dim, cfg.vocab_size, cfg.n_heads, cfg.head_dim

    def lin(name: str, n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray]:
        return get(name + ".weight", n_out, n_in), get(name + ".bias", n_out)

    layers = []
    for i in range(cfg.n_layers):
        p = f"gpt_neox.layers.{i}."
        w, b = lin(p + "attention.query_key_value", 3 * D, D)
        w, b = w.reshape(n, 3, hd, D), b.reshape(n, 3, hd)  # rows per head: q, k, v
        wq, wk, wv = (np.ascontiguousarray(w[:, j].reshape(D, D)) for j in range(3))
        bq, bk, bv = (np.ascontiguousarray(b[:, j].reshape(D)) for j in range(3))
        wo, bo = lin(p + "attention.dense", D, D)
        w1, b1 = lin(p + "mlp.dense_h_to_4h", H, D)
        w2, b2 = lin(p + "mlp.dense_4h_to_h", D, H)
        layers.append(LayerWeights(
            attn_norm=get(p + "input_layernorm.weight", D), attn_norm_b=get(p + "input_layernorm.bias", D),
            ffn_norm=get(p + "post_attention_layernorm.weight", D), ffn_norm_b=get(p + "post_attention_layernorm.bias", D),
            wq=wq, wk=wk, wv=wv, wo=wo, w1=w1, w2=w2, bq=bq, bk=bk, bv=bv, bo=bo, b1=b1, b2=b2))
    tok = get("gpt_neox.embed_in.weight", V, D)
    wcls = None if spec.tied else get("embed_out.weight", V, D)
    return DecoderModel(cfg, tok, layers, get("gpt_neox.final_layer_norm.weight", D), wcls,
                        final_norm_b=get("gpt_neox.final_layer_norm.bias", D))
