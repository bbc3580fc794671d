"""--expert-prefetch predictor and --expert-routing (passes/expert_predict.py, kernels/c/moe_predict_f32.c) on the
bundled MoE (models/moe, its trained predictor beside it): with the router deciding, the ids and logits are
those of the build with every expert resident, on the host, the Cortex-M33 and RV32 (emulated); with predicted
routing, the generated C computes what the numpy twin of the predicted-routing graph computes, and that graph
routes the predicted layers by the predictor (checked against the loader's own numpy math); bad combinations
are one-line errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import one_line_error, run_slmc

MOE = Path(__file__).resolve().parents[2] / "models" / "moe"
PROMPT = "1,403,285,261,262"
K, LAYERS = 2, 4

pytestmark = pytest.mark.skipif(not (MOE / "predictor.safetensors").is_file(), reason="models/moe is absent")


def _compile(out: Path, target: str, *flags: object) -> dict:
    r = run_slmc("compile", MOE, "-t", target, "-q", "q8", "--kv-cache", "fp16", "--seq", 0, "-o", out, *flags)
    assert r.returncode == 0, r.stderr
    return json.loads((out / "report.json").read_text())


def _run(out: Path, steps: int) -> tuple[dict, np.ndarray]:
    dump = out.parent / f"{out.name}.f32"
    r = run_slmc("run", out, "--steps", steps, "--prompt-ids", PROMPT, "--json", "--dump-logits", dump)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout), np.fromfile(dump, np.float32)


PREDICTOR = ("--expert-slots", 8, "--expert-prefetch", "predictor")


@pytest.fixture(scope="module")
def resident(tmp_path_factory) -> tuple[dict, np.ndarray]:
    """The host build with every expert in place: the reference for every router-routed build."""
    out = tmp_path_factory.mktemp("resident") / "host"
    _compile(out, "host")
    return _run(out, 24)


@pytest.mark.slow
def test_router_routing_with_the_predictor_changes_no_logit_on_the_host(tmp_path: Path, resident) -> None:
    rep = _compile(tmp_path / "p", "host", *PREDICTOR)
    got, logits = _run(tmp_path / "p", 24)
    assert got["ids"] == resident[0]["ids"] and np.array_equal(logits, resident[1])
    ex = rep["experts"]
    assert (ex["prefetch"], ex["routing"], ex["slots"]) == ("predictor", "router", 8)
    meta = json.loads((MOE / "predictor.json").read_text())
    assert ex["predictor_bytes"] == meta["bytes"] and ex["predictor_hit_rate"] == meta["hit_rate_heldout"]["top2"]["all"]
    assert ex["cache_bytes"] <= ex["all_experts_bytes"] // 4
    # every use is a hit or a miss; at every position the token table planned its top_k of layer 0 and the
    # predictor its top_k of layers 1..3
    assert got["expert_hits"] + got["expert_misses"] == 24 * K * LAYERS
    assert got["expert_prefetch_planned"] == 24 * LAYERS * K
    assert got["expert_prefetch_hits"] <= got["expert_prefetch_planned"] and got["expert_prefetch_hits"] <= got["expert_hits"]
    assert got["expert_bytes_loaded"] == (got["expert_misses"] + got["expert_prefetches"]) * ex["slot_bytes"]
    # a trained predictor beats chance (2 of 8 experts: 0.25) by far on this text
    assert got["expert_prefetch_hit_rate"] > 0.7
    # against the on-demand policy: the predictor's planned experts are no longer loaded at use
    none = _compile(tmp_path / "none", "host", "--expert-slots", 8, "--expert-prefetch", "none")
    base, base_logits = _run(tmp_path / "none", 24)
    assert np.array_equal(base_logits, resident[1]) and none["experts"]["routing"] is None
    assert got["expert_misses"] < base["expert_misses"] - got["expert_prefetch_hits"] // 2


@pytest.mark.slow
@pytest.mark.parametrize("target", ["rp2350-arm", "rp2350-riscv"])
def test_router_routing_with_the_predictor_on_the_mcu_matches_every_expert_resident(tmp_path: Path, resident,
                                                                                    target: str) -> None:
    steps = 8
    _compile(tmp_path / "p", target, *PREDICTOR)
    got, _ = _run(tmp_path / "p", steps)
    assert got["ids"] == resident[0]["ids"][:len(got["ids"])] and len(got["ids"]) == steps - 4
    assert got["expert_prefetch_planned"] == steps * LAYERS * K
    assert got["expert_hits"] + got["expert_misses"] == steps * K * LAYERS
    # the overlap model: the predictor's loads partly hidden, the rest and the misses a stall
    per_load = got["expert_bytes_loaded"] / (got["expert_misses"] + got["expert_prefetches"]) / 37.5e6
    misses = got["expert_misses"] * per_load / steps
    prefetched = got["expert_prefetches"] * per_load / steps
    assert got["expert_stall_s_per_token"] == pytest.approx(misses + prefetched - got["expert_prefetch_hidden_s_per_token"])
    assert 0 <= got["expert_prefetch_hidden_s_per_token"] <= prefetched


@pytest.mark.slow
def test_on_siracusa_like_the_expert_loads_go_through_the_dma_api(tmp_path: Path, resident) -> None:
    """Experts in L3, the slots in L2: the cache's loads call dma.c (the tiled code's DMA API) between those
    levels, and the ids are still those of every expert resident."""
    steps = 8
    _compile(tmp_path / "s", "siracusa-like", *PREDICTOR)
    make = (tmp_path / "s" / "Makefile").read_text()
    assert "-DSLMC_EXPERT_DMA_SRC=2 -DSLMC_EXPERT_DMA_DST=1" in make and (tmp_path / "s" / "kernels" / "dma.c").is_file()
    got, _ = _run(tmp_path / "s", steps)
    assert got["ids"] == resident[0]["ids"][:len(got["ids"])] and len(got["ids"]) == steps - 4
    assert got["expert_hits"] + got["expert_misses"] == steps * K * LAYERS


@pytest.mark.slow
def test_predicted_routing_matches_the_numpy_twin_of_its_graph(tmp_path: Path) -> None:
    from slmc.frontend.build import build_step_graph
    from slmc.frontend.expert_predictor import load_predictor
    from slmc.frontend.load import load_model
    from slmc.passes import expert_cache, expert_predict
    from slmc.reference.interp import new_state, run

    steps = 16
    rep = _compile(tmp_path / "pr", "host", *PREDICTOR, "--expert-routing", "predicted")
    assert rep["experts"]["routing"] == "predicted"
    got, logits = _run(tmp_path / "pr", steps)
    assert got["expert_misses"] <= steps * K  # only layer 0 (before the predictor's input) loads at use:
    assert got["expert_misses"] < steps * K // 2  # where the token table mispredicts

    model = load_model(MOE)
    predictor = load_predictor(MOE / "predictor.safetensors", model)
    g = expert_cache.run(build_step_graph(model, 1, "q8", "fp16"), 8, "predictor")
    g = expert_predict.run(g, predictor, "predicted")
    seq = [int(t) for t in PROMPT.split(",")] + got["ids"]
    state, ref, replaced, unused = new_state(g), [], 0, 0
    for p in range(steps):
        env = run(g, {"tokens": np.array([seq[p]], np.int32), "pos": np.array([p], np.int32)}, state, keep=True)
        ref.append(env[g.outputs[0].name][0])
        unused += len(set(env["expert_token_plan"][0, 0]) - set(env["layers.0.expert_ids"][0]))
        planned = predictor.predict(env["layers.0.x_ffn"][0], K)  # the loader's numpy, not the kernel's twin
        for lay in (1, 2, 3):
            ids = env[f"layers.{lay}.expert_ids"][0]
            assert list(ids) == list(planned[lay - 1])
            router = np.argsort(-env[f"layers.{lay}.router_out"][0], kind="stable")[:K]
            replaced += set(router) != set(ids)
    assert replaced > 0  # the router would have chosen otherwise somewhere: the routing really is the predictor's
    # every planned expert of layers 1..3 is used; of layer 0's, those the router did not choose are not
    assert got["expert_prefetch_planned"] - got["expert_prefetch_hits"] == unused
    ref = np.stack(ref)
    logits = logits.reshape(steps, -1)
    assert np.abs(logits - ref).max() < 2e-3 * max(1.0, np.abs(ref).max())
    assert list(ref[4:].argmax(axis=1)) == got["ids"][:steps - 4]


def _bad(tmp_path: Path, *flags: object):
    return run_slmc("compile", MOE, "-t", "host", "-q", "q8", "--context", 32, "-o", tmp_path / "out", *flags)


def test_a_predictor_for_another_model_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(MOE / "predictor.safetensors", other / "predictor.safetensors")
    meta = json.loads((MOE / "predictor.json").read_text())
    meta["router_sha256"] = "0" * 64
    (other / "predictor.json").write_text(json.dumps(meta))
    one_line_error(_bad(tmp_path, *PREDICTOR, "--expert-predictor", other / "predictor.safetensors"),
                   "another model", "fingerprint")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("change, needles", [
    (lambda m, t: m.update(token_layers=[0, 1]), ["token_layers", "[0]"]),
    (lambda m, t: t.update(token_plan=t["token_plan"] + 0.5), ["token_plan", "distinct expert indices"]),
    (lambda m, t: t.update(token_plan=np.full_like(t["token_plan"], 3.0)), ["token_plan", "distinct"]),
    (lambda m, t: t.update(token_plan=t["token_plan"] + 8), ["token_plan", "0..7"]),
    (lambda m, t: t.pop("token_plan"), ["token_plan"]),
])
def test_a_bad_token_table_is_refused_in_one_line(tmp_path: Path, change, needles: list) -> None:
    from safetensors.numpy import load_file, save_file

    bad = tmp_path / "bad"
    bad.mkdir()
    meta, tensors = json.loads((MOE / "predictor.json").read_text()), load_file(str(MOE / "predictor.safetensors"))
    change(meta, tensors)
    save_file(tensors, str(bad / "predictor.safetensors"))
    (bad / "predictor.json").write_text(json.dumps(meta))
    one_line_error(_bad(tmp_path, *PREDICTOR, "--expert-predictor", bad / "predictor.safetensors"), *needles)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flags, needles", [
    (["--expert-prefetch", "predictor"], ["--expert-prefetch predictor", "--expert-slots"]),
    (["--expert-slots", 6, "--expert-prefetch", "predictor"], ["--expert-slots 6", "--expert-slots 8"]),
    (["--expert-slots", 8, "--expert-routing", "predicted"], ["--expert-routing predicted", "--expert-prefetch predictor"]),
    (["--expert-slots", 8, "--expert-prefetch", "predictor", "--expert-routing", "oracle"], ["--expert-routing"]),
    (["--expert-slots", 8, "--expert-predictor", MOE / "predictor.safetensors"], ["--expert-predictor"]),
])
def test_bad_predictor_flags_are_one_line_errors(tmp_path: Path, flags: list, needles: list) -> None:
    one_line_error(_bad(tmp_path, *flags), *needles)
    assert not (tmp_path / "out").exists()


def test_a_model_without_a_predictor_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "moe"
    shutil.copytree(MOE, folder, ignore=shutil.ignore_patterns("predictor.*"))
    r = run_slmc("compile", folder, "-t", "host", "--context", 32, "-o", tmp_path / "out", *PREDICTOR)
    one_line_error(r, "expert predictor", "--expert-predictor")


@pytest.mark.slow
def test_the_slot_table_replayed_in_python_counts_what_the_c_counts(tmp_path: Path, resident) -> None:
    """sim/expert_replay.py (the per-token picture's source) against expert_cache.c's counters, every policy,
    over the routing and plans of the numpy twin fed the same tokens."""
    from slmc.frontend.build import build_step_graph
    from slmc.frontend.expert_predictor import load_predictor
    from slmc.frontend.load import load_model
    from slmc.passes import expert_cache, expert_predict
    from slmc.reference.interp import new_state, run
    from slmc.sim.expert_replay import replay

    steps, slots = 24, 8
    model = load_model(MOE)
    predictor = load_predictor(MOE / "predictor.safetensors", model)
    g = expert_predict.run(expert_cache.run(build_step_graph(model, 1, "q8", "fp16"), slots, "predictor"), predictor,
                           "router")
    seq = [int(t) for t in PROMPT.split(",")] + resident[0]["ids"]
    state, chosen, plans, token_plans = new_state(g), [], [], []
    for p in range(steps):
        env = run(g, {"tokens": np.array([seq[p]], np.int32), "pos": np.array([p], np.int32)}, state, keep=True)
        chosen.append([env[f"layers.{lay}.expert_ids"][0].tolist() for lay in range(LAYERS)])
        plans.append(state["expert_plan"][0].tolist())
        token_plans.append(env["expert_token_plan"][0].tolist())
        assert token_plans[-1] == predictor.token_plan[seq[p]].tolist()   # the twin looks up the trainer's table
    for policy in ("none", "lru", "predictor"):
        _compile(tmp_path / policy, "host", "--expert-slots", slots, "--expert-prefetch", policy)
        got, _ = _run(tmp_path / policy, steps)
        pred = policy == "predictor"
        loads = replay(chosen, slots, policy, 8, plans if pred else None, 1, token_plans if pred else None)
        assert (sum(t.misses for t in loads), sum(t.hits for t in loads), sum(t.prefetches for t in loads),
                sum(t.prefetch_hits for t in loads)) == (got["expert_misses"], got["expert_hits"],
                                                         got.get("expert_prefetches", 0),
                                                         got.get("expert_prefetch_hits", 0)), policy
