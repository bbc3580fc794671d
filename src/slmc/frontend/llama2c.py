"""llama2.c checkpoints: the legacy version-0 layout (float32) and the version-2 Q8_0 layout of export.py."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from slmc.errors import SlmcError
from slmc.frontend.decoder import DecoderConfig, DecoderModel, LayerWeights, Q8Tensor

MAGIC = 0x616B3432  # "ak42"


def load(path: Path) -> DecoderModel:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise SlmcError(f"cannot read {path}: {e.strerror}", "check the path") from None
    if len(raw) < 28:
        raise SlmcError(f"{path} is {len(raw)} bytes, too short for a llama2.c header", "the file is truncated")
    magic, version = struct.unpack_from("<Ii", raw, 0)
    if magic == MAGIC:
        if version != 2:
            raise SlmcError(f"{path}: llama2.c checkpoint version {version} is not supported",
                            "export it with llama2.c's export.py --version 0 or 2")
        return _load_v2(path, raw)
    return _load_v0(path, raw)


def _config(hdr: tuple[int, ...], path: Path) -> DecoderConfig:
    dim, hidden, n_layers, n_heads, n_kv, vocab, seq = hdr
    cfg = DecoderConfig(dim=dim, hidden_dim=hidden, n_layers=n_layers, n_heads=n_heads, n_kv_heads=n_kv,
                        vocab_size=abs(vocab), seq_len=seq)
    try:
        cfg.validate()
    except SlmcError as e:
        raise SlmcError(f"{path}: {e.cause}", e.fix) from None
    return cfg


class _Reader:
    def __init__(self, raw: bytes, offset: int, path: Path) -> None:
        self.raw, self.off, self.path = raw, offset, path

    def take(self, dtype: type, *shape: int) -> np.ndarray:
        n = int(np.prod(shape))
        nbytes = n * np.dtype(dtype).itemsize
        if self.off + nbytes > len(self.raw):
            raise SlmcError(f"{self.path} is truncated: needs at least {self.off + nbytes} bytes, has {len(self.raw)}",
                            "re-download or re-export the checkpoint")
        a = np.frombuffer(self.raw, dtype=dtype, count=n, offset=self.off).reshape(shape).copy()
        self.off += nbytes
        return a


def _load_v0(path: Path, raw: bytes) -> DecoderModel:
    hdr = struct.unpack_from("<7i", raw, 0)
    cfg = _config(hdr, path)
    shared = hdr[5] > 0
    L, D, H, KV, V = cfg.n_layers, cfg.dim, cfg.hidden_dim, cfg.kv_dim, cfg.vocab_size
    r = _Reader(raw, 28, path)
    f32 = np.float32
    tok = r.take(f32, V, D)
    rms_att = r.take(f32, L, D)
    wq = r.take(f32, L, D, D)
    wk = r.take(f32, L, KV, D)
    wv = r.take(f32, L, KV, D)
    wo = r.take(f32, L, D, D)
    rms_ffn = r.take(f32, L, D)
    w1 = r.take(f32, L, H, D)
    w2 = r.take(f32, L, D, H)
    w3 = r.take(f32, L, H, D)
    rms_final = r.take(f32, D)
    hs = cfg.head_dim
    r.off += cfg.seq_len * hs // 2 * 4 * 2  # legacy freq_cis_real/imag: recomputed, not read
    wcls = None if shared else r.take(f32, V, D)
    if r.off > len(raw):
        raise SlmcError(f"{path} is truncated (no room for the RoPE tables)", "re-export the checkpoint")
    if not np.all(np.isfinite(tok)) or not np.all(np.isfinite(wq)):
        raise SlmcError(f"{path} holds non-finite weights", "the file is not a float32 llama2.c checkpoint")
    layers = [LayerWeights(attn_norm=rms_att[i], wq=wq[i], wk=wk[i], wv=wv[i], wo=wo[i], ffn_norm=rms_ffn[i],
                           w1=w1[i], w2=w2[i], w3=w3[i]) for i in range(L)]
    return DecoderModel(cfg, tok, layers, rms_final, wcls, source=f"llama2.c v0 {path.name}")


def _load_v2(path: Path, raw: bytes) -> DecoderModel:
    if len(raw) < 256:
        raise SlmcError(f"{path} is truncated inside its 256-byte header", "re-export the checkpoint")
    hdr = struct.unpack_from("<7i", raw, 8)
    cfg = _config(hdr, path)
    shared = raw[36] != 0
    group = struct.unpack_from("<i", raw, 37)[0]
    if group <= 0 or group > 1 << 16:
        raise SlmcError(f"{path}: implausible group size {group}", "the header is corrupt")
    L, D, H, KV, V = cfg.n_layers, cfg.dim, cfg.hidden_dim, cfg.kv_dim, cfg.vocab_size
    r = _Reader(raw, 256, path)
    rms_att = r.take(np.float32, L, D)
    rms_ffn = r.take(np.float32, L, D)
    rms_final = r.take(np.float32, D)
    notes: list[str] = []

    def q8(rows: int, cols: int, name: str) -> "Q8Tensor | np.ndarray":
        if (rows * cols) % group:
            raise SlmcError(f"{path}: {name} has {rows * cols} values, not a multiple of the group size {group}",
                            "the header is corrupt, or the file was not written by llama2.c's export.py")
        q = r.take(np.int8, rows * cols)
        s = r.take(np.float32, rows * cols // group)
        if not np.all(np.isfinite(s)):
            raise SlmcError(f"{path}: {name} has non-finite scales", "the file is corrupt")
        if cols % group == 0:
            return Q8Tensor(q.reshape(rows, cols), s.reshape(rows, cols // group), group)
        # export.py groups the flattened tensor, so a group may straddle rows; runq.c would then read
        # scales at the wrong place. Keep the file's values exactly, as float, and requantize later.
        notes.append(f"{name}: input length {cols} is not a multiple of the file's group size {group}; "
                     "dequantized and requantized with a group that divides it")
        deq = (q.reshape(-1, group).astype(np.float32) * s[:, None]).reshape(rows, cols)
        return deq.astype(np.float32)

    tok = q8(V, D, "token_embedding")
    wq = [q8(D, D, f"wq{i}") for i in range(L)]
    wk = [q8(KV, D, f"wk{i}") for i in range(L)]
    wv = [q8(KV, D, f"wv{i}") for i in range(L)]
    wo = [q8(D, D, f"wo{i}") for i in range(L)]
    w1 = [q8(H, D, f"w1{i}") for i in range(L)]
    w2 = [q8(D, H, f"w2{i}") for i in range(L)]
    w3 = [q8(H, D, f"w3{i}") for i in range(L)]
    wcls = None if shared else q8(V, D, "wcls")
    layers = [LayerWeights(attn_norm=rms_att[i], wq=wq[i], wk=wk[i], wv=wv[i], wo=wo[i], ffn_norm=rms_ffn[i],
                           w1=w1[i], w2=w2[i], w3=w3[i]) for i in range(L)]
    return DecoderModel(cfg, tok, layers, rms_final, wcls, source=f"llama2.c v2 (Q8_0, group {group}) {path.name}",
                        notes=notes)


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
