"""A compiled project to draw, made here from a seeded random model so these tests need nothing from ../shared."""

from __future__ import annotations

from pathlib import Path

import pytest

from slmc.driver import CompileOptions, compile_model
from slmc.frontend.decoder import DecoderConfig
from slmc.frontend.random_model import random_decoder

SMALL = DecoderConfig(dim=32, hidden_dim=64, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=64, seq_len=32)


def compile_small(out: Path, numerics: str = "q8", prefill_chunk: int | None = 4) -> Path:
    compile_model(CompileOptions(Path("random-small"), "host", numerics, out, prefill_chunk), model=random_decoder(SMALL))
    return out


@pytest.fixture
def compile_small_project():
    """`compile_small` for tests that need another variant (a test module cannot import this file
    by name: tests/conftest.py owns the module name `conftest`)."""
    return compile_small


@pytest.fixture(scope="session")
def small_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Decode and prompt graphs, q8 (so there are quantized side buffers and attention scratch)."""
    return compile_small(tmp_path_factory.mktemp("report") / "small")
