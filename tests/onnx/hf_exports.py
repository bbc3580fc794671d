"""Tiny transformers decoders exported the way a user exports them, for tests/onnx/test_hf_exports.py.

Llama, Qwen2 (q/k/v biases) and GPT-2 (Conv1D as 2-D Gemm, fused c_attn, learned positions) as transformers 5
builds them, shrunk to 2 layers, width 64, 4 heads (2 KV heads for Llama and Qwen2), vocabulary 256; seeded,
with norms and biases moved off 1 and 0 and the matrices at std 0.15, so the logits are units (1e-4 then means
something) and a misread weight shows. The export is the plain call, `torch.onnx.export(model, (ids,), path)`
(torch's default exporter, dynamo), with the sequence axis static or dynamic; transformers 5 then puts
CumSum, GatherND and (SDPA's NaN guard) IsNaN into the graph. `use_cache` is off: with it, torch cannot
export the DynamicCache transformers returns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

VOCAB, MAX_SEQ = 256, 128
FAMILIES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "llama": ("LlamaConfig", "LlamaForCausalLM", dict(
        hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2, rope_theta=10000.0)),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", dict(
        hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2, rope_theta=1000000.0,
        tie_word_embeddings=True)),
    "gpt2": ("GPT2Config", "GPT2LMHeadModel", dict(n_embd=64, n_head=4, n_positions=MAX_SEQ)),
}


def make(family: str, seed: int = 0) -> Any:
    import torch
    import transformers

    config, cls, sizes = FAMILIES[family]
    layers = {"n_layer": 2} if family == "gpt2" else {"num_hidden_layers": 2, "max_position_embeddings": MAX_SEQ}
    cfg = getattr(transformers, config)(vocab_size=VOCAB, use_cache=False, **layers, **sizes)
    torch.manual_seed(seed)
    model = getattr(transformers, cls)(cfg).eval()
    with torch.no_grad():
        for _, p in model.named_parameters():
            if p.ndim == 1:
                p.add_(0.2 * torch.randn_like(p))
            else:
                p.normal_(0, 0.15)
    return model


def export(model: Any, path: Path, dynamic: bool, mask: bool = False, legacy: bool = False, seq: int = 8) -> Path:
    """The default exporter on a [1, seq] prompt; `dynamic`: the sequence axis symbolic; `mask`: an
    attention_mask passed beside the ids (on the same axes). `legacy`: the TorchScript exporter
    (dynamo=False) with a mask and a dynamic sequence axis: without a mask it fails inside torch
    (transformers 5's packed-sequence check calls torch.diff, which it cannot export), and it traces
    transformers' logits_to_keep as a third input, a scalar index into the sequence."""
    import torch

    ids = torch.randint(0, VOCAB, (1, seq), generator=torch.Generator().manual_seed(5))
    kwargs = {"attention_mask": torch.ones_like(ids)} if mask or legacy else None
    with torch.no_grad():
        if legacy:
            axes = {"input_ids": {1: "seq"}, "attention_mask": {1: "seq"}}
            torch.onnx.export(model, (ids,), str(path), kwargs=kwargs, dynamo=False, dynamic_axes=axes,
                              input_names=["input_ids", "attention_mask"])
            return path
        shapes = None
        if dynamic:
            s = torch.export.Dim("seq", max=MAX_SEQ)
            shapes = {"input_ids": {1: s}, **({"attention_mask": {1: s}} if mask else {})}
        torch.onnx.export(model, (ids,), str(path), kwargs=kwargs, dynamic_shapes=shapes)
    return path


def hf_logits(model: Any, ids: list[int]) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float().numpy()
