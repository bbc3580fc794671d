"""The structural features of issue 17 beyond the families' fp32 logits (test_hf_families.py): every new
family's q8 build compiles and runs on the host, and the multi-chip partition (passes/partition.py) of the
features that sit inside a block (qk-norm per head, post-norms, parallel residual, partial rotary, GeGLU,
multipliers, windows, soft-capping) gives the one-chip reference's logits; a qk-norm over the whole projection
(OLMo 2) is refused with --chips in one line."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import run_slmc
from families.hf_cases import SUPPORTED, hf_logits, hf_model, save

from slmc.errors import SlmcError
from slmc.frontend.build import build_step_graph
from slmc.frontend.decoder import DecoderConfig
from slmc.frontend.random_model import random_decoder
from slmc.passes import partition as cut
from slmc.plan.partition import partition_model
from slmc.reference.interp import new_state, run
from slmc.reference.multichip import new_states, run_chips

NEW = ["qwen3", "olmo2", "stablelm", "phi", "gpt_neox", "gemma", "gemma2", "gemma3", "granite", "smollm3", "opt",
       "gpt_neo"]
PROMPT = [1, 17, 42, 99]


@pytest.mark.slow
@pytest.mark.parametrize("name", NEW)
def test_q8_compiles_and_runs(tmp_path: Path, name: str) -> None:
    case = SUPPORTED[name]
    model = hf_model(case, seed=case.seed if case.seed >= 0 else list(SUPPORTED).index(name))
    folder = save(model, tmp_path / name)
    out, dump = tmp_path / "out", tmp_path / "logits.f32"
    r = run_slmc("compile", folder, "-t", "host", "-q", "q8", "--context", 32, "-o", out)
    assert r.returncode == 0, r.stderr
    r = run_slmc("run", out, "--steps", 12, "--prompt-ids", ",".join(map(str, PROMPT)), "--ids", "--dump-logits", dump)
    assert r.returncode == 0, r.stderr
    got = np.fromfile(dump, np.float32).reshape(-1, 256)
    ids = PROMPT + [int(t) for t in got[len(PROMPT) - 1:-1].argmax(axis=1)]
    want = hf_logits(model, ids)[:len(got)]
    err = float(np.abs(got - want).max())
    print(f"\n{name}: q8 max |logit error| {err:.3f} (max |logit| {np.abs(want).max():.2f})")
    assert np.isfinite(got).all() and err < 0.25 * np.abs(want).max()


BASE = DecoderConfig(dim=64, hidden_dim=128, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=96, seq_len=24,
                     rope_interleaved=False)
FEATURES = {
    "qk_norm_head": dict(qk_norm="head"),
    "sandwich_norms": dict(norm_place="sandwich"),
    "post_norms": dict(norm_place="post"),
    "parallel_partial_rotary": dict(parallel_residual=True, rotary_dim=6, norm="layer", ffn="gelu"),
    "geglu_multipliers": dict(ffn="geglu_tanh", embed_scale=8.0, residual_scale=0.5, attn_scale=0.1, logit_scale=0.5),
    "windows_softcaps_nope": dict(sliding_window=5, window_layers=(True, False), attn_softcap=20.0, logit_softcap=8.0,
                                  rope_layers=(False, True), rope_local_theta=100.0),
}


@pytest.mark.parametrize("numerics", ["fp32", "q8"])
@pytest.mark.parametrize("feature", list(FEATURES))
def test_partitioned_features_equal_one_chip(feature: str, numerics: str) -> None:
    cfg = replace(BASE, **FEATURES[feature])
    model = random_decoder(cfg, 7, bias=cfg.norm == "layer")
    ids = [1, 5, 9, 33, 2, 70, 11, 4]
    g = build_step_graph(model, 1, numerics)
    st = new_state(g)
    plan = partition_model(model, 2, 2, numerics)
    graphs = [cut.run(build_step_graph(model, 1, plan.numerics), plan, c) for c in range(2)]
    states = new_states(graphs)
    for p, t in enumerate(ids):
        f = dict(tokens=np.array([t], np.int32), pos=np.array([p], np.int32))
        want = run(g, f, st)[g.outputs[0].name]
        got = run_chips(graphs, plan, f, states)[0][graphs[0].outputs[0].name]
        if numerics == "q8":
            assert np.array_equal(got, want), (feature, p)
        assert np.abs(got - want).max() < 1e-4, (feature, numerics, p)


def test_whole_projection_qk_norm_refuses_chips() -> None:
    model = random_decoder(replace(BASE, qk_norm="full"), 3)
    plan = partition_model(model, 2, 2, "fp32")
    with pytest.raises(SlmcError, match="qk-norm over the whole projection") as e:
        cut.run(build_step_graph(model, 1, "fp32"), plan, 0)
    assert "--chips" in e.value.fix


@pytest.mark.parametrize("field, value, problem", [
    ("qk_norm", "per_row", "qk_norm 'per_row' is not one of"), ("norm_place", "middle", "norm_place"),
    ("rotary_dim", 5, "rotary_dim"), ("rotary_dim", 40, "rotary_dim"), ("embed_scale", float("nan"), "embed_scale"),
    ("attn_softcap", -1.0, "attn_softcap"), ("window_layers", (True,), "window_layers"), ("ffn", "swish", "ffn"),
    ("parallel_residual", 1, "parallel_residual")])
def test_feature_fields_are_validated(field: str, value: object, problem: str) -> None:
    with pytest.raises(SlmcError, match=problem):
        replace(BASE, **{field: value}).validate()


def test_int8_refuses_experts_in_one_line() -> None:
    """-q int8 covers every feature above (tests/families/test_int8_features.py); experts it refuses."""
    from slmc.frontend.calibrate import _check_supported

    with pytest.raises(SlmcError, match="-q int8 does not support mixture-of-experts"):
        _check_supported(random_decoder(replace(BASE, n_experts=4, top_k=2), 0))


def test_features_are_what_the_logits_check() -> None:
    """Each feature changes the reference's logits (so the families' 1e-4 checks see it): the same weights
    without it give different logits."""
    ids = [1, 5, 9, 33, 2, 70, 11, 4]
    from slmc.frontend.logits import reference_logits

    for name, feature in FEATURES.items():
        model = random_decoder(replace(BASE, **feature), 7, bias=feature.get("norm") == "layer")
        base_cfg = replace(model.config, **{k: getattr(BASE, k) for k in feature if k not in ("norm", "ffn")})
        if base_cfg.norm_place == "pre" and model.config.norm_place == "post":
            continue  # post-only models have no pre-norm weights to fall back on
        plain = replace(model, config=base_cfg)
        assert np.abs(reference_logits(model, ids) - reference_logits(plain, ids)).max() > 1e-3, name
