"""frontend/rope.py against transformers' rotary embeddings: config.json as transformers writes it (and in
the older rope_scaling form), read by slmc's HF loader, gives tables within float32 rounding of the cos/sin
transformers computes, for every scaling slmc reads; without scaling the tables are llama2.c's, bit for bit."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from slmc.errors import SlmcError
from slmc.frontend.decoder import DecoderConfig, RopeScaling
from slmc.frontend.rope import rope_tables

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

POSITIONS = 512
ATOL = 3e-7  # float32 cos/sin of the same angle: torch's float32 against numpy's float64 rounded


def _run_c(seq_len: int, head_dim: int, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """llama2.c run.c's RoPE in float32 (build.py's tables before rope.py)."""
    j = np.arange(0, head_dim, 2, dtype=np.float32) / np.float32(head_dim)
    freq = (np.float32(1.0) / np.power(np.float64(theta), j.astype(np.float64)).astype(np.float32)).astype(np.float32)
    val = (np.arange(seq_len, dtype=np.float32)[:, None] * freq[None, :]).astype(np.float32)
    return np.cos(val.astype(np.float64)).astype(np.float32), np.sin(val.astype(np.float64)).astype(np.float32)


@pytest.mark.parametrize("head_dim, theta, seq_len", [(16, 10000.0, 64), (64, 500000.0, 300), (8, 1e6, 20),
                                                      (48, 10000.0, 100), (6, 10.0, 7)])
def test_unscaled_tables_are_llama2c_bit_for_bit(head_dim: int, theta: float, seq_len: int) -> None:
    cfg = DecoderConfig(dim=4 * head_dim, hidden_dim=8, n_layers=1, n_heads=4, n_kv_heads=4, vocab_size=10,
                        seq_len=seq_len, rope_theta=theta)
    for got, want in zip(rope_tables(cfg), _run_c(seq_len, head_dim, theta)):
        assert got.dtype == np.float32 and got.tobytes() == want.tobytes()


SMALL = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=4,
             vocab_size=256, bos_token_id=1, eos_token_id=2, pad_token_id=None)
LONG = [1.0, 1.1, 1.3, 1.8, 3.0, 6.0, 12.0, 24.0]
SHORT = [1.0, 1.02, 1.05, 1.1, 1.2, 1.4, 1.8, 2.5]
CASES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "linear": ("LlamaConfig", "llama", dict(max_position_embeddings=8192, rope_parameters=dict(
        rope_type="linear", rope_theta=10000.0, factor=4.0))),
    "linear_odd_factor": ("LlamaConfig", "llama", dict(max_position_embeddings=8192, rope_parameters=dict(
        rope_type="linear", rope_theta=10000.0, factor=3.3))),
    "dynamic": ("LlamaConfig", "llama", dict(max_position_embeddings=2048, rope_parameters=dict(
        rope_type="dynamic", rope_theta=10000.0, factor=2.0))),
    "llama3": ("LlamaConfig", "llama", dict(max_position_embeddings=131072, head_dim=16, rope_parameters=dict(
        rope_type="llama3", rope_theta=500000.0, factor=32.0, low_freq_factor=1.0, high_freq_factor=4.0,
        original_max_position_embeddings=8192))),
    "llama3_short_original": ("LlamaConfig", "llama", dict(max_position_embeddings=4096, rope_parameters=dict(
        rope_type="llama3", rope_theta=10000.0, factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
        original_max_position_embeddings=256))),
    "yarn": ("Qwen2Config", "qwen2", dict(max_position_embeddings=131072, rope_parameters=dict(
        rope_type="yarn", rope_theta=1000000.0, factor=4.0, original_max_position_embeddings=32768))),
    "yarn_explicit": ("LlamaConfig", "llama", dict(max_position_embeddings=16384, rope_parameters=dict(
        rope_type="yarn", rope_theta=10000.0, factor=8.0, original_max_position_embeddings=2048,
        attention_factor=1.3, beta_fast=16.0, beta_slow=2.0, truncate=False))),
    "yarn_mscale": ("LlamaConfig", "llama", dict(max_position_embeddings=16384, rope_parameters=dict(
        rope_type="yarn", rope_theta=10000.0, factor=8.0, original_max_position_embeddings=2048, mscale=1.0,
        mscale_all_dim=0.5))),
    "longrope": ("Phi3Config", "phi3", dict(max_position_embeddings=131072, original_max_position_embeddings=4096,
                                            rope_parameters=dict(rope_type="longrope", rope_theta=10000.0,
                                                                 short_factor=SHORT, long_factor=LONG))),
}


def _slmc_config(folder: Path) -> tuple[DecoderConfig, tuple[str, ...]]:
    """config.json read as `slmc compile` reads it (family picked, fields checked), without weights."""
    from slmc.frontend.hf.families import pick
    from slmc.frontend.hf.fields import Fields

    path = folder / "config.json"
    f = Fields(json.loads(path.read_text()), path)
    family = pick(f)
    f.arch = family.architecture
    spec = family.config(f)
    spec.config.validate()
    return spec.config, spec.notes


def _transformers_tables(config: Any, family: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    mod = getattr(transformers.models, family)
    rotary = getattr(getattr(mod, f"modeling_{family}"), f"{config.__class__.__name__[:-6]}RotaryEmbedding")(config)
    cos, sin = rotary(torch.zeros(1), torch.arange(n)[None])
    half = cos.shape[-1] // 2
    return cos[0, :, :half].numpy(), sin[0, :, :half].numpy()


@pytest.mark.parametrize("name", list(CASES))
def test_scaled_tables_match_transformers(tmp_path: Path, name: str) -> None:
    cls, family, real = CASES[name]
    config = getattr(transformers, cls)(**SMALL | real)
    config.save_pretrained(tmp_path)
    cfg, notes = _slmc_config(tmp_path)
    kind = real["rope_parameters"]["rope_type"]
    assert cfg.rope_scaling.kind == kind and any(kind in n for n in notes)
    cfg = replace(cfg, seq_len=POSITIONS)
    got = rope_tables(cfg)
    want = _transformers_tables(config, family, POSITIONS)
    for g, w in zip(got, want):
        assert g.shape == w.shape == (POSITIONS, cfg.head_dim // 2)
        np.testing.assert_allclose(g, w, atol=ATOL, rtol=0)
    unscaled = rope_tables(replace(cfg, rope_scaling_=RopeScaling()))
    moved = float(np.abs(unscaled[0] - want[0]).max())
    assert moved < ATOL if kind == "dynamic" else moved > 1e-3  # dynamic NTK scales only past the context


def test_old_rope_scaling_form(tmp_path: Path) -> None:
    """config.json written before transformers 5: rope_scaling with "type", rope_theta at the top."""
    c = dict(architectures=["LlamaForCausalLM"], model_type="llama", hidden_act="silu", max_position_embeddings=4096,
             rms_norm_eps=1e-5, tie_word_embeddings=False, rope_theta=500.0,
             rope_scaling={"type": "linear", "factor": 2.0}, **SMALL)
    (tmp_path / "config.json").write_text(json.dumps(c))
    cfg, _ = _slmc_config(tmp_path)
    assert (cfg.rope_theta, cfg.rope_scaling.kind, cfg.rope_scaling.factor) == (500.0, "linear", 2.0)
    config = transformers.AutoConfig.from_pretrained(tmp_path)
    want = _transformers_tables(config, "llama", POSITIONS)
    for g, w in zip(rope_tables(replace(cfg, seq_len=POSITIONS)), want):
        np.testing.assert_allclose(g, w, atol=ATOL, rtol=0)


def test_longrope_context_is_capped_at_the_original_length(tmp_path: Path) -> None:
    cls, _, real = CASES["longrope"]
    getattr(transformers, cls)(**SMALL | real).save_pretrained(tmp_path)
    cfg, notes = _slmc_config(tmp_path)
    assert cfg.seq_len == 4096 and any("capped at original_max_position_embeddings 4096" in n for n in notes)
    with pytest.raises(SlmcError, match="static only up to 4096 positions"):
        replace(cfg, seq_len=4097).validate()


@pytest.mark.parametrize("scaling, problem", [
    (RopeScaling("cubic"), "rope scaling 'cubic' is not one of"),
    (RopeScaling("linear", factor=float("nan")), "factor is nan"),
    (RopeScaling("linear", factor=0.0), "factor is 0.0"),
    (RopeScaling("llama3", 8.0, 8192, low_freq_factor=4.0, high_freq_factor=1.0), "high_freq_factor > low_freq"),
    (RopeScaling("llama3", 8.0, 0), "original_max_positions is 0"),
    (RopeScaling("longrope", 2.0, 4096, short_factor=(1.0,) * 3), "short_factor"),
    (RopeScaling("longrope", 2.0, 4096, short_factor=[1.0] * 8), "short_factor"),  # type: ignore[arg-type]
    (RopeScaling("linear", 2.0, short_factor=(1.0,) * 8), "short_factor"),
    (RopeScaling("yarn", 2.0, 4096, truncate="no"), "truncate"),  # type: ignore[arg-type]
])
def test_rope_scaling_is_validated(scaling: RopeScaling, problem: str) -> None:
    cfg = DecoderConfig(dim=64, hidden_dim=8, n_layers=1, n_heads=4, n_kv_heads=4, vocab_size=10, seq_len=16,
                        rope_scaling_=scaling)
    with pytest.raises(SlmcError, match=problem):
        cfg.validate()
