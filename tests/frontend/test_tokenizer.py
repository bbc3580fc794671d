"""Tokenizers against sentencepiece itself: a tiny BPE model trained here, exported to llama2.c's
tokenizer.bin the way llama2.c's tokenizer.py does, must encode exactly as sentencepiece encodes."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slmc.errors import SlmcError
from slmc.frontend.tokenizer import (Llama2cTokenizer, SentencePieceTokenizer, check_vocab, find_tokenizer,
                                     load_tokenizer, write_llama2c_tokenizer)

spm = pytest.importorskip("sentencepiece")

WORDS = ("once upon a time there was a little girl named lily she liked to play outside with her dog "
         "the sun was bright and the sky was blue they went to the park and saw a big tree "
         "café naïve über façade résumé 3 12 2024 happy sad run jumped").split()

TEXTS = [
    "Once upon a time, there was a little girl named Lily.",
    "hello",
    "a",
    " leading space",
    "double  space and trailing space ",
    "line one\nline two\n\nend",
    "\nstarts with a newline",
    "tabs\tand\r\ncarriage returns",
    "café über naïve façade",
    "unknown: 日本語 ✓ 🙂 Ω",
    "digits 1234567890 and punctuation !?;:'\"()[]{}",
    "ALL CAPS WORDS THE PARK",
    "<unk> <s> </s> <0x41> look like specials but are text",
    " ",
    "",
    "x" * 300,
]


@pytest.fixture(scope="module")
def sp_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = random.Random(0)
    lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 15))) for _ in range(2000)]
    lines = [ln.capitalize() + rng.choice([".", "!", "?", ","]) for ln in lines]
    d = tmp_path_factory.mktemp("spm")
    prefix = d / "tokenizer"
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_prefix=str(prefix), vocab_size=360, model_type="bpe",
        byte_fallback=True, unk_id=0, bos_id=1, eos_id=2, pad_id=-1, character_coverage=1.0,
        # Llama's settings: keep the text as typed, so both encoders see the same characters
        normalization_rule_name="identity", remove_extra_whitespaces=False, add_dummy_prefix=True,
        allow_whitespace_only_pieces=True, split_digits=True, num_threads=1, minloglevel=2)
    return prefix.with_suffix(".model")


@pytest.fixture(scope="module")
def sp(sp_model: Path) -> "spm.SentencePieceProcessor":
    return spm.SentencePieceProcessor(model_file=str(sp_model))


@pytest.fixture(scope="module")
def tok_bin(sp_model: Path) -> Path:
    return write_llama2c_tokenizer(sp_model, sp_model.with_name("tokenizer.bin"))


@pytest.mark.parametrize("text", TEXTS)
def test_bin_encode_matches_sentencepiece(tok_bin: Path, sp: "spm.SentencePieceProcessor", text: str) -> None:
    tok = load_tokenizer(tok_bin)
    assert isinstance(tok, Llama2cTokenizer)
    assert tok.encode(text) == [1] + sp.encode(text)
    assert tok.encode(text, bos=False, eos=True) == sp.encode(text) + [2]


@pytest.mark.parametrize("text", TEXTS)
def test_decode_round_trips(tok_bin: Path, sp_model: Path, sp: "spm.SentencePieceProcessor", text: str) -> None:
    for tok in (load_tokenizer(tok_bin), load_tokenizer(sp_model)):
        ids = tok.encode(text)
        assert tok.decode(ids) == text
        assert tok.decode(ids) == sp.decode(ids)
        # streaming, as the generate loop does it: bytes joined piece by piece give the same text
        stream = b"".join(tok.piece_bytes(p, i) for p, i in zip(ids, ids[1:]))
        assert stream.decode("utf-8") == text


def test_sentencepiece_tokenizer(sp_model: Path, sp: "spm.SentencePieceProcessor") -> None:
    tok = load_tokenizer(sp_model)
    assert isinstance(tok, SentencePieceTokenizer)
    assert (tok.vocab_size, tok.bos_id, tok.eos_id) == (sp.get_piece_size(), 1, 2)
    assert tok.encode("the park", eos=True) == [1] + sp.encode("the park") + [2]


def test_piece_strips_space_after_bos_and_resolves_bytes(tok_bin: Path, sp: "spm.SentencePieceProcessor") -> None:
    tok = load_tokenizer(tok_bin)
    the = sp.piece_to_id("\u2581the")
    assert the != sp.unk_id()
    assert tok.piece(1, the) == "the"
    assert tok.piece(the, the) == " the"
    nl = sp.piece_to_id("<0x0A>")
    assert tok.piece(the, nl) == "\n"
    assert tok.piece_bytes(the, sp.piece_to_id("<0xE6>")) == b"\xe6"
    with pytest.raises(SlmcError, match="outside the vocabulary"):
        tok.piece(1, tok.vocab_size)


def c_encode(tok: Llama2cTokenizer, text: str, bos: bool) -> list[int]:
    """llama2.c run.c's encode() transliterated: the quadratic rescan that the tokenizer replaces with a heap."""
    lookup = {p: i for i, p in reversed(list(enumerate(tok.pieces)))}
    ids = [1] if bos else []
    data = text.encode("utf-8")
    if data:
        ids.append(lookup[b" "])
    buf = b""
    for k, c in enumerate(data):
        if c & 0xC0 != 0x80:
            buf = b""
        buf += bytes([c])
        if k + 1 < len(data) and data[k + 1] & 0xC0 == 0x80 and len(buf) < 4:
            continue
        ids += [lookup[buf]] if buf in lookup else [b + 3 for b in buf]
        buf = b""
    while True:
        best, best_id, best_idx = struct.unpack("f", struct.pack("f", -1e10))[0], -1, -1
        for i in range(len(ids) - 1):
            m = lookup.get(tok.pieces[ids[i]] + tok.pieces[ids[i + 1]])
            if m is not None and tok.scores[m] > best:
                best, best_id, best_idx = tok.scores[m], m, i
        if best_idx == -1:
            return ids
        ids[best_idx:best_idx + 2] = [best_id]


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list("the park lily 日✓\n.,ab  ")), max_size=40), bos=st.booleans())
def test_heap_merge_equals_runc_rescan(tok_bin: Path, text: str, bos: bool) -> None:
    tok = Llama2cTokenizer.from_file(tok_bin)
    assert tok.encode(text, bos=bos) == c_encode(tok, text, bos)


def test_tie_breaks_leftmost(tmp_path: Path) -> None:
    # hand-made vocabulary: "ab" and "bc" score the same, so run.c merges the leftmost pair of "abc" first
    pieces = [b"<unk>", b"\n<s>\n", b"\n</s>\n", b" ", b"a", b"b", b"c", b"ab", b"bc", b" ab"]
    scores = [0.0, 0.0, 0.0, -5.0, -5.0, -5.0, -5.0, -1.0, -1.0, -2.0]
    path = tmp_path / "t.bin"
    with open(path, "wb") as f:
        f.write(struct.pack("<i", max(len(p) for p in pieces)))
        for p, s in zip(pieces, scores):
            f.write(struct.pack("<fi", s, len(p)) + p)
    tok = load_tokenizer(path)
    assert tok.encode("abc") == [1, 9, 6]  # "ab" first, then " "+"ab", "c" left alone
    assert tok.encode("bca", bos=False) == [3, 8, 4]


def test_load_by_content_and_find(tmp_path: Path, tok_bin: Path, sp_model: Path) -> None:
    (tmp_path / "a").write_bytes(sp_model.read_bytes())
    (tmp_path / "b").write_bytes(tok_bin.read_bytes())
    assert isinstance(load_tokenizer(tmp_path / "a"), SentencePieceTokenizer)
    assert isinstance(load_tokenizer(tmp_path / "b"), Llama2cTokenizer)
    model = tmp_path / "model.bin"
    model.write_bytes(b"")
    assert find_tokenizer(model) is None
    (tmp_path / "tokenizer.bin").write_bytes(tok_bin.read_bytes())
    assert find_tokenizer(model) == tmp_path / "tokenizer.bin"
    (tmp_path / "tokenizer.model").write_bytes(sp_model.read_bytes())
    assert find_tokenizer(model) == tmp_path / "tokenizer.model"
    assert find_tokenizer(tmp_path) == tmp_path / "tokenizer.model"


def test_check_vocab_names_both_sizes(tok_bin: Path) -> None:
    tok = load_tokenizer(tok_bin)
    check_vocab(tok, 360)
    with pytest.raises(SlmcError, match=r"360 tokens but the model has 512"):
        check_vocab(tok, 512)


def test_truncated_and_garbage_files(tmp_path: Path, tok_bin: Path) -> None:
    raw = tok_bin.read_bytes()
    cases = {
        "empty.bin": b"",
        "short.bin": raw[:3],
        "cut_in_token.bin": raw[: len(raw) // 2 + 1],
        "cut_in_record_header.bin": raw[:4 + 8 + 5 + 3],  # unk record is 8 + len("<unk>") bytes
        "only_header.bin": raw[:4],
        "garbage.bin": random.Random(1).randbytes(4096),
        "negative_len.bin": struct.pack("<ifi", 8, 0.0, -4),
        "nan_score.bin": struct.pack("<ifi", 8, float("nan"), 1) + b"a",
        "garbage.model": random.Random(2).randbytes(4096),
        "noext": random.Random(3).randbytes(100),
    }
    for name, data in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(SlmcError):
            load_tokenizer(p)
    with pytest.raises(SlmcError, match="cannot read"):
        load_tokenizer(tmp_path / "missing.bin")
