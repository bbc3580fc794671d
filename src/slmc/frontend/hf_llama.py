"""HuggingFace Llama folders (config.json + model.safetensors, or shards with an index) as a DecoderModel.

HF's q/k projections are already permuted for rotate_half RoPE (pairs (i, i + head_dim/2)), so the weights
are kept as stored and the config says `rope_interleaved=False`; permuting them back to llama2.c's pairs
would be a second place where a head-layout bug could hide.

safetensors is read here directly (8-byte header length, JSON header, raw little-endian data) rather than
through `safetensors.numpy`, because numpy has no bfloat16 and that module refuses BF16 files, which is
how most Llama checkpoints are published.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from slmc.errors import SlmcError
from slmc.frontend.decoder import DecoderConfig, DecoderModel, LayerWeights

_DTYPES = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2"), "F64": np.dtype("<f8")}
_MAX_HEADER = 100 << 20  # the safetensors format itself caps the JSON header at 100 MB


@dataclass(frozen=True)
class _Entry:
    file: Path
    dtype: str
    shape: tuple[int, ...]
    begin: int  # absolute byte offsets in `file`
    end: int


def load(folder: Path) -> DecoderModel:
    folder = Path(folder)
    if not folder.is_dir():
        raise SlmcError(f"{folder} is not a folder", "pass the HuggingFace model folder (with config.json)")
    cfg, tied = _config(_read_json(folder / "config.json"), folder / "config.json")
    tensors = _index(folder)
    get = _Getter(tensors, folder)
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

def _read_json(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise SlmcError(f"cannot read {path}: {e.strerror}", "a HuggingFace model folder needs config.json") from None
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SlmcError(f"{path} is not valid JSON ({e})", "re-download the model") from None
    if not isinstance(obj, dict):
        raise SlmcError(f"{path} holds a JSON {type(obj).__name__}, not an object", "re-download the model")
    return obj


def _config(c: dict[str, Any], path: Path) -> tuple[DecoderConfig, bool]:
    """The DecoderConfig, and whether the classifier is tied to the embedding."""
    arch = c.get("architectures") or ["LlamaForCausalLM"]
    if c.get("model_type", "llama") != "llama" or "LlamaForCausalLM" not in arch:
        raise SlmcError(f"{path}: model_type {c.get('model_type')!r} / architectures {arch} is not a Llama "
                        "causal LM", "only LlamaForCausalLM folders are supported; export others to ONNX")

    def need(key: str) -> int:
        v = c.get(key)
        if not isinstance(v, int) or isinstance(v, bool):
            raise SlmcError(f"{path}: field {key!r} is {v!r}, expected an integer", "the config is incomplete")
        return v

    rope = c.get("rope_parameters") or {}  # transformers >= 5 folds rope_theta and rope_type in here
    scaling = c.get("rope_scaling")
    rope_type = rope.get("rope_type", "default") if isinstance(rope, dict) else "?"
    if scaling or rope_type != "default":
        raise SlmcError(f"{path}: rope_scaling {scaling or rope} is set; only plain RoPE is supported",
                        "use a model without RoPE scaling (or remove it from config.json if the context fits)")
    for key in ("attention_bias", "mlp_bias"):
        if c.get(key):
            raise SlmcError(f"{path}: {key} is true; Llama projections without bias are supported",
                            "use a model without projection biases")
    act = c.get("hidden_act", "silu")
    if act != "silu":
        raise SlmcError(f"{path}: hidden_act {act!r} is not supported (SwiGLU needs 'silu')",
                        "use a Llama model with hidden_act silu")
    dim, n_heads = need("hidden_size"), need("num_attention_heads")
    n_kv = c.get("num_key_value_heads") or n_heads
    head_dim = c.get("head_dim") or (dim // n_heads if n_heads > 0 else 0)
    theta = rope.get("rope_theta", c.get("rope_theta", 10000.0)) if isinstance(rope, dict) else 10000.0
    eps = c.get("rms_norm_eps", 1e-6)
    for key, v in (("num_key_value_heads", n_kv), ("head_dim", head_dim)):
        if not isinstance(v, int) or isinstance(v, bool):
            raise SlmcError(f"{path}: field {key!r} is {v!r}, expected an integer", "fix config.json")
    for key, v in (("rope_theta", theta), ("rms_norm_eps", eps)):
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v <= 0:
            raise SlmcError(f"{path}: field {key!r} is {v!r}, expected a positive number", "fix config.json")
    cfg = DecoderConfig(dim=dim, hidden_dim=need("intermediate_size"), n_layers=need("num_hidden_layers"),
                        n_heads=n_heads, n_kv_heads=n_kv, vocab_size=need("vocab_size"),
                        seq_len=need("max_position_embeddings"), norm_eps=float(eps), rope_theta=float(theta),
                        rope_interleaved=False, head_dim_=0 if head_dim * n_heads == dim else head_dim)
    try:
        cfg.validate()
    except SlmcError as e:
        raise SlmcError(f"{path}: {e.cause}", e.fix) from None
    return cfg, bool(c.get("tie_word_embeddings", False))  # LlamaConfig's default is untied


# safetensors ----------------------------------------------------------------------------------------------

def _index(folder: Path) -> dict[str, _Entry]:
    single = folder / "model.safetensors"
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        wmap = _read_json(index).get("weight_map")
        if not isinstance(wmap, dict) or not all(isinstance(v, str) for v in wmap.values()):
            raise SlmcError(f"{index} has no weight_map of tensor names to files", "re-download the model")
        files = sorted(set(wmap.values()))
    elif single.is_file():
        files = [single.name]
    else:
        raise SlmcError(f"{folder} has neither model.safetensors nor model.safetensors.index.json",
                        "download the safetensors weights (PyTorch .bin files are not read)")
    out: dict[str, _Entry] = {}
    for name in files:
        if Path(name).name != name:
            raise SlmcError(f"{index}: shard name {name!r} points outside the folder", "re-download the model")
        out.update(_header(folder / name))
    return out


def _header(path: Path) -> dict[str, _Entry]:
    bad = f"{path} is not a safetensors file"
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            n = int.from_bytes(head, "little") if len(head) == 8 else -1
            if not 0 < n <= min(_MAX_HEADER, size - 8):
                raise SlmcError(f"{bad} (header length {n}, file size {size})", "re-download the model")
            meta = json.loads(f.read(n).decode("utf-8"))
    except OSError as e:
        raise SlmcError(f"cannot read {path}: {e.strerror}", "re-download the model") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise SlmcError(f"{bad} (its header is not JSON)", "re-download the model") from None
    if not isinstance(meta, dict):
        raise SlmcError(f"{bad} (its header is not a JSON object)", "re-download the model")
    out: dict[str, _Entry] = {}
    for name, e in meta.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (b, end) = e["dtype"], tuple(int(d) for d in e["shape"]), e["data_offsets"]
            b, end = int(b), int(end)
        except (KeyError, TypeError, ValueError):
            raise SlmcError(f"{bad} (entry {name!r} is malformed)", "re-download the model") from None
        if dtype not in _DTYPES:
            raise SlmcError(f"{path}: tensor {name} has dtype {dtype}; float32/float16/bfloat16 are read",
                            "use an unquantized checkpoint")
        want = math.prod(shape) * _DTYPES[dtype].itemsize
        if b < 0 or end - b != want or 8 + n + end > size:
            raise SlmcError(f"{path} is truncated or corrupt at tensor {name} (bytes {b}..{end} of "
                            f"{size - 8 - n}, shape {list(shape)} {dtype})", "re-download the model")
        out[name] = _Entry(path, dtype, shape, 8 + n + b, 8 + n + end)
    return out


class _Getter:
    """Reads named tensors as float32, checking each shape against the config."""

    def __init__(self, entries: dict[str, _Entry], folder: Path) -> None:
        self.entries, self.folder = entries, folder
        self._maps: dict[Path, np.memmap] = {}

    def __call__(self, name: str, *shape: int) -> np.ndarray:
        e = self.entries.get(name)
        if e is None:
            raise SlmcError(f"{self.folder}: tensor {name} is missing", "the weights do not match config.json")
        if e.shape != shape:
            raise SlmcError(f"{self.folder}: tensor {name} has shape {list(e.shape)}, config.json implies "
                            f"{list(shape)}", "the weights do not match config.json")
        if e.file not in self._maps:
            self._maps[e.file] = np.memmap(e.file, dtype=np.uint8, mode="r")
        raw = np.frombuffer(self._maps[e.file][e.begin:e.end], dtype=_DTYPES[e.dtype]).reshape(shape)
        # bfloat16 is the top half of a float32
        a = (raw.astype(np.uint32) << 16).view(np.float32) if e.dtype == "BF16" else raw.astype(np.float32)
        if not np.all(np.isfinite(a)):
            raise SlmcError(f"{self.folder}: tensor {name} holds non-finite values", "the checkpoint is corrupt")
        return a
