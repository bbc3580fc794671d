"""The bundled mixture-of-experts model (models/moe, `make train-moe`): an HF Mixtral folder slmc reads, sized
so that its q8 experts do not fit the RP2350's SRAM while the whole q8 model fits its flash, and the claims
of its README and meta.json recomputed from the shipped files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slmc.frontend.load import load_model
from slmc.train import evaluate

ROOT = Path(__file__).resolve().parents[2]
MOE = ROOT / "models" / "moe"
shipped = pytest.mark.skipif(not (MOE / "meta.json").is_file(), reason="models/moe not built (make train-moe)")


def _meta() -> dict:
    return json.loads((MOE / "meta.json").read_text())


@shipped
def test_the_folder_is_a_mixtral_with_experts_that_need_a_cache() -> None:
    from slmc.train.train_moe import MoeArgs, sizes

    cfg = json.loads((MOE / "config.json").read_text())
    assert cfg["architectures"] == ["MixtralForCausalLM"]
    assert (cfg["num_local_experts"], cfg["num_experts_per_tok"]) == (8, 2)
    m = load_model(MOE)
    assert (m.config.n_experts, m.config.top_k, m.config.dim) == (8, 2, cfg["hidden_size"])
    meta = _meta()
    z = sizes(MoeArgs(**meta["architecture"]), meta["sizes"]["n_params"])
    assert z == meta["sizes"]
    assert z["experts_q8_bytes"] > 520 * 1024                 # the experts do not fit the SRAM ...
    assert z["model_q8_bytes_estimate"] < 4 << 20             # ... the whole model fits the flash
    assert 8 * z["expert_q8_bytes"] <= z["experts_q8_bytes"] // 4
    assert (MOE / "model.safetensors").stat().st_size == meta["safetensors_bytes"] < 8 << 20
    for name in ("tokenizer.model", "tokenizer.bin"):       # the default model's tokenizer, byte for byte
        assert (MOE / name).read_bytes() == (ROOT / "models" / "default" / name).read_bytes()


@shipped
def test_the_published_loss_is_what_slmc_reads_from_the_files() -> None:
    meta = _meta()
    got = evaluate.validation_loss(MOE, MOE / "tokenizer.model", meta["n_val_stories_numpy"], meta["val_seed"])
    assert abs(got - meta["val_loss_numpy"]) < 1e-6
    assert abs(got - meta["val_loss_torch_same_stories"]) < 1e-4
    readme = (MOE / "README.md").read_text()
    assert f"**Validation loss: {meta['val_loss']:.4f}**" in readme
    k = meta["architecture"]["top_k"]
    assert f"{meta['predictor']['predicted_routing']['top1_agreement']:.3f}" in readme
    pred = json.loads((MOE / "predictor.json").read_text())
    assert f"{pred['hit_rate_heldout'][f'top{k}']['all']:.3f}" in readme
