"""The families of tests/families through ONNX, as a user exports them (hf_exports.make_family: transformers
from the real config, shrunk; a plain `torch.onnx.export`, dynamic sequence axis):
- the default export (use_cache=False): `slmc compile -t host -q fp32` recognises the decoder (its features
  read through the same DecoderConfig as the HF folders: qk-norm, fused qkv/gate_up, GeGLU and Gemma's
  sqrt(d) embedding multiplier and (1 + w) norms, parallel residual, partial rotary, LayerNorm, learned
  positions at OPT's offset, GPT-Neo's unscaled scores and local layers, sliding windows, Granite's
  multipliers, SmolLM3's NoPE layers, Gemma 2/3's soft-capping, sandwich norms and local RoPE base, OLMo 2's
  post-norms); `slmc run` over a
  4-token prompt and 16 greedy steps gives the logits of onnxruntime (the whole sequence at once) and of
  transformers within 1e-4, past every window (Mistral's window set to 8 here, GPT-Neo's local layers 8);
- the export with past keys and values (the Optimum layout; hf_exports.export_past): the same, against
  onnxruntime run autoregressively with its own past;
- scaled RoPE (Llama 3.2's llama3 scaling, Phi-3.5's LongRoPE) is read as the frequencies and attention factor
  of the tables the exporter baked into the graph, and agrees with transformers' own inverse frequencies.
Each test records its figure for README's families x routes table (tests/families/figures.py, table.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import one_line_error, run_slmc

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
pytest.importorskip("transformers")
sys.path.append(str(Path(__file__).parent))
import hf_exports as hx  # noqa: E402
from families.figures import record  # noqa: E402

pytestmark = pytest.mark.slow
PROMPT, DECODE, TOL = [1, 17, 42, 99], 16, 1e-4
FAMILIES = ["llama", "mistral", "qwen2", "qwen3", "phi3", "gemma", "gpt2", "gpt_neox", "opt", "gpt_neo", "olmo",
            "stablelm", "phi", "granite", "smollm3", "gemma2", "gemma3", "olmo2", "llama3_2", "phi3_5"]
PAST = FAMILIES


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory):
    """(family, past) -> (transformers model, its ONNX export), once per module. Each export gets a model of its
    own (seeded: the same weights), since exporting may leave state on a model (Phi-3.5's LongRoPE sets its
    rotary module's long_inv_freq while traced, and a second export of that model then fails)."""
    cache: dict[tuple[str, bool], tuple[object, Path]] = {}

    def get(name: str, past: bool) -> tuple[object, Path]:
        if (name, past) not in cache:
            model = hx.make_family(name)
            path = tmp_path_factory.mktemp(name) / f"{name}{'-past' if past else ''}.onnx"
            cache[name, past] = (model, hx.export_past(model, path) if past else hx.export(model, path, True))
        return cache[name, past]
    return get


def _slmc_logits(path: Path, tmp: Path) -> tuple[np.ndarray, list[int]]:
    """The compiled C program's logits over the prompt and its greedy steps, and the ids it fed itself."""
    out, dump = tmp / "out", tmp / "logits.f32"
    r = run_slmc("compile", path, "-t", "host", "-q", "fp32", "--context", 32, "-o", out)
    assert r.returncode == 0, r.stderr
    r = run_slmc("run", out, "--steps", len(PROMPT) + DECODE, "--prompt-ids", ",".join(map(str, PROMPT)), "--ids",
                 "--dump-logits", dump)
    assert r.returncode == 0, r.stderr
    got = np.fromfile(dump, np.float32).reshape(-1, hx.VOCAB)
    assert got.shape == (len(PROMPT) + DECODE, hx.VOCAB)
    return got, PROMPT + [int(t) for t in got[len(PROMPT) - 1:-1].argmax(axis=1)]


@pytest.mark.parametrize("name", FAMILIES)
def test_default_export(name: str, exported, tmp_path: Path) -> None:
    model, path = exported(name, False)
    got, ids = _slmc_logits(path, tmp_path)
    want = hx.ort_logits(path, ids)
    err = max(float(np.abs(got - want).max()), float(np.abs(got - hx.hf_logits(model, ids)).max()))
    print(f"\n{name} (ONNX export): max |logit error| {err:.2e} (max |logit| {np.abs(want).max():.2f})")
    record(name, "onnx", err)
    assert np.abs(want).max() > 0.5
    assert err < TOL


@pytest.mark.parametrize("name", PAST)
def test_past_export(name: str, exported, tmp_path: Path) -> None:
    model, path = exported(name, True)
    got, ids = _slmc_logits(path, tmp_path)
    want = hx.ort_logits_with_past(path, ids, len(PROMPT))
    err = max(float(np.abs(got - want).max()), float(np.abs(got - hx.hf_logits(model, ids)).max()))
    print(f"\n{name} (ONNX with past): max |logit error| {err:.2e} (max |logit| {np.abs(want).max():.2f})")
    record(name, "onnx_past", err)
    assert np.abs(want).max() > 0.5
    assert err < TOL


@pytest.mark.parametrize("name", ["llama", "gpt2"])
def test_merged_past_export(name: str, exported, tmp_path: Path) -> None:
    """Optimum's merged decoder (an If on use_cache_branch) compiles as its with-past branch: the same C as the
    past export itself, and onnxruntime's logits (use_cache_branch true, run with its own past)."""
    model, past = exported(name, True)
    merged = hx.merge_past(past, tmp_path / "merged.onnx")
    got, ids = _slmc_logits(merged, tmp_path / "m")
    want = hx.ort_logits_with_past(merged, ids, len(PROMPT))
    assert np.abs(got - want).max() < TOL and np.abs(want).max() > 0.5
    plain, _ = _slmc_logits(past, tmp_path / "p")
    assert np.array_equal(got, plain)


def test_windows_are_read_from_the_masks(exported) -> None:
    """Mistral's window (every layer) and GPT-Neo's local layers, read at the context, not at the probe."""
    from slmc.frontend.onnx_import import load

    m = load(exported("mistral", False)[1]).config
    assert (m.sliding_window, m.window_layers) == (8, ())
    n = load(exported("gpt_neo", False)[1]).config
    assert (n.sliding_window, n.window_layers, n.attn_scale) == (8, (False, True), 1.0)
    assert load(exported("phi3", False)[1]).config.sliding_window == 2047  # Phi-3-mini's, under the 2048 probed
    g = load(exported("gemma3", False)[1]).config  # local layers with their own RoPE base, sandwich norms, qk-norm
    assert (g.sliding_window, g.window_layers, g.rope_local_theta, g.rope_theta) == (8, (True, False), 1e4, 1e6)
    assert (g.norm_place, g.qk_norm, g.attn_scale) == ("sandwich", "head", 256 ** -0.5)
    g2 = load(exported("gemma2", False)[1]).config
    assert (g2.attn_softcap, g2.logit_softcap) == (50.0, 30.0)


@pytest.mark.parametrize("name", ["llama3_2", "phi3_5"])
def test_scaled_rope_is_read_from_the_tables(name: str, exported) -> None:
    """The frequencies read from the graph's cos/sin tables are transformers' own scaled inverse frequencies
    (float32), and the attention factor its own."""
    from slmc.frontend.onnx_import import load

    model, path = exported(name, False)
    s = load(path).config.rope_scaling
    rotary = model.model.rotary_emb
    want = rotary.inv_freq.float().numpy()
    assert s.kind == "explicit" and np.abs(np.asarray(s.frequencies) - want).max() <= 1e-6 * want.max()
    assert s.attention_factor == pytest.approx(float(getattr(rotary, "attention_scaling", 1.0)), rel=1e-6)


def test_tinystories_shaped_windows_at_the_full_context(tmp_path: Path) -> None:
    """TinyStories-1M's shape (GPT-Neo: 8 layers, 16 heads, vocabulary 50257, local window 256 on every
    second layer, 2048 positions): the masks are read at the whole context from the part of the graph that
    computes them (the attention at 2048 positions would be beyond slmc's size limits), so the context is
    not capped and the window is found."""
    import torch
    import transformers

    from slmc.frontend.onnx_import import load

    cfg = transformers.GPTNeoConfig(vocab_size=50257, hidden_size=64, num_layers=8, num_heads=16,
                                    max_position_embeddings=2048, attention_types=[[["global", "local"], 4]],
                                    window_size=256, intermediate_size=None, use_cache=False)
    torch.manual_seed(0)
    path = hx.export(transformers.GPTNeoForCausalLM(cfg).eval(), tmp_path / "ts1m.onnx", True)
    c = load(path).config
    assert (c.seq_len, c.sliding_window, c.window_layers) == (2048, 256, (False, True) * 4)
    assert c.features() == ["a custom attention scale", "sliding-window attention"]

