"""The table of HuggingFace families: which slmc reads (each a small mapping onto the one decoder
description), and which it refuses, naming the structural feature its decoder lacks."""

from __future__ import annotations

from slmc.errors import SlmcError
from slmc.frontend.hf import gpt2, llama_like
from slmc.frontend.hf.fields import Fields
from slmc.frontend.hf.spec import Family
from slmc.frontend.safe_io import show

FAMILIES: dict[str, Family] = {f.model_type: f for f in (
    Family("Llama", "llama", "LlamaForCausalLM", llama_like.llama, llama_like.weights),
    Family("Mistral", "mistral", "MistralForCausalLM", llama_like.mistral, llama_like.weights),
    Family("Qwen2", "qwen2", "Qwen2ForCausalLM", llama_like.qwen2, llama_like.weights),
    Family("OLMo", "olmo", "OlmoForCausalLM", llama_like.olmo, llama_like.weights),
    Family("Phi-3", "phi3", "Phi3ForCausalLM", llama_like.phi3, llama_like.weights),
    Family("GPT-2", "gpt2", "GPT2LMHeadModel", gpt2.config, gpt2.weights),
)}

_MOE = "a mixture-of-experts FFN (a router choosing experts per token)"
# model_type -> (architecture, the feature slmc's decoder does not have yet)
REFUSED: dict[str, tuple[str, str]] = {
    "gemma": ("GemmaForCausalLM", "a GeGLU FFN (gelu-gated) and the sqrt(hidden_size) embedding multiplier"),
    "gemma2": ("Gemma2ForCausalLM", "attention and final-logit soft-capping, alternating sliding-window layers, "
               "post-attention/post-FFN norms and a GeGLU FFN"),
    "gemma3_text": ("Gemma3ForCausalLM", "qk-norm, alternating local/global attention with two RoPE bases, "
                    "post-attention/post-FFN norms and a GeGLU FFN"),
    "gemma3": ("Gemma3ForConditionalGeneration", "qk-norm, alternating local/global attention with two RoPE "
               "bases, post-attention/post-FFN norms and a GeGLU FFN (and a vision tower)"),
    "qwen3": ("Qwen3ForCausalLM", "qk-norm (an RMSNorm on each head's queries and keys)"),
    "phi": ("PhiForCausalLM", "a parallel attention+MLP residual and partial rotary"),
    "gpt_neo": ("GPTNeoForCausalLM", "unscaled attention scores and local (windowed) attention layers"),
    "gpt_neox": ("GPTNeoXForCausalLM", "a parallel attention+MLP residual and partial rotary"),
    "opt": ("OPTForCausalLM", "a ReLU FFN and learned positions offset by 2"),
    "stablelm": ("StableLmForCausalLM", "partial rotary"),
    "olmo2": ("Olmo2ForCausalLM", "qk-norm and norms after attention and FFN (post-norm)"),
    "granite": ("GraniteForCausalLM", "embedding, residual, attention and logit multipliers"),
    "smollm3": ("SmolLM3ForCausalLM", "NoPE layers (layers without RoPE)"),
    "mixtral": ("MixtralForCausalLM", _MOE),
    "qwen2_moe": ("Qwen2MoeForCausalLM", _MOE),
    "qwen3_moe": ("Qwen3MoeForCausalLM", _MOE),
    "olmoe": ("OlmoeForCausalLM", _MOE),
    "phimoe": ("PhimoeForCausalLM", _MOE),
    "granitemoe": ("GraniteMoeForCausalLM", _MOE),
}
SUPPORTED = ", ".join(f.name for f in FAMILIES.values())


def pick(f: Fields) -> Family:
    """The family config.json names (model_type; absent: from architectures, else Llama), or a one-line
    refusal naming the architecture and the feature slmc lacks."""
    arch = f.strs("architectures") or []
    by_arch = next((fam.model_type for fam in FAMILIES.values() if fam.architecture in arch), "llama")
    model_type = f.str("model_type", by_arch)
    fam = FAMILIES.get(model_type)
    fix = f"slmc reads HuggingFace folders of {SUPPORTED}"
    if fam is None and model_type in REFUSED:
        name, feature = REFUSED[model_type]
        raise SlmcError(f"{f.path}: {name} (model_type {model_type!r}) needs {feature}, which slmc's decoder does "
                        "not have yet", fix)
    if fam is None:
        raise SlmcError(f"{f.path}: model_type {show(model_type)} / architectures {show(arch)} is not a model "
                        "family slmc reads", fix)
    if arch and fam.architecture not in arch:
        raise SlmcError(f"{f.path}: architectures {show(arch)} do not include {fam.architecture}, the causal LM of "
                        f"model_type {model_type!r}", fix)
    return fam
