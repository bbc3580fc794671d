"""Tokenizers: llama2.c's tokenizer.bin (encoded exactly as run.c does) and sentencepiece .model files.

Both expose the same small interface, so the CLI can turn a prompt into ids and stream generated ids
back into text without caring where the vocabulary came from. Pieces are kept as bytes: a byte-fallback
piece such as <0xE4> is a third of a character, and only the caller that joins pieces can decode UTF-8.
"""

from __future__ import annotations

import heapq
import math
import re
import struct
from abc import ABC, abstractmethod
from pathlib import Path

from slmc.errors import SlmcError
from slmc.frontend.safe_io import read_small

BOS_ID = 1
EOS_ID = 2
UNK_ID = 0
_BYTE_PIECE = re.compile(rb"<0x([0-9A-Fa-f]{2})>")
_FIRST_BYTE_ID = 3  # sentencepiece with byte_fallback puts <0x00>..<0xFF> right after unk, bos, eos
# caps on what a tokenizer file may claim: real vocabularies are <= 256k pieces of <= a few hundred bytes,
# and their files a few MB (Llama 3's 128k-piece tokenizer.model is 2 MB)
MAX_VOCAB = 1 << 20
MAX_PIECE_BYTES = 1 << 16
MAX_TOKENIZER_BYTES = 64 << 20


class Tokenizer(ABC):
    """Text <-> ids. `pieces[i]` is piece i as bytes with sentencepiece's '▁' already turned into ' '."""

    bos_id: int = BOS_ID
    eos_id: int = EOS_ID

    def __init__(self, pieces: list[bytes], source: str) -> None:
        self.pieces = pieces
        self.source = source
        # byte pieces are recognised by spelling, as run.c's sscanf("<0x%02hhX>") does
        self._byte_of: dict[int, int] = {}
        for i, p in enumerate(pieces):
            m = _BYTE_PIECE.fullmatch(p)
            if m:
                self._byte_of[i] = int(m.group(1), 16)

    @property
    def vocab_size(self) -> int:
        return len(self.pieces)

    @abstractmethod
    def encode(self, text: str, bos: bool = True, eos: bool = False) -> list[int]:
        """Token ids for `text`, with BOS first and EOS last when asked for."""

    def piece_bytes(self, prev_id: int, id: int) -> bytes:
        """The bytes that token `id` adds to the output when it follows `prev_id` (llama2.c's decode)."""
        self._check_id(id)
        if id in self._byte_of:
            return bytes([self._byte_of[id]])
        p = self.pieces[id]
        # sentencepiece's dummy prefix: the first word after BOS carries a space the user never typed
        if prev_id == self.bos_id and p.startswith(b" "):
            p = p[1:]
        return p

    def piece(self, prev_id: int, id: int) -> str:
        """`piece_bytes` as text. A lone byte of a multi-byte character comes out as U+FFFD: a streaming
        caller that wants those characters whole feeds `piece_bytes` to an incremental UTF-8 decoder."""
        return self.piece_bytes(prev_id, id).decode("utf-8", errors="replace")

    def decode(self, ids: list[int]) -> str:
        """The text of `ids`, without BOS/EOS and without the dummy-prefix space of the first piece."""
        out = bytearray()
        prev = self.bos_id  # sentencepiece drops the dummy prefix whether or not BOS is present
        for i in ids:
            if i not in (self.bos_id, self.eos_id):
                out += self.piece_bytes(prev, i)
            prev = i
        return out.decode("utf-8", errors="replace")

    def _check_id(self, id: int) -> None:
        if not 0 <= id < len(self.pieces):
            raise SlmcError(f"token id {id} is outside the vocabulary of {len(self.pieces)} ({self.source})",
                            "the ids come from a different model or tokenizer")


class Llama2cTokenizer(Tokenizer):
    """llama2.c's tokenizer.bin: int32 max_token_length, then per token float32 score, int32 len, bytes."""

    def __init__(self, pieces: list[bytes], scores: list[float], max_token_length: int, source: str) -> None:
        super().__init__(pieces, source)
        self.scores = scores
        self.max_token_length = max_token_length
        self._lookup: dict[bytes, int] = {}
        for i, p in enumerate(pieces):
            self._lookup.setdefault(p, i)  # run.c's bsearch over duplicates is unspecified; take the first
        # run.c assumes byte pieces at 3 + b; a vocabulary without them gets unk, like sentencepiece would
        self._has_bytes = all(self._byte_of.get(_FIRST_BYTE_ID + b) == b for b in range(256))

    @classmethod
    def from_file(cls, path: Path) -> Llama2cTokenizer:
        raw = _read(path)
        bad = f"{path} is not a llama2.c tokenizer.bin"
        if len(raw) < 4:
            raise SlmcError(f"{bad}: {len(raw)} bytes is too short for its header", "re-export the tokenizer")
        (max_len,) = struct.unpack_from("<i", raw, 0)
        # run.c allocates max_token_length * 2 + 3 bytes for its merge buffer: a huge value is a corrupt file
        if not 0 < max_len <= MAX_PIECE_BYTES:
            raise SlmcError(f"{bad}: implausible max_token_length {max_len} (expected 1..{MAX_PIECE_BYTES})",
                            "the file is corrupt or of another kind")
        pieces: list[bytes] = []
        scores: list[float] = []
        off = 4
        while off < len(raw):
            if len(pieces) >= MAX_VOCAB:
                raise SlmcError(f"{bad}: it holds more than {MAX_VOCAB} tokens", "the file is corrupt")
            if off + 8 > len(raw):
                raise SlmcError(f"{path} is truncated inside token {len(pieces)} (byte {off} of {len(raw)})",
                                "re-export the tokenizer")
            score, n = struct.unpack_from("<fi", raw, off)
            if not math.isfinite(score) or not 0 <= n <= max_len:
                raise SlmcError(f"{bad}: token {len(pieces)} has score {score} and length {n} "
                                f"(max_token_length {max_len})", "the file is corrupt or of another kind")
            if off + 8 + n > len(raw):
                raise SlmcError(f"{path} is truncated inside token {len(pieces)}: its {n} bytes run past the end "
                                f"({off + 8 + n} > {len(raw)})", "re-export the tokenizer")
            pieces.append(raw[off + 8: off + 8 + n])  # any bytes: a piece need not be UTF-8 on its own
            scores.append(score)
            off += 8 + n
        if len(pieces) <= EOS_ID:
            raise SlmcError(f"{bad}: it holds only {len(pieces)} tokens", "re-export the tokenizer")
        return cls(pieces, scores, max_len, f"llama2.c tokenizer {path.name}")

    def encode(self, text: str, bos: bool = True, eos: bool = False) -> list[int]:
        # run.c's encode: BOS, a dummy-prefix " " token, one token per UTF-8 character (bytes when the
        # character is not a piece), then merge the best-scoring adjacent pair until no pair is a piece.
        ids: list[int] = [self.bos_id] if bos else []
        data = text.encode("utf-8")
        if data:
            ids += self._lookup_or_bytes(b" ")
        for ch in _utf8_chunks(data):
            ids += self._lookup_or_bytes(ch)
        ids = self._merge(ids)
        if eos:
            ids.append(self.eos_id)
        return ids

    def _lookup_or_bytes(self, s: bytes) -> list[int]:
        i = self._lookup.get(s)
        if i is not None:
            return [i]
        if self._has_bytes:
            return [_FIRST_BYTE_ID + b for b in s]
        return [UNK_ID]

    def _merge(self, ids: list[int]) -> list[int]:
        """run.c rescans every pair after each merge (quadratic); this is the same choice, highest score
        and leftmost on ties, made with a heap over a linked list. BOS takes part, as in run.c."""
        n = len(ids)
        tok = list(ids)
        nxt = list(range(1, n + 1))
        prv = list(range(-1, n - 1))
        ver = [0] * n  # bumped when a node's token changes, so heap entries about its old token are skipped
        floor = struct.unpack("<f", struct.pack("<f", -1e10))[0]  # run.c's float best_score start
        heap: list[tuple[float, int, int, int, int, int]] = []

        def push(a: int) -> None:
            b = nxt[a]
            if b >= n:
                return
            m = self._lookup.get(self.pieces[tok[a]] + self.pieces[tok[b]])
            if m is not None and self.scores[m] > floor:
                heapq.heappush(heap, (-self.scores[m], a, b, ver[a], ver[b], m))

        for a in range(n - 1):
            push(a)
        alive = [True] * n
        while heap:
            _, a, b, va, vb, m = heapq.heappop(heap)
            if not (alive[a] and alive[b] and nxt[a] == b and ver[a] == va and ver[b] == vb):
                continue
            tok[a] = m
            ver[a] += 1
            alive[b] = False
            nxt[a] = nxt[b]
            if nxt[b] < n:
                prv[nxt[b]] = a
            if prv[a] >= 0:
                push(prv[a])  # its old entry names a's old version, so only this one can win
            push(a)
        return [tok[i] for i in range(n) if alive[i]]


class SentencePieceTokenizer(Tokenizer):
    """A sentencepiece .model, encoded and decoded by the sentencepiece library itself."""

    def __init__(self, path: Path) -> None:
        raw = _read(path)
        try:
            import sentencepiece as spm
        except ImportError:
            raise SlmcError(f"reading {path} needs the sentencepiece package", "pip install sentencepiece, or pass "
                            "a llama2.c tokenizer.bin") from None
        sp = spm.SentencePieceProcessor()
        pieces: list[bytes] = []
        # the library checks the proto when it loads, but a piece that is not UTF-8 only fails when it is
        # read back as a str: read every piece here, so a corrupt model fails now and in one place
        try:
            sp.LoadFromSerializedProto(raw)
            n = sp.get_piece_size()
            if not 0 < n <= MAX_VOCAB:
                raise SlmcError(f"{path} is a sentencepiece model with {n} pieces (expected 1..{MAX_VOCAB})",
                                "re-export the tokenizer")
            for i in range(n):
                if sp.is_control(i):
                    pieces.append(b"")
                elif sp.is_unknown(i):
                    pieces.append(sp.decode([i]).encode("utf-8"))  # " ⁇ ", as sentencepiece prints it
                else:
                    pieces.append(sp.id_to_piece(i).replace("\u2581", " ").encode("utf-8"))
            bos, eos = sp.bos_id(), sp.eos_id()
        except UnicodeDecodeError as e:
            raise SlmcError(f"{path}: sentencepiece piece {len(pieces)} is not UTF-8 text ({e.reason})",
                            "the tokenizer model is corrupt; re-export it") from None
        except (RuntimeError, OSError, ValueError, TypeError, IndexError) as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise SlmcError(f"{path} is not a sentencepiece model ({first[:120]})",
                            "pass a tokenizer.model or a llama2.c tokenizer.bin") from None
        self._sp = sp
        super().__init__(pieces, f"sentencepiece {path.name}")
        self.bos_id = bos
        self.eos_id = eos

    def encode(self, text: str, bos: bool = True, eos: bool = False) -> list[int]:
        if (bos and self.bos_id < 0) or (eos and self.eos_id < 0):
            raise SlmcError(f"{self.source} defines no {'BOS' if bos and self.bos_id < 0 else 'EOS'} token",
                            "encode without it, or use the tokenizer the model was trained with")
        ids = list(self._sp.encode(text))
        if bos:
            ids.insert(0, self.bos_id)
        if eos:
            ids.append(self.eos_id)
        return ids

    def decode(self, ids: list[int]) -> str:
        for i in ids:
            self._check_id(i)
        return self._sp.decode(list(ids))


def load_tokenizer(path: Path) -> Tokenizer:
    """A tokenizer.bin or a sentencepiece .model, told apart by extension, else by trying both."""
    path = Path(path)
    if path.suffix == ".model":
        return SentencePieceTokenizer(path)
    if path.suffix == ".bin":
        return Llama2cTokenizer.from_file(path)
    try:
        return SentencePieceTokenizer(path)
    except SlmcError:
        pass
    try:
        return Llama2cTokenizer.from_file(path)
    except SlmcError as e:
        raise SlmcError(f"{path} is neither a sentencepiece model nor a llama2.c tokenizer.bin ({e.cause})",
                        "pass a tokenizer.model or a tokenizer.bin") from None


def find_tokenizer(model_path: Path) -> Path | None:
    """The tokenizer that sits beside a model file (or inside a model folder), if any."""
    model_path = Path(model_path)
    folder = model_path if model_path.is_dir() else model_path.parent
    for name in ("tokenizer.model", "tokenizer.bin"):
        if (folder / name).is_file():
            return folder / name
    return None


def check_vocab(tok: Tokenizer, vocab_size: int) -> None:
    if tok.vocab_size != vocab_size:
        raise SlmcError(f"the tokenizer ({tok.source}) has {tok.vocab_size} tokens but the model has {vocab_size}",
                        "pass the tokenizer that was trained with this model (--tokenizer)")


def _read(path: Path) -> bytes:
    """A tokenizer file, whole: it is small, so it is read at once, but only if it is a regular file under
    the cap (a FIFO or /dev/zero passed as --tokenizer must not block or read forever)."""
    return read_small(Path(path), "tokenizer", "check the path (pass a tokenizer.model or tokenizer.bin)",
                      MAX_TOKENIZER_BYTES)


def _utf8_chunks(data: bytes) -> list[bytes]:
    """run.c's grouping: a lead byte starts a chunk, continuation bytes (10xxxxxx) join it, at most 4."""
    chunks: list[bytes] = []
    start = 0
    for k in range(1, len(data) + 1):
        at_end = k == len(data)
        if at_end or (data[k] & 0xC0) != 0x80 or k - start >= 4:
            chunks.append(data[start:k])
            start = k
    return chunks


class TextStream:
    """Streams generated ids as text: bytes of a character split over several byte-fallback tokens are
    held back until the character is whole."""

    def __init__(self, tok: Tokenizer, prev_id: int) -> None:
        import codecs

        self.tok, self.prev = tok, prev_id
        self._dec = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, id: int) -> str:
        text = self._dec.decode(self.tok.piece_bytes(self.prev, id))
        self.prev = id
        return text


def write_llama2c_tokenizer(sp_model: Path, out: Path) -> Path:
    """A sentencepiece .model as llama2.c's tokenizer.bin, byte for byte as its tokenizer.py exports it:
    max_token_length, then (score, len, bytes) per id; '▁' becomes ' ', BOS/EOS become '\\n<s>\\n' and
    '\\n</s>\\n', byte pieces stay '<0x0A>'."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(sp_model))
    tokens, scores = [], []
    for i in range(sp.get_piece_size()):
        piece = "\n<s>\n" if i == sp.bos_id() else "\n</s>\n" if i == sp.eos_id() else sp.id_to_piece(i)
        tokens.append(piece.replace("\u2581", " ").encode("utf-8"))
        scores.append(sp.get_score(i))
    with open(out, "wb") as f:
        f.write(struct.pack("<I", max(len(t) for t in tokens)))
        for tok, score in zip(tokens, scores):
            f.write(struct.pack("<fI", score, len(tok)))
            f.write(tok)
    return Path(out)
