"""What a HuggingFace family contributes: how its config.json maps onto a DecoderConfig, and how its
tensors map onto the DecoderModel's weights."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from slmc.frontend.decoder import DecoderConfig, DecoderModel
from slmc.frontend.hf.fields import Fields
from slmc.frontend.hf.files import Weights


@dataclass(frozen=True)
class Layout:
    """How a Llama-like family stores a layer, where the families differ."""
    qkv_bias: bool = False       # q, k and v projections have biases (Qwen2; Llama/OLMo attention_bias)
    o_bias: bool = False         # the output projection has one (Llama/OLMo attention_bias)
    mlp_bias: bool = False       # gate, up and down projections have them (Llama mlp_bias)
    fused: bool = False          # one qkv_proj and one gate_up_proj (Phi-3), split here
    norm_weights: bool = True    # False: LayerNorm without weight or bias (OLMo): weight 1, bias 0
    experts: tuple[str, ...] = ()  # an MoE FFN: (module, gate, down, up) names of its experts (hf/moe.py)
    input_norm: bool = True      # False: no norm before attention (OLMo 2's post-norm blocks)
    norm_offset: float = 0.0     # every RMSNorm multiplies by (offset + weight): Gemma's 1, folded into the weight
    norm_bias: bool = False      # LayerNorms with a bias (StableLM)


@dataclass(frozen=True)
class Spec:
    """config.json read: the description, whether the classifier is the embedding, the layout, notes."""
    config: DecoderConfig
    tied: bool
    layout: Layout = Layout()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Family:
    name: str                                        # as users know it: "Phi-3"
    model_type: str                                  # config.json's model_type
    architecture: str                                # the causal-LM class config.json names
    config: Callable[[Fields], Spec]
    weights: Callable[[Spec, Weights], DecoderModel]
