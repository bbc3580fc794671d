"""llama2.c checkpoints: the legacy version-0 layout (float32) and the version-2 Q8_0 layout of export.py."""

from __future__ import annotations

import math
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np

from slmc.errors import SlmcError
from slmc.frontend.decoder import DecoderConfig, DecoderModel, LayerWeights, Q8Tensor
from slmc.frontend.safe_io import check_finite, open_regular, read_array, read_exact

MAGIC = 0x616B3432  # "ak42"


_FIX = "re-download the checkpoint, or re-export it with llama2.c's export.py"
_V0_HEADER = 28   # 7 int32
_V2_HEADER = 256  # magic, version, 7 int32, shared flag byte, group int32, zero padding
_MAX_SCALE = float(np.finfo(np.float32).max) / 128  # larger Q8_0 scales overflow q * s to infinity


def load(path: Path) -> DecoderModel:
    """A llama2.c checkpoint, read header first: the header is validated and the file's exact size derived
    from it before any tensor is read, so a corrupt header or a file of the wrong length costs nothing."""
    path = Path(path)
    f, size = open_regular(path, "model", "pass a llama2.c checkpoint (.bin), an .onnx file or a HuggingFace folder")
    with f:
        if size < _V0_HEADER:
            raise SlmcError(f"{path} is {size} bytes, too short for a llama2.c header", "the file is truncated")
        head = read_exact(f, min(size, _V2_HEADER), path)
        magic, version = struct.unpack_from("<Ii", head, 0)
        if magic == MAGIC:
            if version != 2:
                raise SlmcError(f"{path}: llama2.c checkpoint version {version} is not supported",
                                "export it with llama2.c's export.py --version 0 or 2")
            return _load_v2(path, f, size, head)
        f.seek(_V0_HEADER)
        return _load_v0(path, f, size, head)


def _config(hdr: tuple[int, ...], path: Path, vocab: int) -> DecoderConfig:
    dim, hidden, n_layers, n_heads, n_kv, _, seq = hdr
    cfg = DecoderConfig(dim=dim, hidden_dim=hidden, n_layers=n_layers, n_heads=n_heads, n_kv_heads=n_kv,
                        vocab_size=vocab, seq_len=seq)
    try:
        cfg.validate()
    except SlmcError as e:
        raise SlmcError(f"{path}: header {list(hdr)}: {e.cause}", e.fix) from None
    return cfg


def _check_size(path: Path, size: int, expected: int) -> None:
    """run.c would read past the end of a short file and silently ignore a long one; both mean the header
    and the data disagree, so neither is accepted."""
    if size < expected:
        raise SlmcError(f"{path} is truncated: its header implies {expected} bytes, the file has {size}", _FIX)
    if size > expected:
        raise SlmcError(f"{path} has {size - expected} bytes past its last tensor: its header implies {expected} "
                        f"bytes, the file has {size}", "the file is corrupt or not a llama2.c checkpoint; " + _FIX)


def _v0_layout(cfg: DecoderConfig, shared: bool) -> list[tuple[str, tuple[int, ...]]]:
    """export.py legacy_export's float32 tensors in file order (freq_cis: the RoPE tables, skipped)."""
    L, D, H, KV, V = cfg.n_layers, cfg.dim, cfg.hidden_dim, cfg.kv_dim, cfg.vocab_size
    items = [("token_embedding", (V, D)), ("rms_att", (L, D)), ("wq", (L, D, D)), ("wk", (L, KV, D)),
             ("wv", (L, KV, D)), ("wo", (L, D, D)), ("rms_ffn", (L, D)), ("w1", (L, H, D)), ("w2", (L, D, H)),
             ("w3", (L, H, D)), ("rms_final", (D,)), ("freq_cis", (2, cfg.seq_len, cfg.head_dim // 2))]
    return items + ([] if shared else [("wcls", (V, D))])


def _load_v0(path: Path, f: BinaryIO, size: int, head: bytes) -> DecoderModel:
    hdr = struct.unpack_from("<7i", head, 0)
    cfg = _config(hdr, path, abs(hdr[5]))
    shared = hdr[5] > 0  # a negative vocab_size marks an unshared classifier
    layout = _v0_layout(cfg, shared)
    _check_size(path, size, _V0_HEADER + 4 * sum(math.prod(shape) for _, shape in layout))
    t: dict[str, np.ndarray] = {}
    for name, shape in layout:
        if name == "freq_cis":  # legacy RoPE tables: recomputed from theta, never read
            f.seek(4 * math.prod(shape), 1)
            continue
        t[name] = read_array(f, "<f4", shape, path)
        check_finite(t[name], name, path, layered=len(shape) > 1 and name not in ("token_embedding", "wcls"))
    layers = [LayerWeights(attn_norm=t["rms_att"][i], wq=t["wq"][i], wk=t["wk"][i], wv=t["wv"][i], wo=t["wo"][i],
                           ffn_norm=t["rms_ffn"][i], w1=t["w1"][i], w2=t["w2"][i], w3=t["w3"][i])
              for i in range(cfg.n_layers)]
    return DecoderModel(cfg, t["token_embedding"], layers, t["rms_final"], t.get("wcls"),
                        source=f"llama2.c v0 {path.name}")


def _v2_mats(cfg: DecoderConfig, shared: bool) -> list[tuple[str, int, int]]:
    """export.py version2_export's Q8_0 matrices in file order: (name, rows, cols)."""
    L, D, H, KV, V = cfg.n_layers, cfg.dim, cfg.hidden_dim, cfg.kv_dim, cfg.vocab_size
    shapes = {"wq": (D, D), "wk": (KV, D), "wv": (KV, D), "wo": (D, D), "w1": (H, D), "w2": (D, H), "w3": (H, D)}
    mats = [("token_embedding", V, D)]
    mats += [(f"{k}{i}", *shapes[k]) for k in shapes for i in range(L)]
    return mats + ([] if shared else [("wcls", V, D)])


def _load_v2(path: Path, f: BinaryIO, size: int, head: bytes) -> DecoderModel:
    if size < _V2_HEADER:
        raise SlmcError(f"{path} is truncated inside its {_V2_HEADER}-byte header ({size} bytes)", _FIX)
    hdr = struct.unpack_from("<7i", head, 8)
    cfg = _config(hdr, path, hdr[5])
    flag, group = struct.unpack_from("<Bi", head, 36)
    if flag not in (0, 1):
        raise SlmcError(f"{path}: shared-classifier flag {flag} is neither 0 nor 1", "the header is corrupt")
    shared = flag == 1
    if group <= 0 or group > 1 << 16:
        raise SlmcError(f"{path}: implausible group size {group}", "the header is corrupt")
    L, D = cfg.n_layers, cfg.dim
    mats = _v2_mats(cfg, shared)
    for name, rows, cols in mats:
        if (rows * cols) % group:
            raise SlmcError(f"{path}: {name} has {rows * cols} values, not a multiple of the group size {group}",
                            "the header is corrupt, or the file was not written by llama2.c's export.py")
    _check_size(path, size, _V2_HEADER + 4 * (2 * L * D + D) + sum(r * c + 4 * (r * c // group) for _, r, c in mats))
    norms = {name: read_array(f, "<f4", shape, path)
             for name, shape in (("rms_att", (L, D)), ("rms_ffn", (L, D)), ("rms_final", (D,)))}
    for name, a in norms.items():
        check_finite(a, name, path, layered=a.ndim == 2)
    notes: list[str] = []

    def q8(name: str, rows: int, cols: int) -> "Q8Tensor | np.ndarray":
        q = read_array(f, "i1", (rows * cols,), path)
        s = read_array(f, "<f4", (rows * cols // group,), path)
        check_finite(s, f"{name} (its scales)", path)
        if s.size and float(np.abs(s).max()) > _MAX_SCALE:
            raise SlmcError(f"{path}: tensor {name} has a scale of {float(np.abs(s).max()):g}; dequantized values "
                            "would overflow float32", "the checkpoint is corrupt; " + _FIX)
        if cols % group == 0:
            return Q8Tensor(q.reshape(rows, cols), s.reshape(rows, cols // group), group)
        # export.py groups the flattened tensor, so a group may straddle rows; runq.c would then read
        # scales at the wrong place. Keep the file's values exactly, as float, and requantize later.
        notes.append(f"{name}: input length {cols} is not a multiple of the file's group size {group}; "
                     "dequantized and requantized with a group that divides it")
        deq = (q.reshape(-1, group).astype(np.float32) * s[:, None]).reshape(rows, cols)
        return deq.astype(np.float32)

    w = {name: q8(name, rows, cols) for name, rows, cols in mats}
    layers = [LayerWeights(attn_norm=norms["rms_att"][i], wq=w[f"wq{i}"], wk=w[f"wk{i}"], wv=w[f"wv{i}"],
                           wo=w[f"wo{i}"], ffn_norm=norms["rms_ffn"][i], w1=w[f"w1{i}"], w2=w[f"w2{i}"],
                           w3=w[f"w3{i}"]) for i in range(L)]
    return DecoderModel(cfg, w["token_embedding"], layers, norms["rms_final"], w.get("wcls"),
                        source=f"llama2.c v2 (Q8_0, group {group}) {path.name}", notes=notes)


def _check_llama(model: DecoderModel) -> None:
    c = model.config
    if c.norm != "rms" or c.ffn != "swiglu" or c.pos != "rope" or not c.rope_interleaved:
        raise SlmcError("only Llama-style models with llama2.c's RoPE convention fit the llama2.c format",
                        "save this model in another format")


def _f32(w: "np.ndarray | Q8Tensor") -> np.ndarray:
    return (w.dequantize() if isinstance(w, Q8Tensor) else np.asarray(w)).astype("<f4")


def save_v0(model: DecoderModel, path: Path) -> None:
    """Write a float32 Llama-style model in llama2.c's legacy layout (what run.c and runq.c read)."""
    _check_llama(model)
    c, f = model.config, _f32
    L = model.layers
    vocab = c.vocab_size if model.wcls is None else -c.vocab_size
    parts = [struct.pack("<7i", c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, vocab, c.seq_len),
             f(model.tok_emb).tobytes()]
    for field_ in ("attn_norm", "wq", "wk", "wv", "wo", "ffn_norm", "w1", "w2", "w3"):
        parts += [f(getattr(layer, field_)).tobytes() for layer in L]
    parts.append(f(model.final_norm).tobytes())
    half = c.head_dim // 2
    freqs = 1.0 / (c.rope_theta ** (np.arange(0, c.head_dim, 2)[:half] / c.head_dim))
    ang = np.outer(np.arange(c.seq_len), freqs)
    parts += [np.cos(ang).astype("<f4").tobytes(), np.sin(ang).astype("<f4").tobytes()]
    if model.wcls is not None:
        parts.append(f(model.wcls).tobytes())
    Path(path).write_bytes(b"".join(parts))


def quantize_q80(w: np.ndarray, group: int) -> tuple[np.ndarray, np.ndarray]:
    """export.py's quantize_q80 on the flattened tensor: per group scale = max|w| / 127, q = round(w / scale)
    (half to even, as torch.round). An all-zero group gets scale 0 and zeros (export.py would write NaN there)."""
    g = np.asarray(w, dtype=np.float32).reshape(-1, group)
    scale = (np.abs(g).max(axis=1) / np.float32(127.0)).astype(np.float32)
    safe = np.where(scale == 0, np.float32(1.0), scale).astype(np.float32)
    q = np.where(scale[:, None] == 0, 0, np.round(g / safe[:, None])).astype(np.int8)
    return q, scale


def v2_group(dim: int, group: int = 64) -> int:
    """export.py's back-off: halve the group size until it divides dim."""
    if group <= 0:
        raise SlmcError(f"group size {group} must be positive", "e.g. 64")
    while dim % group:
        group //= 2
    return group


def v2_bytes(model: DecoderModel, group: int = 64) -> bytes:
    """The bytes of llama2.c export.py's version2_export (Q8_0): a 256-byte header, the norms in float32,
    then every matrix as int8 values followed by its float32 group scales."""
    _check_llama(model)
    c = model.config
    group = v2_group(c.dim, group)
    L = model.layers
    mats = [model.tok_emb] + [getattr(layer, k) for k in ("wq", "wk", "wv", "wo", "w1", "w2", "w3") for layer in L]
    shared = model.wcls is None
    if not shared:
        mats.append(model.wcls)
    hdr = struct.pack("<Ii", MAGIC, 2) + struct.pack("<7i", c.dim, c.hidden_dim, c.n_layers, c.n_heads,
                                                     c.n_kv_heads, c.vocab_size, c.seq_len)
    hdr += struct.pack("<Bi", int(shared), group)
    parts = [hdr + b"\0" * (256 - len(hdr))]
    parts += [_f32(layer.attn_norm).tobytes() for layer in L]
    parts += [_f32(layer.ffn_norm).tobytes() for layer in L]
    parts.append(_f32(model.final_norm).tobytes())
    for w in mats:
        d = _f32(w)
        if d.size % group:
            raise SlmcError(f"a {d.shape} matrix has {d.size} values, not a multiple of the group size {group}",
                            "llama2.c's Q8_0 format cannot hold this model")
        q, s = quantize_q80(d, group)
        parts += [q.tobytes(), s.astype("<f4").tobytes()]
    return b"".join(parts)


def save_v2(model: DecoderModel, path: Path, group: int = 64) -> None:
    """Write a Llama-style model as llama2.c's version-2 Q8_0 checkpoint (what runq.c reads)."""
    Path(path).write_bytes(v2_bytes(model, group))
