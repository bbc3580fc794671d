"""The mixture-of-experts families: Llama-shaped attention, and an FFN of `n_experts` SwiGLU experts with a
router choosing `top_k` per token (frontend/decoder.py MoeWeights). Mixtral names its experts w1/w2/w3
under block_sparse_moe and renormalises the chosen weights; OLMoE and Qwen2-MoE name them like Llama's MLP
under mlp and renormalise only with norm_topk_prob."""

from __future__ import annotations

from dataclasses import replace

from slmc.frontend.decoder import DecoderConfig
from slmc.frontend.hf import features, llama_like
from slmc.frontend.hf.fields import Fields
from slmc.frontend.hf.spec import Layout, Spec

MIXTRAL = ("block_sparse_moe", "w1", "w2", "w3")     # (module, gate, down, up)
OLMOE = ("mlp", "gate_proj", "down_proj", "up_proj")


def mixtral(f: Fields) -> Spec:
    cfg, notes = llama_like._config(f, norm="rms", eps=f.num("rms_norm_eps", 1e-5), window=f.int("sliding_window", 0))
    cfg = _experts_config(f, cfg, "num_local_experts", renorm=True)
    return Spec(cfg, f.bool("tie_word_embeddings", False), Layout(experts=MIXTRAL), tuple(notes))


def qwen2_moe(f: Fields) -> Spec:
    """Qwen2-MoE (and Qwen1.5-MoE): routed experts plus a shared expert gated by a sigmoid."""
    _every_layer_moe(f)
    spec = llama_like.qwen2(f)
    cfg = replace(_experts_config(f, spec.config, "num_experts", renorm=f.bool("norm_topk_prob", False)),
                  expert_hidden_dim=f.int("moe_intermediate_size"),
                  shared_expert_hidden=f.int("shared_expert_intermediate_size", 0))
    return replace(spec, config=cfg, layout=replace(spec.layout, experts=OLMOE))


def qwen3_moe(f: Fields) -> Spec:
    """Qwen3-MoE: Qwen3's block (qk-norm per head) with routed experts, renormalised with norm_topk_prob."""
    _every_layer_moe(f)
    spec = features.qwen3(f)
    cfg = replace(_experts_config(f, spec.config, "num_experts", renorm=f.bool("norm_topk_prob", False)),
                  expert_hidden_dim=f.int("moe_intermediate_size"))
    return replace(spec, config=cfg, layout=replace(spec.layout, experts=OLMOE))


def olmoe(f: Fields) -> Spec:
    """OLMoE: OLMo's block with RMSNorm and qk-norm over the whole q and k; experts renormalised with
    norm_topk_prob."""
    if f.has("clip_qkv"):
        raise f.refuse(f"clip_qkv {f.num('clip_qkv'):g} (q, k and v clamped) is not supported",
                       "use an OLMoE model without clip_qkv")
    bias = f.bool("attention_bias", False)
    cfg, notes = llama_like._config(f, norm="rms", eps=f.num("rms_norm_eps", 1e-5))
    cfg = _experts_config(f, replace(cfg, qk_norm="full"), "num_experts", renorm=f.bool("norm_topk_prob", False))
    return Spec(cfg, f.bool("tie_word_embeddings", False), Layout(qkv_bias=bias, o_bias=bias, experts=OLMOE),
                tuple(notes))


def _every_layer_moe(f: Fields) -> None:
    if f.strs("mlp_only_layers") or f.int("decoder_sparse_step", 1) != 1:
        raise f.refuse("dense layers between the MoE layers (mlp_only_layers, decoder_sparse_step) are not "
                       "supported yet", "use a model whose every layer is MoE")


def _experts_config(f: Fields, cfg: DecoderConfig, count: str, renorm: bool) -> DecoderConfig:
    """The expert count under `count`, or the other name transformers writes it under (num_experts and
    num_local_experts are aliases in some configs)."""
    other = "num_local_experts" if count == "num_experts" else "num_experts"
    n = f.int(count) if f.has(count) or not f.has(other) else f.int(other)
    return replace(cfg, n_experts=n, top_k=f.int("num_experts_per_tok"), moe_renorm=renorm)

