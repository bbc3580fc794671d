"""The bundled default model: its corpus grammar, its shipped files, and the claims in its README."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from slmc.frontend import llama2c
from slmc.train import evaluate
from slmc.train.stories import generate_stories, is_grammatical, sentence_regex, split_sentences

MODEL_DIR = Path(__file__).resolve().parents[1] / "models" / "default"
MODEL_BIN = MODEL_DIR / "model.bin"
TOKENIZER_MODEL = MODEL_DIR / "tokenizer.model"
shipped = pytest.mark.skipif(not MODEL_BIN.exists(), reason="models/default not built (make train-default)")


def _meta() -> dict:
    return json.loads((MODEL_DIR / "meta.json").read_text())


def test_stories_are_deterministic_varied_and_grammatical() -> None:
    a = generate_stories(200, seed=0)
    assert a == generate_stories(200, seed=0)
    assert a != generate_stories(200, seed=1)
    assert len(set(a)) == 200
    assert len({split_sentences(s)[0] for s in a}) > 150
    rx = sentence_regex()
    for story in a:
        sentences = split_sentences(story)
        assert 3 <= len(sentences) <= 8, story
        assert " ".join(sentences) == story
        for s in sentences:
            assert rx.fullmatch(s), s
            assert s[0].isupper() or s[0] == '"'
    assert not any(" a a" in s or " a o" in s or " an b" in s for s in a)  # articles agree


def test_grammar_recogniser_rejects_near_misses() -> None:
    assert is_grammatical("Once upon a time, there was a little girl named Lily.")
    assert not is_grammatical("Once upon a time, there was a little girl named.")
    assert not is_grammatical("Once upon a time, there was an little girl named Lily.")
    assert not is_grammatical("Once upon a time, there was a little girl named Lily named Lily.")


@shipped
def test_shipped_files_fit_and_have_llama2c_layout() -> None:
    meta = _meta()
    a = meta["architecture"]
    sizes = sum((MODEL_DIR / f).stat().st_size for f in ("model.bin", "tokenizer.bin", "tokenizer.model"))
    assert sizes <= 4 * 1024 * 1024
    header = struct.unpack("<7i", MODEL_BIN.read_bytes()[:28])
    assert header == (a["dim"], a["hidden_dim"], a["n_layers"], a["n_heads"], a["n_kv_heads"],
                      a["vocab_size"], a["seq_len"])
    assert a["n_kv_heads"] < a["n_heads"] and a["hidden_dim"] % 32 == 0 and a["dim"] % 32 == 0
    half = a["dim"] // a["n_heads"] // 2  # the legacy RoPE tables close the file (tied classifier)
    tables = np.frombuffer(MODEL_BIN.read_bytes()[-2 * a["seq_len"] * half * 4:], "<f4").reshape(2, a["seq_len"], half)
    angles = np.arange(a["seq_len"])[:, None] / 10000.0 ** (np.arange(half) / half)
    np.testing.assert_allclose(tables, np.stack([np.cos(angles), np.sin(angles)]), atol=1e-4)
    raw = (MODEL_DIR / "tokenizer.bin").read_bytes()
    max_len, pos, pieces = struct.unpack_from("<i", raw)[0], 4, []
    for _ in range(a["vocab_size"]):
        _, n = struct.unpack_from("<fi", raw, pos)
        pieces.append(raw[pos + 8: pos + 8 + n])
        pos += 8 + n
    assert pos == len(raw) and max_len == max(len(p) for p in pieces)
    assert pieces[:3] == [b"<unk>", b"\n<s>\n", b"\n</s>\n"] and pieces[3 + 0x0A] == b"<0x0A>"


@shipped
def test_validation_loss_reproduces_from_shipped_file() -> None:
    meta = _meta()
    loss = evaluate.validation_loss(MODEL_BIN, TOKENIZER_MODEL, meta["n_val_stories"], meta["val_seed"])
    assert abs(loss - meta["val_loss"]) < 1e-3
    assert loss < 1.0  # far below the 6.2 nats of a uniform guess over 512 pieces


@shipped
def test_greedy_story_is_grammatical() -> None:
    text = evaluate.greedy_continuation(MODEL_BIN, TOKENIZER_MODEL, "Once upon a time", 200)
    assert text == _meta()["greedy_text"]
    sentences = split_sentences(text)
    complete = [s for s in sentences if s.endswith((".", "!", "?", '"'))]
    assert len(complete) >= 3, text
    for s in complete:
        assert is_grammatical(s), s


def test_numpy_forward_matches_torch_through_export(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from slmc.train.torch_model import ModelArgs, Transformer, export_legacy

    torch.manual_seed(3)
    model = Transformer(ModelArgs())
    with torch.no_grad():  # weights large enough that every tensor visibly moves the logits
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * (0.15 if p.dim() == 2 else 0.3) + (1.0 if p.dim() == 1 else 0.0))
    path = tmp_path / "model.bin"
    export_legacy(model, path)
    ids = torch.randint(0, 512, (1, 48), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():  # float64 torch on the same (fp32-exact) weights: only layout can differ
        want = model.double()(ids)[0].numpy()
    got = evaluate.forward(llama2c.load(path), ids[0].numpy())
    assert np.abs(want).max() > 1.0
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
