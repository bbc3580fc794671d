"""The table of HuggingFace families: which slmc reads (each a small mapping onto the one decoder
description), and which it refuses, naming the structural feature its decoder lacks."""

from __future__ import annotations

from slmc.errors import SlmcError
from slmc.frontend.hf import features, gpt2, learned, llama_like, moe, parallel
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
    Family("Qwen3", "qwen3", "Qwen3ForCausalLM", features.qwen3, features.weights),
    Family("OLMo 2", "olmo2", "Olmo2ForCausalLM", features.olmo2, features.weights),
    Family("StableLM", "stablelm", "StableLmForCausalLM", features.stablelm, features.weights),
    Family("Phi", "phi", "PhiForCausalLM", parallel.phi, parallel.phi_weights),
    Family("GPT-NeoX", "gpt_neox", "GPTNeoXForCausalLM", parallel.gpt_neox, parallel.neox_weights),
    Family("OPT", "opt", "OPTForCausalLM", learned.opt, learned.opt_weights),
    Family("GPT-Neo", "gpt_neo", "GPTNeoForCausalLM", learned.gpt_neo, learned.gpt_neo_weights),
    Family("Granite", "granite", "GraniteForCausalLM", features.granite, features.weights),
    Family("Gemma", "gemma", "GemmaForCausalLM", features.gemma, features.weights),
    Family("Gemma 2", "gemma2", "Gemma2ForCausalLM", features.gemma2, features.weights),
    Family("Gemma 3", "gemma3_text", "Gemma3ForCausalLM", features.gemma3, features.weights),
    Family("SmolLM3", "smollm3", "SmolLM3ForCausalLM", features.smollm3, features.weights),
    Family("Mixtral", "mixtral", "MixtralForCausalLM", moe.mixtral, llama_like.weights),
    Family("Qwen2-MoE", "qwen2_moe", "Qwen2MoeForCausalLM", moe.qwen2_moe, llama_like.weights),
    Family("Qwen3-MoE", "qwen3_moe", "Qwen3MoeForCausalLM", moe.qwen3_moe, features.weights),
    Family("OLMoE", "olmoe", "OlmoeForCausalLM", moe.olmoe, features.weights),
)}

# model_type -> (architecture, the feature slmc's decoder does not have yet)
REFUSED: dict[str, tuple[str, str]] = {
    "gemma3": ("Gemma3ForConditionalGeneration", "a vision tower (its text model, model_type gemma3_text, "
               "is read)"),
    "phimoe": ("PhimoeForCausalLM", "sparsemixer routing (its experts' top-2 weights are not a softmax's)"),
    "granitemoe": ("GraniteMoeForCausalLM", "embedding, residual, attention and logit multipliers around its experts"),
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
