"""Every language-model kernel, compiled with gcc, against its numpy twin: small seeded models of each
architecture family run through the generated C and the reference interpreter."""

from dataclasses import replace

import numpy as np
import pytest

from slmc.driver import CompileOptions, compile_model
from slmc.frontend import llama2c
from slmc.frontend.random_model import SHAPES, random_decoder
from slmc.frontend.logits import reference_logits
from slmc.toolchain.build import build
from slmc.toolchain.run import llm_args, run_events

pytestmark = pytest.mark.slow

SMALL = replace(SHAPES["stories260K"], dim=48, hidden_dim=96, n_layers=2, n_heads=6, n_kv_heads=2, vocab_size=80,
                seq_len=48)
VARIANTS = {
    "llama_gqa": dict(cfg=SMALL),
    "llama_mha_untied_halfrope": dict(cfg=replace(SMALL, n_kv_heads=6, rope_interleaved=False, rope_theta=500.0),
                                      tied=False),
    "gpt2": dict(cfg=replace(SMALL, norm="layer", ffn="gelu_tanh", pos="learned", n_kv_heads=6), bias=True, tied=False),
    "gpt2_erf": dict(cfg=replace(SMALL, norm="layer", ffn="gelu", pos="learned", n_kv_heads=6), bias=True),
}


def _run_c(tmp_path, model, numerics, prompt, steps, chunk, kv_cache=None):
    path = tmp_path / "m"
    compile_model(CompileOptions(model=tmp_path / "model.bin", numerics=numerics, out=path, prefill_chunk=chunk,
                                 kv_cache=kv_cache), model=model)
    binary = build(path)
    logits = tmp_path / "logits.f32"
    res = run_events([str(binary), *llm_args(steps, 0.0, 0.9, 1, prompt, logits)])
    return res, np.fromfile(logits, np.float32).reshape(-1, model.config.vocab_size)


@pytest.mark.parametrize("numerics", ["fp32", "q8"])
@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("chunk", [0, 8])
def test_generated_c_matches_numpy_reference(tmp_path, variant, numerics, chunk):
    v = VARIANTS[variant]
    model = random_decoder(v["cfg"], seed=3, tied=v.get("tied", True), bias=v.get("bias", False))
    prompt = [1, 5, 9, 17, 33, 2, 40, 41, 42, 43, 7, 8]  # 12 ids: a full chunk of 8 and a partial one
    res, got = _run_c(tmp_path, model, numerics, prompt, 24, chunk)
    seq = prompt + res.ids
    ref = reference_logits(model, seq[:24], numerics)
    tol = 1e-4 if numerics == "fp32" else 2e-3  # q8: a rare activation rounding tie may flip by one step
    assert np.abs(got - ref).max() < tol * max(1.0, np.abs(ref).max())
    assert list(ref[len(prompt) - 1:].argmax(axis=1)[: len(res.ids)]) == res.ids


@pytest.mark.parametrize("variant", ["llama_gqa", "llama_mha_untied_halfrope"])
@pytest.mark.parametrize("chunk", [0, 8])
def test_fp16_kv_cache_matches_its_numpy_twin(tmp_path, variant, chunk):
    """kv_write_f16.c and attention_f16kv.c (3 query heads per KV head, and 1) in decode and prompt steps."""
    v = VARIANTS[variant]
    model = random_decoder(v["cfg"], seed=3, tied=v.get("tied", True))
    prompt = [1, 5, 9, 17, 33, 2, 40, 41, 42, 43, 7, 8]
    res, got = _run_c(tmp_path, model, "fp32", prompt, 24, chunk, kv_cache="fp16")
    ref = reference_logits(model, (prompt + res.ids)[:24], "fp32", kv_cache="fp16")
    # a float-order difference can move a value across an fp16 rounding tie: one fp16 ulp (see e2e)
    assert np.abs(got - ref).max() < 2e-3 * max(1.0, np.abs(ref).max())
    assert list(ref[len(prompt) - 1:].argmax(axis=1)[: len(res.ids)]) == res.ids


@pytest.mark.parametrize("numerics", ["fp32", "q8"])
@pytest.mark.parametrize("variant", ["llama_gqa", "llama_mha_untied_halfrope"])
@pytest.mark.parametrize("chunk", [0, 8])
def test_int8_kv_cache_matches_its_numpy_twin(tmp_path, variant, numerics, chunk):
    """kv_write_i8.c and attention_i8kv.c (bit-exact against their twin on equal inputs: tests/kernels/test_kv_int8.py)
    in decode and prompt steps; the logits differ from run_graph's only as the other float kernels' do."""
    v = VARIANTS[variant]
    model = random_decoder(v["cfg"], seed=3, tied=v.get("tied", True))
    prompt = [1, 5, 9, 17, 33, 2, 40, 41, 42, 43, 7, 8]
    res, got = _run_c(tmp_path, model, numerics, prompt, 24, chunk, kv_cache="int8")
    ref = reference_logits(model, (prompt + res.ids)[:24], numerics, kv_cache="int8")
    assert np.abs(got - ref).max() < 2e-3 * max(1.0, np.abs(ref).max())
    assert list(ref[len(prompt) - 1:].argmax(axis=1)[: len(res.ids)]) == res.ids


def test_llama2c_writer_roundtrip(tmp_path):
    model = random_decoder(SMALL, seed=5)
    llama2c.save_v0(model, tmp_path / "m.bin")
    back = llama2c.load(tmp_path / "m.bin")
    ids = [1, 4, 8, 15, 16, 23, 42]
    assert np.array_equal(reference_logits(model, ids), reference_logits(back, ids))
