"""Evaluate a bundled model file (llama2.c checkpoint or HF folder) with slmc's own numpy reference (no torch).

The validation loss in models/default/README.md is computed by the PyTorch model during training;
recomputing it from nothing but the exported `model.bin`, through slmc's loader and its reference
interpreter, proves that the shipped file, its tensor order and the published number all agree.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import sentencepiece as spm

from slmc.frontend.build import build_step_graph
from slmc.frontend.decoder import DecoderModel
from slmc.frontend.load import load_model
from slmc.reference.interp import run
from slmc.train.stories import generate_stories

BOS, EOS = 1, 2


def forward(model: DecoderModel, tokens: list[int] | np.ndarray) -> np.ndarray:
    """Logits (T, vocab) of a causal sequence from position 0: one prompt step over all of it."""
    ids = np.asarray(tokens, dtype=np.int32)
    g = build_step_graph(model, len(ids), "fp32")
    return run(g, {"tokens": ids, "pos": np.array([0], np.int32)})[g.outputs[0].name].astype(np.float64)


def story_token_ids(sp: spm.SentencePieceProcessor, story: str, seq_len: int) -> list[int]:
    """BOS + the story's pieces, as llama2.c's pretokenizer writes them, cut to seq_len + 1 ids
    (one window: seq_len inputs, seq_len targets)."""
    return ([BOS] + sp.encode(story.strip()))[: seq_len + 1]


def validation_loss(model_path: str | Path, tokenizer_model_path: str | Path, n_stories: int,
                    seed: int) -> float:
    """Mean next-token cross-entropy (nats per token) over `n_stories` fresh stories of `seed`:
    each story is fed alone from BOS at position 0 and every story token is a target."""
    m = _load(model_path)
    sp = spm.SentencePieceProcessor(model_file=str(tokenizer_model_path))
    total, count = 0.0, 0
    for story in generate_stories(n_stories, seed):
        ids = story_token_ids(sp, story, m.config.seq_len)
        logits = forward(m, ids[:-1])
        mx = logits.max(-1, keepdims=True)
        logz = (mx + np.log(np.exp(logits - mx).sum(-1, keepdims=True)))[:, 0]
        targets = np.asarray(ids[1:])
        total += float((logz - logits[np.arange(targets.size), targets]).sum())
        count += targets.size
    return total / count


def greedy_continuation(model_path: str | Path, tokenizer_model: str | Path, prompt: str, n_tokens: int) -> str:
    """The prompt and its greedy continuation, decoded together; stops before BOS/EOS (a new story)."""
    m = _load(model_path)
    sp = spm.SentencePieceProcessor(model_file=str(tokenizer_model))
    ids = [BOS] + sp.encode(prompt)
    for _ in range(n_tokens):
        if len(ids) >= m.config.seq_len:
            break
        nxt = int(np.argmax(forward(m, ids)[-1]))
        if nxt in (BOS, EOS):
            break
        ids.append(nxt)
    return sp.decode(ids[1:])


def _load(path: str | Path) -> DecoderModel:
    """A model.bin or a HuggingFace folder (models/moe), through the loader `slmc compile` uses."""
    m = load_model(Path(path))
    if not isinstance(m, DecoderModel):
        raise TypeError(f"{path} is not a decoder model")
    return m
