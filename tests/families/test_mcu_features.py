"""One family per structural feature on the MCU cores (issue 17): built by transformers from its real config
(shrunk, hf_cases.py), compiled in fp32 for cortex-m33 (FPU) and rv32imac (soft float), run under emulation
over a prompt and greedy decode steps; the emulated program's logits against transformers' forward over the
same tokens, as the host test (test_hf_families.py) checks them.

The families and what they carry: Qwen3 (qk-norm per head), OLMo 2 (post-norms, qk-norm over the projection),
Gemma 2 (sandwich norms, GeGLU, sqrt(d) embedding scale, alternating windows, attention and logit soft-caps),
GPT-NeoX (parallel residual, partial rotary, LayerNorm with bias, GELU), Granite (embedding, residual,
attention and logit multipliers), OPT (learned positions with offset 2, ReLU, projection biases)."""

from __future__ import annotations

from pathlib import Path

import pytest
from families.hf_cases import SUPPORTED, compiled_logits_error, hf_model, save

FAMILIES = ["qwen3", "olmo2", "gemma2", "gpt_neox", "granite", "opt"]
TARGETS = ["cortex-m33", "rv32imac"]
PROMPT = [1, 17, 42, 99]
DECODE = 6
TOL = 1e-4

pytestmark = pytest.mark.slow


def _seed(name: str) -> int:
    return SUPPORTED[name].seed if SUPPORTED[name].seed >= 0 else list(SUPPORTED).index(name)


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("mcu_families")
    out = {}
    for name in FAMILIES:
        model = hf_model(SUPPORTED[name], seed=_seed(name))
        out[name] = (model, save(model, root / name))
    return out


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", FAMILIES)
def test_feature_family_on_mcu_matches_transformers(tmp_path: Path, folders: dict, name: str, target: str) -> None:
    model, folder = folders[name]
    err, _ = compiled_logits_error(model, folder, tmp_path, target, 16, PROMPT, DECODE)
    print(f"\n{name} on {target}: max |logit - transformers| {err:.2e}")
    assert err < TOL, (name, target, err)
