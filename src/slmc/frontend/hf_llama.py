"""HuggingFace Llama folders (config.json + model.safetensors, or shards with an index) as a DecoderModel.

HF's q/k projections are already permuted for rotate_half RoPE (pairs (i, i + head_dim/2)), so the weights
are kept as stored and the config says `rope_interleaved=False`; permuting them back to llama2.c's pairs
would be a second place where a head-layout bug could hide.

Everything read from the folder is untrusted: config.json fields are type-checked (a JSON string "false"
is not a boolean), shard names must stay inside the folder, and safetensors headers are validated before
any tensor is mapped (safetensors_file.py).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from slmc.errors import SlmcError
from slmc.frontend.decoder import DecoderConfig, DecoderModel, LayerWeights
from slmc.frontend.safe_io import load_json, show
from slmc.frontend.safetensors_file import Entry, Tensors, read_header

_FIX = "re-download the model"


def load(folder: Path) -> DecoderModel:
    folder = Path(folder)
    if not folder.is_dir():
        raise SlmcError(f"{folder} is not a folder", "pass the HuggingFace model folder (with config.json)")
    cfg_path = folder / "config.json"
    cfg, tied = _config(load_json(cfg_path, "config file", "a HuggingFace model folder needs config.json"),
                        cfg_path)
    tensors = Tensors(_index(folder), folder)

    def get(name: str, *shape: int) -> np.ndarray:
        return tensors.get(name, shape)

    D, H, KV, Q, V = cfg.dim, cfg.hidden_dim, cfg.kv_dim, cfg.q_dim, cfg.vocab_size
    layers = []
    for i in range(cfg.n_layers):
        p = f"model.layers.{i}."
        layers.append(LayerWeights(
            attn_norm=get(p + "input_layernorm.weight", D),
            wq=get(p + "self_attn.q_proj.weight", Q, D),
            wk=get(p + "self_attn.k_proj.weight", KV, D),
            wv=get(p + "self_attn.v_proj.weight", KV, D),
            wo=get(p + "self_attn.o_proj.weight", D, Q),
            ffn_norm=get(p + "post_attention_layernorm.weight", D),
            w1=get(p + "mlp.gate_proj.weight", H, D),
            w2=get(p + "mlp.down_proj.weight", D, H),
            w3=get(p + "mlp.up_proj.weight", H, D)))
    tok = get("model.embed_tokens.weight", V, D)
    final = get("model.norm.weight", D)
    # a tied checkpoint may still store lm_head (a copy); the config decides, as transformers does
    wcls = None if tied else get("lm_head.weight", V, D)
    return DecoderModel(cfg, tok, layers, final, wcls, source=f"huggingface llama {folder.name}")


# config ---------------------------------------------------------------------------------------------------

_MISSING = object()


class _Fields:
    """Typed reads of config.json: each field is checked against the JSON type it must have, because
    Python's truthiness would take "tie_word_embeddings": "false" as true and 64.0 as a width.
    A null counts as absent, as it does for transformers' configs."""

    def __init__(self, c: dict[str, Any], path: Path) -> None:
        self.c, self.path = c, path

    def _bad(self, key: str, v: object, want: str) -> SlmcError:
        return SlmcError(f"{self.path}: field {key!r} is {show(v)}, expected {want}", "fix config.json")

    def _get(self, key: str, default: object) -> object:
        v = self.c.get(key)
        if v is None:
            if default is _MISSING:
                raise SlmcError(f"{self.path}: field {key!r} is missing, expected an integer",
                                "the config is incomplete")
            return default
        return v

    def int(self, key: str, default: object = _MISSING) -> int:
        v = self._get(key, default)
        if not isinstance(v, int) or isinstance(v, bool):
            raise self._bad(key, v, "an integer")
        return v

    def bool(self, key: str, default: bool) -> bool:
        v = self._get(key, default)
        if not isinstance(v, bool):
            raise self._bad(key, v, "true or false")
        return v

    def num(self, key: str, default: float, within: dict[str, Any] | None = None) -> float:
        src = self.c if within is None else within
        v = src.get(key)
        v = default if v is None else v
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v <= 0:
            raise self._bad(key, v, "a positive number")
        return float(v)

    def str(self, key: str, default: str) -> str:
        v = self._get(key, default)
        if not isinstance(v, str):
            raise self._bad(key, v, "a string")
        return v

    def obj(self, key: str) -> dict[str, Any]:
        v = self._get(key, {})
        if not isinstance(v, dict):
            raise self._bad(key, v, "an object")
        return v


def _config(c: dict[str, Any], path: Path) -> tuple[DecoderConfig, bool]:
    """The DecoderConfig, and whether the classifier is tied to the embedding."""
    f = _Fields(c, path)
    arch = c.get("architectures")
    arch = ["LlamaForCausalLM"] if arch is None or arch == [] else arch  # absent or empty: a plain Llama
    if not isinstance(arch, list) or not all(isinstance(a, str) for a in arch):
        raise f._bad("architectures", arch, "a list of names")
    model_type = f.str("model_type", "llama")
    if model_type != "llama" or "LlamaForCausalLM" not in arch:
        raise SlmcError(f"{path}: model_type {show(model_type)} / architectures {show(arch)} is not a Llama "
                        "causal LM", "only LlamaForCausalLM folders are supported; export others to ONNX")
    rope = f.obj("rope_parameters")  # transformers >= 5 folds rope_theta and rope_type in here
    scaling = f.obj("rope_scaling")
    rope_type = rope.get("rope_type", "default")
    if scaling or rope_type != "default":
        raise SlmcError(f"{path}: rope_scaling {show(scaling or rope)} is set; only plain RoPE is supported",
                        "use a model without RoPE scaling (or remove it from config.json if the context fits)")
    for key in ("attention_bias", "mlp_bias"):
        if f.bool(key, False):
            raise SlmcError(f"{path}: {key} is true; Llama projections without bias are supported",
                            "use a model without projection biases")
    act = f.str("hidden_act", "silu")
    if act != "silu":
        raise SlmcError(f"{path}: hidden_act {show(act)} is not supported (SwiGLU needs 'silu')",
                        "use a Llama model with hidden_act silu")
    dim, n_heads = f.int("hidden_size"), f.int("num_attention_heads")
    n_kv = f.int("num_key_value_heads", n_heads)
    head_dim = f.int("head_dim", dim // n_heads if n_heads > 0 else 0)
    if "head_dim" in c and c["head_dim"] is not None and head_dim <= 0:
        raise f._bad("head_dim", head_dim, "a positive integer")
    theta = f.num("rope_theta", f.num("rope_theta", 10000.0), within=rope)
    eps = f.num("rms_norm_eps", 1e-6)
    cfg = DecoderConfig(dim=dim, hidden_dim=f.int("intermediate_size"), n_layers=f.int("num_hidden_layers"),
                        n_heads=n_heads, n_kv_heads=n_kv, vocab_size=f.int("vocab_size"),
                        seq_len=f.int("max_position_embeddings"), norm_eps=eps, rope_theta=theta,
                        rope_interleaved=False, head_dim_=0 if head_dim * n_heads == dim else head_dim)
    try:
        cfg.validate()
    except SlmcError as e:
        raise SlmcError(f"{path}: {e.cause}", e.fix) from None
    return cfg, f.bool("tie_word_embeddings", False)  # LlamaConfig's default is untied


# safetensors ----------------------------------------------------------------------------------------------

def _shard_name(name: str, index: Path) -> str:
    """A shard named by the index must be a plain file name in the folder: no path, no '..'."""
    if name in ("", ".", "..") or Path(name).name != name or "\\" in name or "\0" in name:
        raise SlmcError(f"{index}: shard name {show(name)} points outside the folder", _FIX)
    return name


def _index(folder: Path) -> dict[str, Entry]:
    single = folder / "model.safetensors"
    index = folder / "model.safetensors.index.json"
    if index.exists():
        wmap = load_json(index, "weights index", _FIX).get("weight_map")
        if not isinstance(wmap, dict) or not all(isinstance(v, str) for v in wmap.values()):
            raise SlmcError(f"{index} has no weight_map of tensor names to files", _FIX)
        files = sorted({_shard_name(v, index) for v in wmap.values()})
    elif single.exists():
        wmap, files = {}, [single.name]
    else:
        raise SlmcError(f"{folder} has neither model.safetensors nor model.safetensors.index.json",
                        "download the safetensors weights (PyTorch .bin files are not read)")
    out: dict[str, Entry] = {}
    for name in files:
        for tname, e in read_header(folder / name).items():
            if tname in out:  # which copy would be meant is a guess; refuse instead
                raise SlmcError(f"{folder}: tensor {show(tname)} is in both {out[tname].file.name} and {name}", _FIX)
            out[tname] = e
    for tname, shard in wmap.items():
        if tname in out and out[tname].file.name != shard:
            raise SlmcError(f"{index}: tensor {show(tname)} is listed in {shard} but stored in "
                            f"{out[tname].file.name}", _FIX)
    return out
