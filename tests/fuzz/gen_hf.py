"""Seeded generators of malformed HuggingFace Llama folders and safetensors files (re-exported by
gen_models.py). Each writes a folder and returns `maybe_valid`: False when the folder breaks a rule and
must be refused, True when it may load. safetensors files are written here byte by byte (not with the
safetensors package) so that a mutation can break any part of the format.
"""

from __future__ import annotations

import json
import math
import shutil
import struct
from pathlib import Path
from typing import Any

import numpy as np

Rng = np.random.Generator

HF_CONFIG: dict[str, Any] = dict(
    architectures=["LlamaForCausalLM"], model_type="llama", hidden_size=8, intermediate_size=16,
    num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1, vocab_size=10, max_position_embeddings=16,
    rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=True, hidden_act="silu")
_ITEMSIZE = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I32": 4, "I8": 1}


def _pick(rng: Rng, items: list) -> Any:
    return items[int(rng.integers(len(items)))]


def hf_tensors(rng: Rng, cfg: dict[str, Any]) -> dict[str, np.ndarray]:
    """Random float32 weights of the shapes `cfg` implies (lm_head only when untied)."""
    D, H, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    nh = cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads") or nh
    kvd = D // nh * nkv
    shapes = {"model.embed_tokens.weight": (V, D), "model.norm.weight": (D,)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        shapes |= {p + "input_layernorm.weight": (D,), p + "post_attention_layernorm.weight": (D,),
                   p + "self_attn.q_proj.weight": (D, D), p + "self_attn.k_proj.weight": (kvd, D),
                   p + "self_attn.v_proj.weight": (kvd, D), p + "self_attn.o_proj.weight": (D, D),
                   p + "mlp.gate_proj.weight": (H, D), p + "mlp.up_proj.weight": (H, D),
                   p + "mlp.down_proj.weight": (D, H)}
    if not cfg.get("tie_word_embeddings", False):
        shapes["lm_head.weight"] = (V, D)
    return {k: (1 + 0.1 * rng.standard_normal(s) if len(s) == 1 else rng.standard_normal(s) / math.sqrt(s[-1]))
            .astype(np.float32) for k, s in shapes.items()}


def _encode(a: np.ndarray, dtype: str) -> bytes:
    if dtype == "BF16":
        return (a.astype("<f4").view("<u4") >> 16).astype("<u2").tobytes()
    return a.astype({"F32": "<f4", "F16": "<f2", "F64": "<f8", "I32": "<i4", "I8": "i1"}[dtype]).tobytes()


def safetensors_parts(tensors: dict[str, np.ndarray], dtype: str = "F32") -> tuple[dict[str, Any], bytes]:
    """The header (as a dict) and the data section of a valid file, tensors in name order."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    data, at = [], 0
    for name in sorted(tensors):
        raw = _encode(tensors[name], dtype)
        header[name] = dict(dtype=dtype, shape=list(tensors[name].shape), data_offsets=[at, at + len(raw)])
        data.append(raw)
        at += len(raw)
    return header, b"".join(data)


def safetensors_file(header_text: bytes, data: bytes, pad: bool = True) -> bytes:
    if pad:  # the reference writer pads the header with spaces to a multiple of 8
        header_text += b" " * (-len(header_text) % 8)
    return struct.pack("<Q", len(header_text)) + header_text + data


def safetensors_bytes(tensors: dict[str, np.ndarray], dtype: str = "F32") -> bytes:
    header, data = safetensors_parts(tensors, dtype)
    return safetensors_file(json.dumps(header).encode(), data)


def write_hf_folder(d: Path, cfg: dict[str, Any], tensors: dict[str, np.ndarray], dtype: str = "F32",
                    shards: int = 1) -> None:
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps(cfg))
    if shards == 1:
        (d / "model.safetensors").write_bytes(safetensors_bytes(tensors, dtype))
        return
    names = sorted(tensors)
    wmap = {}
    for k in range(shards):
        part = {n: tensors[n] for n in names[k::shards]}
        fname = f"model-{k + 1:05d}-of-{shards:05d}.safetensors"
        (d / fname).write_bytes(safetensors_bytes(part, dtype))
        wmap |= {n: fname for n in part}
    (d / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": wmap}))


# config.json fields set to a value: (key, value, maybe_valid); None as value removes the key
_FIELDS: list[tuple[str, Any, bool]] = [
    ("tie_word_embeddings", "false", False), ("tie_word_embeddings", 0, False), ("tie_word_embeddings", None, False),
    ("hidden_size", "8", False), ("hidden_size", 8.0, False), ("hidden_size", True, False),
    ("hidden_size", 10**30, False), ("hidden_size", -8, False), ("hidden_size", 0, False), ("hidden_size", None, False),
    ("num_attention_heads", 16, False), ("num_attention_heads", 3, False), ("num_attention_heads", 0, False),
    ("num_key_value_heads", 3, False), ("num_key_value_heads", 0, False), ("num_key_value_heads", 2, False),
    ("architectures", "LlamaForCausalLM", False), ("architectures", 5, False), ("architectures", {"a": 1}, False),
    ("architectures", ["GPT2LMHeadModel"], False), ("architectures", [["LlamaForCausalLM"]], False),
    ("rms_norm_eps", -1, False), ("rms_norm_eps", "1e-5", False), ("rope_theta", 0, False),
    ("rope_theta", [1e4], False), ("max_position_embeddings", 2**31, False), ("max_position_embeddings", 2.5, False),
    ("vocab_size", 11, False), ("intermediate_size", 12, False), ("num_hidden_layers", 2, False),
    ("rope_scaling", {"rope_type": "linear", "factor": 2.0}, True), ("rope_scaling", "yes", False),
    ("rope_parameters", 7, False), ("attention_bias", "false", False), ("mlp_bias", 1, False),
    ("hidden_act", ["silu"], False), ("hidden_act", "gelu", False), ("model_type", 5, False), ("head_dim", 0, False),
    ("head_dim", "4", False),
    ("head_dim", 4, True), ("rope_scaling", None, True), ("torch_dtype", "bfloat16", True),
    ("unknown_key", {"deep": [1, [2, {"x": None}]]}, True), ("num_key_value_heads", None, True),
    ("rms_norm_eps", 1e-6, True), ("attention_bias", False, True), ("architectures", [], True),
]

# config.json replaced by raw bytes: all must be refused
_RAW_CONFIGS: list[bytes] = [
    b"", b"\xff\xfe{}", b"[" * 100000 + b"]" * 100000, b'{"a":' * 50000, b"[1, 2]", b'"text"', b"null",
    b'{"hidden_size": 8', b"\xef\xbb\xbf{}", b'{"hidden_size": ' + b"9" * 5000 + b"}",
]


def random_hf_folder(rng: Rng, d: Path) -> bool:
    """A tiny Llama folder at `d` (replaced), valid or broken in config.json or in its file layout."""
    cfg = dict(HF_CONFIG)
    kind = _pick(rng, ["field", "field", "field", "raw_config", "numbers", "folder", "valid"])
    if kind == "field":
        key, value, ok = _FIELDS[int(rng.integers(len(_FIELDS)))]
        cfg = {k: v for k, v in cfg.items() if k != key} if value is None else cfg | {key: value}
        # a valid change gets weights that fit it; a broken config keeps the base model's weights
        tensors = hf_tensors(rng, cfg if ok else HF_CONFIG)
        if key == "tie_word_embeddings":
            tensors.pop("lm_head.weight", None)
        write_hf_folder(d, cfg, tensors)
        return ok
    tensors = hf_tensors(rng, cfg)
    write_hf_folder(d, cfg, tensors, dtype=_pick(rng, ["F32", "F16", "BF16"]), shards=_pick(rng, [1, 1, 2, 3]))
    if kind == "valid":
        return True
    if kind == "raw_config":
        (d / "config.json").write_bytes(_pick(rng, _RAW_CONFIGS))
        return False
    if kind == "numbers":  # JSON's non-standard and extreme number literals
        text = json.dumps(cfg).replace('"rms_norm_eps": 1e-05', '"rms_norm_eps": ' + _pick(rng, [
            "NaN", "Infinity", "-Infinity", "1e999", "-0.0", "0"]))
        (d / "config.json").write_text(text)
        return False
    sub = _pick(rng, ["config_dir", "no_config", "no_weights", "index_escape", "index_missing_shard",
                      "index_not_map", "nan", "missing_tensor", "extra_tensor", "pytorch_only", "index_wrong_shard"])
    if sub == "config_dir":
        (d / "config.json").unlink()
        (d / "config.json").mkdir()
    elif sub == "no_config":
        (d / "config.json").unlink()
    elif sub in ("no_weights", "pytorch_only"):
        for f in d.glob("model*.safetensors*"):
            f.unlink()
        if sub == "pytorch_only":
            (d / "pytorch_model.bin").write_bytes(b"PK\x03\x04")
    elif sub.startswith("index_"):
        names = sorted(tensors)
        if not (d / "model.safetensors.index.json").exists():
            (d / "model.safetensors").rename(d / "shard.safetensors")
            wmap = {n: "shard.safetensors" for n in names}
        else:
            wmap = json.loads((d / "model.safetensors.index.json").read_text())["weight_map"]
        shard = {"index_escape": _pick(rng, ["../x.safetensors", "/etc/passwd", "..", ".", "", "a/../b"]),
                 "index_missing_shard": "absent.safetensors", "index_wrong_shard": "other.safetensors"}.get(sub)
        if sub == "index_wrong_shard":  # a real shard, but not the one that holds the tensor
            (d / "other.safetensors").write_bytes(safetensors_bytes({"unused": np.zeros(2, np.float32)}))
        idx: Any = {"weight_map": wmap | {names[0]: shard}} if shard is not None else {"weight_map": list(wmap)}
        (d / "model.safetensors.index.json").write_text(json.dumps(idx))
    else:
        tensors = dict(tensors)
        if sub == "nan":
            name = _pick(rng, sorted(tensors))
            tensors[name].flat[int(rng.integers(tensors[name].size))] = _pick(rng, [np.nan, np.inf, -np.inf])
        elif sub == "missing_tensor":
            tensors.pop(_pick(rng, sorted(tensors)))
        else:
            tensors["model.rotary_emb.inv_freq"] = np.ones(2, np.float32)
        write_hf_folder(d, cfg, tensors, dtype="F32")
        return sub == "extra_tensor"
    return False


def mutate_safetensors(rng: Rng, d: Path) -> bool:
    """A tiny valid Llama folder at `d` whose model.safetensors is then broken (or not) in one place."""
    cfg = dict(HF_CONFIG)
    tensors = hf_tensors(rng, cfg)
    write_hf_folder(d, cfg, tensors)
    dtype = _pick(rng, ["F32", "F16", "BF16"])
    header, data = safetensors_parts(tensors, dtype)
    names = sorted(n for n in header if n != "__metadata__")
    victim = _pick(rng, names)
    e = header[victim]
    kind = _pick(rng, ["len_zero", "len_huge", "len_past_end", "len_short", "not_json", "not_utf8", "array",
                       "overlap", "past_end", "swap", "dtype_size", "dtype_int", "dtype_unknown", "shape_change",
                       "shape_bad", "entry_not_object", "no_offsets", "metadata_bad", "trailing", "truncate",
                       "duplicate", "nan", "extra_tensor", "zero_size_tensor", "metadata_ok", "flip", "unpadded",
                       "valid"])
    ok = kind in ("extra_tensor", "zero_size_tensor", "metadata_ok", "flip", "unpadded", "valid")
    if kind == "overlap":
        e["data_offsets"] = [e["data_offsets"][0] - 2, e["data_offsets"][1] - 2] if e["data_offsets"][0] else \
            [e["data_offsets"][0] + 2, e["data_offsets"][1] + 2]
    elif kind == "past_end":
        e["data_offsets"] = [e["data_offsets"][0], len(data) + 1 + int(rng.integers(2**40))]
    elif kind == "swap":
        e["data_offsets"] = e["data_offsets"][::-1]
    elif kind == "dtype_size":
        e["dtype"] = _pick(rng, [t for t in ("F32", "F64", "I8") if _ITEMSIZE[t] != _ITEMSIZE[dtype]])
    elif kind == "dtype_int":
        e["dtype"] = {4: "I32", 2: "I16"}[_ITEMSIZE[dtype]]
    elif kind == "dtype_unknown":
        e["dtype"] = _pick(rng, ["F33", "", 4, None])
    elif kind == "shape_change":
        e["shape"] = e["shape"][:-1] + [e["shape"][-1] + _pick(rng, [-1, 1])]
    elif kind == "shape_bad":
        e["shape"] = _pick(rng, [[-1] + e["shape"], [2.0] + e["shape"], [True], "8", [2**62, 2**62], [1] * 40])
    elif kind == "entry_not_object":
        header[victim] = _pick(rng, [[1, 2], "x", None, 3])
    elif kind == "no_offsets":
        del e["data_offsets"]
    elif kind == "metadata_bad":
        header["__metadata__"] = _pick(rng, [5, "x", [1]])
    elif kind == "metadata_ok":
        header["__metadata__"] = {"format": "pt", "note": "*/ \n [bold]"}
    elif kind == "nan":
        at = e["data_offsets"][0]
        nan = {"F32": struct.pack("<f", math.nan), "F16": b"\x00\x7e", "BF16": b"\xc0\x7f"}[dtype]
        data = data[:at] + nan + data[at + len(nan):]
    elif kind == "extra_tensor":
        header["unused.weight"] = dict(dtype="I8", shape=[3], data_offsets=[len(data), len(data) + 3])
        data += b"\x01\x02\x03"
    elif kind == "zero_size_tensor":
        header["empty.weight"] = dict(dtype="F32", shape=[0, 4], data_offsets=[len(data), len(data)])
    text = json.dumps(header, allow_nan=True).encode()
    if kind == "duplicate":  # JSON keeps the last of two equal keys: the first one's bytes then belong to nothing
        other = _pick(rng, [n for n in names if n != victim])
        text = text[:-1] + b", " + json.dumps(victim).encode() + b": " + json.dumps(header[other]).encode() + b"}"
    elif kind == "not_json":
        text = b"{" + rng.bytes(len(text) - 2).replace(b"}", b"]") + b"]"
    elif kind == "not_utf8":
        text = text[:10] + b"\xff\xfe" + text[12:]
    elif kind == "array":
        text = json.dumps(list(header)).encode()
    blob = safetensors_file(text, data, pad=kind != "unpadded")
    n = struct.unpack_from("<Q", blob)[0]
    if kind.startswith("len_"):
        bad_n = {"len_zero": 0, "len_huge": 2**64 - 1, "len_past_end": len(blob), "len_short": n - 1}[kind]
        blob = struct.pack("<Q", bad_n) + blob[8:]
    elif kind == "trailing":
        blob += rng.bytes(int(rng.integers(1, 64)))
    elif kind == "truncate":
        blob = blob[: int(rng.integers(0, len(blob)))]
    elif kind == "flip":
        b = bytearray(blob)
        for _ in range(int(rng.integers(1, 5))):
            b[8 + n + int(rng.integers(len(data)))] = int(rng.integers(256))
        blob = bytes(b)
    (d / "model.safetensors").write_bytes(blob)
    return ok
