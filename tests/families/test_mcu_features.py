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

import numpy as np
import pytest
from conftest import run_slmc
from families.hf_cases import SUPPORTED, hf_logits, hf_model, save

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
    out, dump = tmp_path / "out", tmp_path / "logits.f32"
    r = run_slmc("compile", folder, "-t", target, "-q", "fp32", "--context", 16, "-o", out)
    assert r.returncode == 0, r.stderr
    r = run_slmc("run", out, "--steps", len(PROMPT) + DECODE, "--prompt-ids", ",".join(map(str, PROMPT)), "--ids",
                 "--dump-logits", dump)
    assert r.returncode == 0, r.stderr
    got = np.fromfile(dump, np.float32).reshape(-1, 256)
    assert got.shape == (len(PROMPT) + DECODE, 256)
    ids = PROMPT + [int(t) for t in got[len(PROMPT) - 1:-1].argmax(axis=1)]
    want = hf_logits(model, ids)
    err = float(np.abs(got - want).max())
    print(f"\n{name} on {target}: max |logit - transformers| {err:.2e}")
    assert err < TOL, (name, target, err)
