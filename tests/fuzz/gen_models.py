"""Seeded generators of malformed model inputs: llama2.c v0/v2 checkpoints, HuggingFace folders,
safetensors files, llama2.c tokenizer.bin and sentencepiece models.

Each generator takes a numpy Generator (so a seed fixes the case) and returns, with the bytes or beside
the folder it wrote, `maybe_valid`: False when the input breaks a rule of its format and every loader
must refuse it (exit 2), True when it may load (a random flip can still hit a NaN, so True promises
nothing). The rules are re-derived here from the formats (llama2.c's export.py, the safetensors spec),
not imported from the loaders, so the two check each other. Files stay small (a few kB) so the fuzz
harness runs thousands of cases through the CLI.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np

# the HuggingFace and safetensors generators live beside this module; imported here for one entry point
from fuzz.gen_hf import HF_CONFIG, hf_tensors, mutate_safetensors, random_hf_folder, safetensors_bytes  # noqa: F401
from slmc.frontend.decoder import CAPS  # policy, not format: the header caps slmc chooses

Rng = np.random.Generator
MAGIC = struct.pack("<I", 0x616B3432)
_ODD_INTS = [0, -1, 1, 2, 3, 7, 2**31 - 1, -(2**31), 1 << 20, 1 << 16]


def _pick(rng: Rng, items: list) -> Any:
    return items[int(rng.integers(len(items)))]


# llama2.c -----------------------------------------------------------------------------------------------

def _hdr_ok(dim: int, hidden: int, layers: int, heads: int, kv: int, vocab: int, seq: int) -> bool:
    vals = dict(dim=dim, hidden_dim=hidden, n_layers=layers, n_heads=heads, n_kv_heads=kv, vocab_size=vocab,
                seq_len=seq)
    if any(not 1 <= v <= CAPS[k] for k, v in vals.items()):
        return False
    return dim % heads == 0 and heads % kv == 0 and (dim // heads) % 2 == 0


def _v2_mats(h: tuple[int, ...], shared: bool) -> list[int]:
    """Element counts of export.py version2_export's quantized matrices, in file order."""
    dim, hidden, layers, heads, kv, vocab, _ = h
    kvd = dim // heads * kv
    per = [dim * dim, kvd * dim, kvd * dim, dim * dim, hidden * dim, dim * hidden, hidden * dim]
    return [vocab * dim] + [n for n in per for _ in range(layers)] + ([] if shared else [vocab * dim])


def llama2c_maybe_valid(data: bytes) -> bool:
    """False when `data` breaks llama2.c's layout: header rules, and a size that equals the header's."""
    if len(data) < 28:
        return False
    if data[:4] == MAGIC:
        if len(data) < 256 or struct.unpack_from("<i", data, 4)[0] != 2:
            return False
        h = struct.unpack_from("<7i", data, 8)
        flag, group = struct.unpack_from("<Bi", data, 36)
        if flag not in (0, 1) or not 1 <= group <= 1 << 16 or not _hdr_ok(*h):
            return False
        mats = _v2_mats(h, flag == 1)
        if any(n % group for n in mats):
            return False
        dim, layers = h[0], h[2]
        return len(data) == 256 + 4 * (2 * layers * dim + dim) + sum(n + 4 * (n // group) for n in mats)
    h = struct.unpack_from("<7i", data, 0)
    dim, hidden, layers, heads, kv, vocab, seq = h
    if not _hdr_ok(dim, hidden, layers, heads, kv, abs(vocab), seq):
        return False
    kvd = dim // heads * kv
    n = abs(vocab) * dim * (1 if vocab > 0 else 2) + layers * (2 * dim + 2 * dim * dim + 2 * kvd * dim + 3 * hidden * dim)
    return len(data) == 28 + 4 * (n + dim + seq * (dim // heads))


def _float_regions(data: bytes) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(weights a loader must check, v0's RoPE tables that it skips) as byte ranges of a valid file."""
    if data[:4] == MAGIC:
        h = struct.unpack_from("<7i", data, 8)
        flag, group = struct.unpack_from("<Bi", data, 36)
        dim, layers = h[0], h[2]
        at = 256 + 4 * (2 * layers * dim + dim)
        regions = [(256, at)]
        for n in _v2_mats(h, flag == 1):
            regions.append((at + n, at + n + 4 * (n // group)))  # the scales after each matrix's int8 values
            at += n + 4 * (n // group)
        return regions, []
    dim, hidden, layers, heads, kv, vocab, seq = struct.unpack_from("<7i", data, 0)
    kvd = dim // heads * kv
    body = abs(vocab) * dim + layers * (2 * dim + 2 * dim * dim + 2 * kvd * dim + 3 * hidden * dim) + dim
    rope = (28 + 4 * body, 28 + 4 * (body + seq * (dim // heads)))
    return [(28, rope[0]), (rope[1], len(data))], [rope]


def mutate_llama2c(rng: Rng, base: bytes) -> tuple[bytes, bool]:
    """One mutation of a valid v0 or v2 checkpoint `base`."""
    v2 = base[:4] == MAGIC
    b = bytearray(base)
    kinds = ["truncate", "append", "header_int", "header_swap", "nonfinite", "flip", "empty", "garbage", "zeros"]
    kinds += ["flag", "group", "version"] if v2 else ["rope_nonfinite", "magic"]
    kind = _pick(rng, kinds)
    hdr_at = 8 if v2 else 0
    if kind == "truncate":
        return bytes(b[: int(rng.integers(0, len(b)))]), False
    if kind == "append":
        return bytes(b) + rng.bytes(int(rng.integers(1, 65))), False
    if kind == "empty":
        return b"", False
    if kind == "garbage":  # random bytes of the same length
        data = rng.bytes(len(b))
        return data, llama2c_maybe_valid(data)
    if kind == "header_int":
        i = int(rng.integers(7))
        (old,) = struct.unpack_from("<i", b, hdr_at + 4 * i)
        new = _pick(rng, _ODD_INTS + [old + 1, old - 1, old * 2, -old, old // 2])
        struct.pack_into("<i", b, hdr_at + 4 * i, max(-(2**31), min(2**31 - 1, new)))
    elif kind == "header_swap":
        i, j = rng.choice(7, 2, replace=False)
        h = list(struct.unpack_from("<7i", b, hdr_at))
        h[i], h[j] = h[j], h[i]
        struct.pack_into("<7i", b, hdr_at, *h)
    elif kind in ("nonfinite", "rope_nonfinite"):
        checked, skipped = _float_regions(base)
        regions = [r for r in (checked if kind == "nonfinite" else skipped) if r[1] > r[0]]
        lo, hi = _pick(rng, regions)
        at = lo + 4 * int(rng.integers((hi - lo) // 4))
        struct.pack_into("<f", b, at, _pick(rng, [math.nan, math.inf, -math.inf]))
        return bytes(b), kind == "rope_nonfinite"  # the RoPE tables are recomputed, never read
    elif kind == "flip":
        for _ in range(int(rng.integers(1, 9))):
            b[int(rng.integers(256 if v2 else 28, len(b)))] = int(rng.integers(256))
        return bytes(b), True
    elif kind == "zeros":  # a header with an all-zero body: finite weights, a valid (useless) model
        b[256 if v2 else 28:] = bytes(len(b) - (256 if v2 else 28))
        return bytes(b), True
    elif kind == "flag":
        b[36] = int(rng.integers(0, 256))
    elif kind == "group":
        (g,) = struct.unpack_from("<i", b, 37)
        struct.pack_into("<i", b, 37, _pick(rng, [0, -8, 3, 7, 1 << 20, 2 * g, g // 2, 2**31 - 1]))
    elif kind == "version":
        struct.pack_into("<i", b, 4, _pick(rng, [0, 1, 3, -1, 2**31 - 1]))
    elif kind == "magic":  # a v0 file that claims to be v2
        b[:4] = MAGIC
    data = bytes(b)
    return data, llama2c_maybe_valid(data)


# tokenizers -----------------------------------------------------------------------------------------------

def _parse_tokenizer_bin(base: bytes) -> tuple[int, list[tuple[float, bytes]]]:
    (max_len,) = struct.unpack_from("<i", base, 0)
    recs, off = [], 4
    while off < len(base):
        score, n = struct.unpack_from("<fi", base, off)
        recs.append((score, base[off + 8: off + 8 + n]))
        off += 8 + n
    return max_len, recs


def tokenizer_bin_bytes(max_len: int, recs: list[tuple[float, bytes]]) -> bytes:
    return struct.pack("<i", max_len) + b"".join(struct.pack("<fi", s, len(p)) + p for s, p in recs)


def mutate_tokenizer_bin(rng: Rng, base: bytes) -> tuple[bytes, bool]:
    """One mutation of a valid tokenizer.bin `base` whose token count is the model's vocabulary (so a
    record more or less is a mismatch the compiler must refuse)."""
    max_len, recs = _parse_tokenizer_bin(base)
    longest = max(len(p) for _, p in recs)
    kind = _pick(rng, ["truncate", "append_record", "append_bytes", "drop_record", "negative_len", "len_past_end",
                       "max_len_bad", "max_len_short", "max_len_long", "nonfinite_score", "piece_bytes",
                       "piece_new", "empty_piece", "duplicate", "flip", "empty"])
    i = int(rng.integers(len(recs)))
    s, p = recs[i]
    if kind == "truncate":
        return base[: int(rng.integers(0, len(base)))], False
    if kind == "empty":
        return b"", False
    if kind == "append_record":
        return base + struct.pack("<fi", -1.0, 1) + b"z", False
    if kind == "append_bytes":  # fewer than a record header
        return base + rng.bytes(int(rng.integers(1, 8))), False
    if kind == "drop_record":
        return tokenizer_bin_bytes(max_len, recs[:i] + recs[i + 1:]), False
    if kind == "flip":
        b = bytearray(base)
        for _ in range(int(rng.integers(1, 5))):
            b[int(rng.integers(4, len(b)))] = int(rng.integers(256))
        return bytes(b), True
    off = 4 + sum(8 + len(q) for _, q in recs[:i])
    b = bytearray(base)
    if kind == "negative_len":
        struct.pack_into("<i", b, off + 4, -int(rng.integers(1, 2**31)))
        return bytes(b), False
    if kind == "len_past_end":
        last = 4 + sum(8 + len(q) for _, q in recs[:-1])
        struct.pack_into("<i", b, last + 4, len(recs[-1][1]) + int(rng.integers(1, max_len + 1)))
        return bytes(b), False
    if kind == "max_len_bad":
        return tokenizer_bin_bytes(_pick(rng, [0, -1, 2**31 - 1, 1 << 17]), recs), False
    if kind == "max_len_short":
        return tokenizer_bin_bytes(longest - 1, recs), False
    if kind == "max_len_long":
        return tokenizer_bin_bytes(longest + int(rng.integers(1, 1000)), recs), True
    if kind == "nonfinite_score":
        recs[i] = (_pick(rng, [math.nan, math.inf, -math.inf]), p)
        return tokenizer_bin_bytes(max_len, recs), False
    if kind == "piece_bytes":  # the same length, any bytes: not UTF-8, NUL, newlines, quotes, '*/'
        recs[i] = (s, _pick(rng, [rng.bytes(len(p)), (b'*/"\\\n\0' * len(p))[: len(p)]]))
    elif kind == "piece_new":
        recs[i] = (s, rng.bytes(int(rng.integers(1, max_len + 1))))
    elif kind == "empty_piece":
        recs[i] = (s, b"")
    elif kind == "duplicate":
        recs[i] = recs[int(rng.integers(len(recs)))]
    return tokenizer_bin_bytes(max_len, recs), True


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _ld(field: int, data: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def sentencepiece_bytes(pieces: list[tuple[bytes, float, int]], bpe: bool = True) -> bytes:
    """A sentencepiece ModelProto written field by field (no protobuf dependency): pieces as
    (text, score, type) with type 1 normal, 2 unknown, 3 control, 6 byte; a BPE trainer spec with
    byte_fallback."""
    out = b"".join(_ld(1, _ld(1, p) + b"\x15" + struct.pack("<f", s) + b"\x18" + _varint(t)) for p, s, t in pieces)
    trainer = (b"\x18" + _varint(2 if bpe else 1)) + (_varint(35 << 3) + b"\x01" if bpe else b"")
    return out + _ld(2, trainer)


def sentencepiece_pieces(vocab: int) -> list[tuple[bytes, float, int]]:
    """unk, bos, eos, the 256 byte pieces, then distinct words up to `vocab` (>= 260) pieces."""
    ps = [(b"<unk>", 0.0, 2), (b"<s>", 0.0, 3), (b"</s>", 0.0, 3)]
    ps += [(f"<0x{i:02X}>".encode(), 0.0, 6) for i in range(256)]
    k = 0
    while len(ps) < vocab:
        ps.append((("\u2581w" if k % 2 else "w").encode() + str(k).encode(), -1.0 - k, 1))
        k += 1
    return ps


def mutate_sentencepiece(rng: Rng, vocab: int) -> tuple[bytes, bool]:
    """A sentencepiece model of `vocab` pieces, mutated."""
    ps = sentencepiece_pieces(vocab)
    kind = _pick(rng, ["valid", "not_utf8", "duplicate", "no_unk", "truncate", "flip", "empty", "garbage"])
    i = int(rng.integers(259, len(ps)))
    if kind == "not_utf8":
        ps[i] = (b"\xff\xfe" + ps[i][0], -1.0, 1)
    elif kind == "duplicate":
        ps[i] = (ps[i - 1][0], -1.0, 1)
    elif kind == "no_unk":
        ps[0] = (b"<unk>", 0.0, 1)
    data = sentencepiece_bytes(ps)
    if kind == "truncate":
        return data[: int(rng.integers(0, len(data)))], True  # a cut on a field boundary is still a model
    if kind == "flip":
        b = bytearray(data)
        for _ in range(int(rng.integers(1, 5))):
            b[int(rng.integers(len(b)))] = int(rng.integers(256))
        return bytes(b), True
    if kind == "empty":
        return b"", False
    if kind == "garbage":
        return rng.bytes(int(rng.integers(1, 4096))), True
    return data, kind in ("valid", "no_unk")  # sentencepiece accepts a BPE model without unk (unk_id -1)
