"""The families with learned absolute positions besides GPT-2: LayerNorm with bias, an ungated MLP.

- OPT: ReLU, biases everywhere, positions read from embed_positions at row position + 2 (OPT's offset: the
  loader keeps rows 2 onwards, so position p reads row p), tied lm_head. Pre-LN only (do_layer_norm_before).
- GPT-Neo (TinyStories-1M..33M): GPT-2's block without the 1/sqrt(head_dim) of the scores (softmax_scale 1),
  q/k/v without biases, Linear (not Conv1D) MLP, and `local` layers attending to the last window_size positions.
"""

from __future__ import annotations

import numpy as np

from slmc.frontend.decoder import DecoderConfig, DecoderModel, LayerWeights
from slmc.frontend.hf.fields import Fields
from slmc.frontend.hf.files import Weights
from slmc.frontend.hf.gpt2 import ACTIVATIONS
from slmc.frontend.hf.spec import Layout, Spec

OPT_OFFSET = 2
OPT_ACTS = {"relu": "relu", **ACTIVATIONS}


def opt(f: Fields) -> Spec:
    if not f.bool("do_layer_norm_before", True):
        raise f.refuse("do_layer_norm_before false (post-LN blocks, OPT-350m) is not supported",
                       "use an OPT model with do_layer_norm_before true")
    dim = f.int("hidden_size")
    if f.int("word_embed_proj_dim", dim) != dim:
        raise f.refuse("word_embed_proj_dim != hidden_size (project_in/project_out) is not supported",
                       "use an OPT model whose embedding width is hidden_size")
    if f.bool("_remove_final_layer_norm", False):
        raise f.refuse("_remove_final_layer_norm true is not supported", "use an OPT model with a final LayerNorm")
    act = f.str("activation_function", "relu")
    if act not in OPT_ACTS:
        raise f.refuse(f"activation_function {act!r} is not supported (slmc has {', '.join(OPT_ACTS)})",
                       "use a model with a ReLU or GELU MLP")
    n_heads = f.int("num_attention_heads")
    cfg = DecoderConfig(dim=dim, hidden_dim=f.int("ffn_dim"), n_layers=f.int("num_hidden_layers"), n_heads=n_heads,
                        n_kv_heads=n_heads, vocab_size=f.int("vocab_size"), seq_len=f.int("max_position_embeddings"),
                        norm="layer", norm_eps=1e-5, ffn=OPT_ACTS[act], pos="learned")
    bias, affine = f.bool("enable_bias", True), f.bool("layer_norm_elementwise_affine", True)
    return Spec(cfg, f.bool("tie_word_embeddings", True), Layout(qkv_bias=bias, norm_weights=affine),
                (f"learned positions: embed_positions rows from {OPT_OFFSET} (OPT's offset)",))


def opt_weights(spec: Spec, get: Weights) -> DecoderModel:
    cfg, bias, affine = spec.config, spec.layout.qkv_bias, spec.layout.norm_weights
    D, H, V = cfg.dim, cfg.hidden_dim, cfg.vocab_size

    def lin(name: str, n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray | None]:
        return get(name + ".weight", n_out, n_in), get(name + ".bias", n_out) if bias else None

    def norm(name: str) -> tuple[np.ndarray, np.ndarray]:
        if not affine:
            return np.ones(D, np.float32), np.zeros(D, np.float32)
        return get(name + ".weight", D), get(name + ".bias", D)

    layers = []
    for i in range(cfg.n_layers):
        p = f"model.decoder.layers.{i}."
        (wq, bq), (wk, bk), (wv, bv), (wo, bo) = (lin(p + f"self_attn.{x}_proj", D, D) for x in ("q", "k", "v", "out"))
        w1, b1 = lin(p + "fc1", H, D)
        w2, b2 = lin(p + "fc2", D, H)
        (an, anb), (fn, fnb) = norm(p + "self_attn_layer_norm"), norm(p + "final_layer_norm")
        layers.append(LayerWeights(attn_norm=an, attn_norm_b=anb, ffn_norm=fn, ffn_norm_b=fnb, wq=wq, wk=wk, wv=wv,
                                   wo=wo, w1=w1, w2=w2, bq=bq, bk=bk, bv=bv, bo=bo, b1=b1, b2=b2))
    tok = get("model.decoder.embed_tokens.weight", V, D)
    pos = get("model.decoder.embed_positions.weight", cfg.seq_len + OPT_OFFSET, D)[OPT_OFFSET:].copy()
    wcls = None if spec.tied else get("lm_head.weight", V, D)
    fw, fb = norm("model.decoder.final_layer_norm")
    return DecoderModel(cfg, tok, layers, fw, wcls, final_norm_b=fb, pos_emb=pos)


def gpt_neo(f: Fields) -> Spec:
    act = f.str("activation_function", "gelu_new")
    if act not in ACTIVATIONS:
        raise f.refuse(f"activation_function {act!r} is not supported (slmc has {', '.join(ACTIVATIONS)})",
                       "use a model with a GELU MLP")
    dim, n_heads, n = f.int("hidden_size"), f.int("num_heads"), f.int("num_layers")
    kinds = f.strs("attention_layers")
    if kinds is None:  # attention_types: [[["global", "local"], repeats], ...]
        kinds = [k for pattern, reps in f.c.get("attention_types") or [] for _ in range(reps) for k in pattern]
    if len(kinds) != n or any(k not in ("global", "local") for k in kinds):
        raise f.bad("attention_layers", kinds, f"{n} entries of 'global' or 'local'")
    local = tuple(k == "local" for k in kinds)
    window = f.int("window_size", 256) if any(local) else 0
    cfg = DecoderConfig(dim=dim, hidden_dim=f.int("intermediate_size", 4 * dim), n_layers=n, n_heads=n_heads,
                        n_kv_heads=n_heads, vocab_size=f.int("vocab_size"), seq_len=f.int("max_position_embeddings"),
                        norm="layer", norm_eps=f.num("layer_norm_epsilon", 1e-5), ffn=ACTIVATIONS[act], pos="learned",
                        attn_scale=1.0, sliding_window=window, window_layers=local if window and not all(local) else ())
    return Spec(cfg, f.bool("tie_word_embeddings", True))


def gpt_neo_weights(spec: Spec, get: Weights) -> DecoderModel:
    cfg = spec.config
    D, H, V = cfg.dim, cfg.hidden_dim, cfg.vocab_size
    layers = []
    for i in range(cfg.n_layers):
        p = f"transformer.h.{i}."
        a = p + "attn.attention."
        layers.append(LayerWeights(
            attn_norm=get(p + "ln_1.weight", D), attn_norm_b=get(p + "ln_1.bias", D),
            wq=get(a + "q_proj.weight", D, D), wk=get(a + "k_proj.weight", D, D), wv=get(a + "v_proj.weight", D, D),
            wo=get(a + "out_proj.weight", D, D), bo=get(a + "out_proj.bias", D),
            ffn_norm=get(p + "ln_2.weight", D), ffn_norm_b=get(p + "ln_2.bias", D),
            w1=get(p + "mlp.c_fc.weight", H, D), b1=get(p + "mlp.c_fc.bias", H),
            w2=get(p + "mlp.c_proj.weight", D, H), b2=get(p + "mlp.c_proj.bias", D)))
    tok = get("transformer.wte.weight", V, D)
    wcls = None if spec.tied else get("lm_head.weight", V, D)
    return DecoderModel(cfg, tok, layers, get("transformer.ln_f.weight", D), wcls,
                        final_norm_b=get("transformer.ln_f.bias", D), pos_emb=get("transformer.wpe.weight", cfg.seq_len, D))
