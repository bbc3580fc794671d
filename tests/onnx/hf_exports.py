"""Tiny transformers decoders exported the way a user exports them, for tests/onnx/test_hf_exports.py and
test_onnx_families.py (the families of tests/families: make_family; with past keys and values: export_past).

Llama, Qwen2 (q/k/v biases) and GPT-2 (Conv1D as 2-D Gemm, fused c_attn, learned positions) as transformers 5
builds them, shrunk to 2 layers, width 64, 4 heads (2 KV heads for Llama and Qwen2), vocabulary 256; seeded,
with norms and biases moved off 1 and 0 and the matrices at std 0.15, so the logits are units (1e-4 then means
something) and a misread weight shows. The export is the plain call, `torch.onnx.export(model, (ids,), path)`
(torch's default exporter, dynamo), with the sequence axis static or dynamic; transformers 5 then puts
CumSum, GatherND and (SDPA's NaN guard) IsNaN into the graph. `use_cache` is off: with it, torch cannot
export the DynamicCache transformers returns, unless a wrapper builds it from tensors and flattens it back
(export_past: the past-key-value layout Optimum writes).
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


# ---- the families of tests/families through ONNX (tests/onnx/test_onnx_families.py) ---------------------

# where the real config's window is beyond what the test's 20 positions reach, a shorter one, so that the
# test goes past it (Mistral-7B's 4096 would otherwise mask nothing; GPT-Neo's case already has 8)
ONNX_WINDOWS = {"mistral": 8}


def make_family(name: str, seed: int = -1) -> Any:
    """tests/families' case `name` (transformers from the real config, shrunk), as a user exports it: the
    default attention (SDPA; eager where transformers has no SDPA form, Gemma 2's soft-capping), no cache."""
    from dataclasses import replace

    from families.hf_cases import SUPPORTED, hf_model

    case = SUPPORTED[name]
    if seed < 0:  # tests/families' seed for the case (its index, or one whose greedy run does not meet EOS early)
        seed = case.seed if case.seed >= 0 else list(SUPPORTED).index(name)
    if name in ONNX_WINDOWS:
        case = replace(case, real=case.real | {"sliding_window": ONNX_WINDOWS[name]})
    model = hf_model(case, seed)
    model.config._attn_implementation = "eager" if name == "gemma2" else "sdpa"
    model.config.use_cache = False
    return model


def export_past(model: Any, path: Path, prompt: int = 4, past: int = 3) -> Path:
    """The model exported with past keys and values as inputs and outputs, in the layout Optimum writes
    (input_ids, attention_mask [1, past + seq], position_ids, past_key_values.N.key/value [1, kv_heads,
    past, head_dim] -> logits, present.N.key/value): a plain `torch.onnx.export` of the transformers model
    with use_cache=True, its DynamicCache built from and flattened to tensors by a small wrapper."""
    import torch
    from transformers import DynamicCache

    cfg = model.config
    n = cfg.num_hidden_layers
    kvh = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
    hd = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads

    class WithPast(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = model

        def forward(self, input_ids, attention_mask, position_ids, *kv):  # type: ignore[no-untyped-def]
            cache = DynamicCache(config=cfg)
            for i in range(n):
                cache.update(kv[2 * i], kv[2 * i + 1], i)
            out = self.m(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                         past_key_values=cache, use_cache=True)
            return (out.logits, *[t for layer in out.past_key_values.layers for t in (layer.keys, layer.values)])

    g = torch.Generator().manual_seed(5)
    ids = torch.randint(0, VOCAB, (1, prompt), generator=g)
    kv = [torch.randn(1, kvh, past, hd, generator=g) for _ in range(2 * n)]
    names = [f"past_key_values.{i}.{k}" for i in range(n) for k in ("key", "value")]
    dyn = torch.export.Dim.DYNAMIC
    shapes = {"input_ids": {1: dyn}, "attention_mask": {1: dyn}, "position_ids": {1: dyn},
              "kv": tuple({2: dyn} for _ in range(2 * n))}
    model.config.use_cache = True
    try:
        with torch.no_grad():
            torch.onnx.export(WithPast().eval(), (ids, torch.ones(1, past + prompt, dtype=torch.long),
                                                   torch.arange(past, past + prompt)[None], *kv), str(path),
                              input_names=["input_ids", "attention_mask", "position_ids", *names],
                              output_names=["logits", *[s.replace("past_key_values", "present") for s in names]],
                              dynamic_shapes=shapes)
    finally:
        model.config.use_cache = False
    return path


def ort_logits(path: Path, ids: list[int]) -> np.ndarray:
    """onnxruntime's logits [len(ids), V] of a use_cache=False export, the whole sequence at once."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path))
    feed = {"input_ids": np.array([ids], np.int64), "attention_mask": np.ones((1, len(ids)), np.int64),
            "logits_to_keep": np.array(-1)}
    return sess.run(None, {i.name: feed[i.name] for i in sess.get_inputs()})[0][0]


def ort_logits_with_past(path: Path, ids: list[int], prompt: int) -> np.ndarray:
    """onnxruntime's logits [len(ids), V] of a past-key-value export run as a generator runs it: the prompt
    with an empty past, then one token at a time, feeding each step's present.N.* back as past_key_values.N.*
    (a merged decoder: with use_cache_branch true)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path))
    ins = sess.get_inputs()
    outs = [o.name for o in sess.get_outputs()]
    past = {i.name: np.zeros((1, i.shape[1], 0, i.shape[3]), np.float32) for i in ins if i.name.startswith("past_")}
    rows, pos = [], 0
    for chunk in [ids[:prompt]] + [[t] for t in ids[prompt:]]:
        feed = {"input_ids": np.array([chunk], np.int64), "attention_mask": np.ones((1, pos + len(chunk)), np.int64),
                "position_ids": np.arange(pos, pos + len(chunk), dtype=np.int64)[None],
                "use_cache_branch": np.array([True]), **past}
        res = sess.run(None, {i.name: feed[i.name] for i in ins})
        rows.append(res[0][0])
        pos += len(chunk)
        past = {o.replace("present", "past_key_values"): r for o, r in zip(outs, res) if o.startswith("present")}
    return np.concatenate(rows)


def merge_past(past: Path, out: Path) -> Path:
    """A merged decoder in Optimum's layout (decoder_model_merged.onnx) from a past-key-value export: an `If` on
    a boolean input use_cache_branch, the export itself as then_branch (with past) and, as else_branch, a copy
    whose logits are multiplied by 0 (Optimum's is the decoder without past: any other graph with the same
    outputs would do here, and a wrong one shows if a reader takes that branch)."""
    import onnx
    from onnx import TensorProto, helper

    m = onnx.load(str(past))
    g = m.graph
    then = helper.make_graph(list(g.node), "with_past", [], list(g.output), list(g.initializer))
    prefix = {n: f"else/{n}" for node in g.node for n in node.output} | {t.name: f"else/{t.name}" for t in g.initializer}
    other = []
    for node in g.node:
        c = onnx.NodeProto()
        c.CopyFrom(node)
        c.input[:] = [prefix.get(x, x) for x in node.input]
        c.output[:] = [prefix.get(x, x) for x in node.output]
        other.append(c)
    inits = []
    for t in g.initializer:
        c = onnx.TensorProto()
        c.CopyFrom(t)
        c.name = prefix[t.name]
        inits.append(c)
    zero = helper.make_tensor("else/zero", TensorProto.FLOAT, [], [0.0])
    logits = prefix[g.output[0].name]
    other.append(helper.make_node("Mul", [logits, "else/zero"], ["else/logits_zeroed"]))
    outs = [helper.make_tensor_value_info("else/logits_zeroed", TensorProto.FLOAT, None)]
    outs += [helper.make_tensor_value_info(prefix[o.name], TensorProto.FLOAT, None) for o in g.output[1:]]
    otherwise = helper.make_graph(other, "without_past", [], outs, inits + [zero])
    flag = helper.make_tensor_value_info("use_cache_branch", TensorProto.BOOL, [1])
    node = helper.make_node("If", ["use_cache_branch"], [o.name for o in g.output], name="optimum::if",
                            then_branch=then, else_branch=otherwise)
    merged = helper.make_graph([node], "merged", list(g.input) + [flag], list(g.output))
    model = helper.make_model(merged, opset_imports=list(m.opset_import), ir_version=m.ir_version)
    onnx.save(model, str(out))
    return out
