"""GPT-2 (and DistilGPT-2): LayerNorm with weight and bias, learned positions, a GELU MLP, biases everywhere.

Its linear layers are Conv1D, whose weight is (in, out): transposed here to the (out, in) every other
loader hands on. c_attn is q, k and v side by side along its output axis. Checkpoints written by
transformers name tensors `transformer.h.N...`; the original ones on the Hub name them `h.N...`.
"""

from __future__ import annotations

import numpy as np

from slmc.frontend.decoder import DecoderConfig, DecoderModel, LayerWeights
from slmc.frontend.hf.fields import Fields
from slmc.frontend.hf.files import Weights
from slmc.frontend.hf.spec import Spec

# gelu_new is GPT-2's tanh approximation (NewGELUActivation), the same function as gelu_pytorch_tanh
ACTIVATIONS = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu"}


def config(f: Fields) -> Spec:
    for key, what in (("add_cross_attention", "cross-attention layers"),
                      ("scale_attn_by_inverse_layer_idx", "attention scores divided by the layer index")):
        if f.bool(key, False):
            raise f.refuse(f"{key} true ({what}) is not supported", f"use a model with {key} false")
    if not f.bool("scale_attn_weights", True):
        raise f.refuse("scale_attn_weights false (attention scores not divided by sqrt(head size)) is not supported",
                       "use a model with scale_attn_weights true")
    act = f.str("activation_function", "gelu_new")
    if act not in ACTIVATIONS:
        raise f.refuse(f"activation_function {act!r} is not supported (slmc has {', '.join(ACTIVATIONS)})",
                       "use a model with a GELU MLP")
    dim, n_heads = f.int("n_embd"), f.int("n_head")
    cfg = DecoderConfig(dim=dim, hidden_dim=f.int("n_inner", 4 * dim), n_layers=f.int("n_layer"), n_heads=n_heads,
                        n_kv_heads=n_heads, vocab_size=f.int("vocab_size"), seq_len=f.int("n_positions"),
                        norm="layer", norm_eps=f.num("layer_norm_epsilon", 1e-5), ffn=ACTIVATIONS[act], pos="learned")
    return Spec(cfg, f.bool("tie_word_embeddings", True))


def weights(spec: Spec, get: Weights) -> DecoderModel:
    cfg = spec.config
    D, H, V = cfg.dim, cfg.hidden_dim, cfg.vocab_size
    pre = "transformer." if get.has("transformer.wte.weight") else ""

    def conv(name: str, n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
        return np.ascontiguousarray(get(name + ".weight", n_in, n_out).T), get(name + ".bias", n_out)

    layers = []
    for i in range(cfg.n_layers):
        p = f"{pre}h.{i}."
        qkv, b = conv(p + "attn.c_attn", D, 3 * D)
        wo, bo = conv(p + "attn.c_proj", D, D)
        w1, b1 = conv(p + "mlp.c_fc", D, H)
        w2, b2 = conv(p + "mlp.c_proj", H, D)
        layers.append(LayerWeights(
            attn_norm=get(p + "ln_1.weight", D), attn_norm_b=get(p + "ln_1.bias", D),
            wq=qkv[:D].copy(), wk=qkv[D:2 * D].copy(), wv=qkv[2 * D:].copy(),
            bq=b[:D].copy(), bk=b[D:2 * D].copy(), bv=b[2 * D:].copy(), wo=wo, bo=bo,
            ffn_norm=get(p + "ln_2.weight", D), ffn_norm_b=get(p + "ln_2.bias", D), w1=w1, b1=b1, w2=w2, b2=b2))
    tok = get(pre + "wte.weight", V, D)
    wcls = None if spec.tied else get("lm_head.weight", V, D)
    return DecoderModel(cfg, tok, layers, get(pre + "ln_f.weight", D), wcls, final_norm_b=get(pre + "ln_f.bias", D),
                        pos_emb=get(pre + "wpe.weight", cfg.seq_len, D))
