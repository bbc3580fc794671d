"""The SiDA-style expert predictor (slmc.train.predictor trains it, slmc.frontend.expert_predictor loads it):
trained for a few steps on a tiny random Mixtral it beats chance on sequences it never saw; the files it
writes load, and the numpy twin the C side follows computes the torch network's scores; a file for another
model, or a damaged one, is refused with one SlmcError line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from slmc.errors import SlmcError
from slmc.frontend.expert_predictor import find_predictor, load_predictor
from slmc.frontend.load import load_model

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
from slmc.train import predictor as P  # noqa: E402  (imports torch)

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "moe"
E, K = 4, 2


def tiny_mixtral(seed: int, n_experts: int = E, dim: int = 32):
    cfg = transformers.MixtralConfig(
        vocab_size=64, hidden_size=dim, intermediate_size=48, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, num_local_experts=n_experts, num_experts_per_tok=K,
        tie_word_embeddings=False, sliding_window=None, initializer_range=0.2)
    torch.manual_seed(seed)
    return transformers.MixtralForCausalLM(cfg).eval()


def token_lists(n: int, seed: int) -> list[list[int]]:
    g = np.random.default_rng(seed)
    return [[1] + g.integers(3, 64, size=int(g.integers(8, 30))).tolist() for _ in range(n)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny Mixtral saved as an HF folder, and a two-layer predictor fitted on its routing."""
    torch.set_num_threads(1)
    model = tiny_mixtral(0)
    folder = tmp_path_factory.mktemp("moe") / "tiny"
    model.save_pretrained(folder, safe_serialization=True)
    calib = P.record(model, token_lists(120, 0))
    held = P.record(model, token_lists(40, 1))
    src, layers = P.predicted_layers("layer_output", 3)
    net = P.fit(calib, "layer_output", layers, E, hidden=16, epochs=15, batch=128, lr=1e-2)
    P.save(net, folder, "layer_output", src, layers, model)
    return model, folder, net, layers, held


def test_the_predictor_beats_chance_on_held_out_sequences(trained) -> None:
    _, _, net, layers, held = trained
    rates = P.hit_rates(net, held, "layer_output", layers, E)
    assert rates["top2"]["all"] > K / E + 0.15, rates          # chance: 0.5
    assert rates["top2"]["all"] <= rates["top3"]["all"] <= rates["top4"]["all"] == 1.0


def test_the_embedding_predictor_covers_every_layer(trained) -> None:
    model, _, _, _, held = trained
    src, layers = P.predicted_layers("embedding", 3)
    assert (src, layers) == (-1, [0, 1, 2])
    net = P.fit(held, "embedding", layers, E, hidden=0, epochs=2, batch=256)
    rates = P.hit_rates(net, held, "embedding", layers, E)
    assert set(rates["top2"]) == {"layer 0", "layer 1", "layer 2", "all"}


def test_saved_files_load_and_the_numpy_twin_matches_torch(trained) -> None:
    model, folder, net, layers, held = trained
    path = find_predictor(folder)
    assert path == folder / "predictor.safetensors"
    p = load_predictor(path, load_model(folder))
    assert (p.input, p.input_layer, p.layers, p.hidden) == ("layer_output", 0, tuple(layers), 16)
    assert p.n_bytes == 4 * sum(t.numel() for t in net.parameters())
    h = held.features["layer_output"][:50]
    with torch.no_grad():
        want = net(h).reshape(50, len(layers), E).numpy()
    np.testing.assert_allclose(p.scores(h.numpy()), want, atol=1e-5, rtol=1e-5)
    assert p.predict(h.numpy(), K).shape == (50, len(layers), K)


def _one_line(e: pytest.ExceptionInfo, *needles: str) -> None:
    text = str(e.value)
    assert "\n" not in text, text
    for n in needles:
        assert n in text, text


@pytest.mark.parametrize("other", [dict(seed=1), dict(seed=0, n_experts=8), dict(seed=0, dim=48)],
                         ids=["same-shapes", "more-experts", "wider"])
def test_a_predictor_for_another_model_is_refused(trained, tmp_path: Path, other: dict) -> None:
    _, folder, *_ = trained
    other_folder = tmp_path / "other"
    tiny_mixtral(**other).save_pretrained(other_folder, safe_serialization=True)
    with pytest.raises(SlmcError) as e:
        load_predictor(folder / "predictor.safetensors", load_model(other_folder))
    _one_line(e, "trained for another model")


def _copy(folder: Path, tmp: Path) -> Path:
    dst = tmp / "pred"
    dst.mkdir()
    for name in ("predictor.safetensors", "predictor.json"):
        shutil.copy(folder / name, dst / name)
    return dst / "predictor.safetensors"


@pytest.mark.parametrize("change, needle", [
    (dict(format="something-else"), "not an slmc expert predictor"),
    (dict(layers=[1, 3]), "layers"),
    (dict(layers=[2, 1]), "layers"),
    (dict(layers=[0, 1, 2]), "layers"),                 # layer 0 is not after the layer it reads
    (dict(layers=[]), "layers"),
    (dict(layers=[1, True]), "layers"),
    (dict(input_layer=2), "input_layer"),
    (dict(input_layer=-1), "input_layer"),
    (dict(input="attention"), "input"),
    (dict(hidden=8), "fc0.weight"),                    # the JSON says 8, the file holds 16
    (dict(hidden=-1), "hidden"),
    (dict(hidden=True), "not an integer"),
    (dict(top_k=3), "trained for another model"),
    (dict(eps=0), "eps"),
    (dict(eps=10 ** 400), "eps"),
    (dict(eps="1e-5"), "eps"),
    (dict(dim=10 ** 400), "trained for another model"),
    (dict(normalize="layer"), "normalize"),
    (dict(router_sha256="0" * 64), "trained for another model"),
])
def test_a_damaged_description_is_refused(trained, tmp_path: Path, change: dict, needle: str) -> None:
    _, folder, *_ = trained
    path = _copy(folder, tmp_path)
    meta = json.loads(path.with_suffix(".json").read_text())
    path.with_suffix(".json").write_text(json.dumps({**meta, **change}))
    with pytest.raises(SlmcError) as e:
        load_predictor(path, load_model(folder))
    _one_line(e, needle)


def test_damaged_weights_are_refused(trained, tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    _, folder, *_ = trained
    path = _copy(folder, tmp_path)
    good = load_file(str(folder / "predictor.safetensors"))
    model = load_model(folder)
    cases = [
        ({**good, "fc1.bias": good["fc1.bias"][:-1]}, "fc1.bias"),
        ({**good, "fc0.weight": good["fc0.weight"].astype(np.float16)}, "F16"),
        ({**good, "extra": np.zeros(2, np.float32)}, "holds tensors"),
        ({k: v for k, v in good.items() if k != "fc1.weight"}, "holds tensors"),
        ({**good, "fc0.bias": np.full_like(good["fc0.bias"], np.nan)}, "non-finite"),
    ]
    for tensors, needle in cases:
        save_file(tensors, str(path))
        with pytest.raises(SlmcError) as e:
            load_predictor(path, model)
        _one_line(e, needle)
    path.write_bytes(b"\x00" * 7)
    with pytest.raises(SlmcError) as e:
        load_predictor(path, model)
    _one_line(e, "not a safetensors file")
    path.with_suffix(".json").unlink()
    with pytest.raises(SlmcError) as e:
        load_predictor(path, model)
    _one_line(e, "does not exist")


def test_a_dense_model_has_nothing_to_predict(trained, tmp_path: Path) -> None:
    _, folder, *_ = trained
    with pytest.raises(SlmcError) as e:
        load_predictor(folder / "predictor.safetensors", load_model(SHIPPED.parent / "default" / "model.bin"))
    _one_line(e, "has no experts")


@pytest.mark.skipif(not (SHIPPED / "predictor.json").is_file(), reason="models/moe is not trained (make train-moe)")
def test_the_shipped_predictor_loads_and_keeps_its_published_hit_rate() -> None:
    """models/moe's predictor, through the checked loader and its numpy twin, on 30 held-out stories:
    the top-k hit rate recorded in predictor.json (over 500 such stories) within 3 points."""
    import sentencepiece as spm

    from slmc.train.train_moe import load_trained

    p = load_predictor(find_predictor(SHIPPED), load_model(SHIPPED))
    meta = json.loads((SHIPPED / "predictor.json").read_text())
    model = load_trained(SHIPPED)
    sp = spm.SentencePieceProcessor(model_file=str(SHIPPED / "tokenizer.model"))
    from slmc.train.stories import generate_stories

    held = P.record(model, P.story_ids(sp, generate_stories(30, P.HELDOUT_SEED), 256))
    pred = p.predict(held.features[p.input].numpy(), p.top_k)               # (N, layers, k)
    actual = held.experts[:, list(p.layers)].numpy()
    later = [i for i, lay in enumerate(p.layers) if lay >= 1]
    hit = (actual[..., :, None] == pred[..., None, :]).any(-1)[:, later].mean()
    assert abs(hit - meta["hit_rate_heldout"][f"top{p.top_k}"]["all"]) < 0.03, hit


def test_the_token_table_names_each_tokens_most_frequent_experts_and_loads(trained, tmp_path: Path) -> None:
    """The table of layer 0 (before the predictor's input) against a count in plain Python; saved with the
    predictor, the loader hands it back as int32, and on held-out sequences it beats chance."""
    from collections import Counter

    model, folder, net, layers, held = trained
    table = P.token_table(held, [0], E, 64)
    counts: dict[int, Counter] = {}
    for tok, ex in zip(held.tokens.tolist(), held.experts[:, 0].tolist()):
        counts.setdefault(tok, Counter()).update(ex)
    overall = sum(counts.values(), Counter())
    for tok in range(64):
        c = counts.get(tok, overall)
        want = sorted(range(E), key=lambda e: (-c[e], e))[:K]
        assert table[tok, 0].tolist() == want, tok
    calib = P.record(model, token_lists(120, 0))
    fitted = P.token_table(calib, [0], E, 64)
    assert P.token_hit_rate(fitted, held, [0]) > K / E + 0.1     # chance: 0.5
    dst = tmp_path / "with_table"
    shutil.copytree(folder, dst)
    P.save(net, dst, "layer_output", 0, layers, model, tokens=fitted)
    p = load_predictor(dst / "predictor.safetensors", load_model(dst))
    assert p.token_layers == (0,) and p.token_plan.dtype == np.int32
    assert np.array_equal(p.token_plan, fitted.numpy())
