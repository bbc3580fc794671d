"""Every HuggingFace family slmc reads, end to end: built by transformers from its real config (shrunk,
hf_cases.py), saved as safetensors, compiled by `slmc compile -q fp32 -t host`, run by `slmc run` over a
4-token prompt and 16 greedy decode steps; the C program's logits against transformers' forward over the
same 20 tokens."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from families.figures import record
from families.hf_cases import SUPPORTED, compiled_logits_error, hf_logits, hf_model, save

PROMPT = [1, 17, 42, 99]
DECODE = 16
CONTEXT = 32  # --context: the real configs' contexts (up to 131072 positions) would only make the tables big
TOL = 1e-4


def _seed(name: str) -> int:  # Mistral is Llama-shaped: the same seed would give it Llama's very weights
    return SUPPORTED[name].seed if SUPPORTED[name].seed >= 0 else list(SUPPORTED).index(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SUPPORTED))
def test_fp32_host_logits_match_transformers(tmp_path: Path, name: str) -> None:
    model = hf_model(SUPPORTED[name], seed=_seed(name))
    err, want = compiled_logits_error(model, save(model, tmp_path / name), tmp_path, "host", CONTEXT, PROMPT, DECODE)
    print(f"\n{name}: max |logit error| {err:.2e} over {len(PROMPT) + DECODE} positions (max |logit| {np.abs(want).max():.2f})")
    record(name, "hf", err)
    assert np.abs(want).max() > 0.5  # logits big enough that the tolerance means something
    assert err < TOL


@pytest.mark.parametrize("name", [n for n, c in SUPPORTED.items() if c.scaled_rope])
def test_scaled_rope_logits_on_the_reference(tmp_path: Path, name: str) -> None:
    """The scaled models on the numpy reference of the step graph, against transformers; the same model with
    unscaled tables would be measurably wrong (so the scaling is what the tolerance checks)."""
    from slmc.frontend import hf
    from slmc.frontend.decoder import RopeScaling
    from slmc.frontend.logits import reference_logits
    from slmc.stages.load import with_context

    model = hf_model(SUPPORTED[name], seed=_seed(name))
    ours = with_context(hf.load(save(model, tmp_path / name)), CONTEXT)
    unscaled = replace(ours, config=replace(ours.config, rope_scaling_=RopeScaling()))
    ids = PROMPT + list(range(3, 3 + 7 * DECODE, 7))
    want = hf_logits(model, ids)
    err = float(np.abs(reference_logits(ours, ids) - want).max())
    print(f"\n{name}: max |logit error| {err:.2e} (numpy reference, scaled tables)")
    assert err < TOL
    assert float(np.abs(reference_logits(unscaled, ids) - want).max()) > 10 * TOL


def test_sliding_window_beyond_the_window(tmp_path: Path) -> None:
    """A window shorter than the context: each position attends to the last `window` positions (itself
    included), as transformers' masks say, over a prompt twice the window; the context is not capped."""
    from slmc.frontend import hf
    from slmc.frontend.logits import reference_logits
    from slmc.stages.load import with_context

    case = SUPPORTED["mistral"]
    model = hf_model(replace(case, real=case.real | {"sliding_window": 6, "max_position_embeddings": 64}))
    ours = with_context(hf.load(save(model, tmp_path / "m")), CONTEXT)
    assert (ours.config.seq_len, ours.config.sliding_window) == (CONTEXT, 6)
    ids = PROMPT + list(range(5, 5 + 8 * 10, 8))  # 14 positions: more than twice the window
    want = hf_logits(model, ids)
    assert float(np.abs(reference_logits(ours, ids) - want).max()) < TOL
    full = replace(ours, config=replace(ours.config, sliding_window=0))
    assert float(np.abs(reference_logits(full, ids) - want).max()) > 10 * TOL  # the window is what is checked


def test_gpt2_hub_names(tmp_path: Path) -> None:
    """The original GPT-2 checkpoints name tensors without `transformer.` (and hold attn.bias buffers)."""
    from safetensors.numpy import load_file, save_file

    from slmc.frontend import hf

    folder = save(hf_model(SUPPORTED["gpt2"]), tmp_path / "g")
    ref = hf.load(folder)
    st = load_file(str(folder / "model.safetensors"))
    bare = {k.removeprefix("transformer."): v for k, v in st.items()}
    bare["h.0.attn.bias"] = np.tril(np.ones((1, 1, 8, 8), np.float32))
    save_file(bare, str(folder / "model.safetensors"))
    hub = hf.load(folder)
    np.testing.assert_array_equal(hub.layers[1].wv, ref.layers[1].wv)
    np.testing.assert_array_equal(hub.pos_emb, ref.pos_emb)
