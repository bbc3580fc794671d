"""Mixture-of-experts builds (frontend/build.py's MoE FFN, kernels/c/moe_*.c) and the expert cache
(passes/expert_cache.py, kernels/c/expert_cache.c): a Mixtral built by transformers (tests/families/hf_cases.py),
compiled with its experts in place and with N experts cached in SRAM. The cache must not change a single
logit, and its counters must add up: every token uses top_k experts per layer, each a hit or a miss, each
miss copying one slot's bytes. The logits against transformers: tests/families/test_hf_families.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import one_line_error, run_slmc
from families.hf_cases import SUPPORTED, hf_model, save

PROMPT = "1,17,42,99"
STEPS = 20


@pytest.fixture(scope="module")
def mixtral(tmp_path_factory) -> Path:
    return save(hf_model(SUPPORTED["mixtral"], seed=5), tmp_path_factory.mktemp("moe") / "mixtral")


def _run(folder: Path, out: Path, target: str, numerics: str, *flags: str) -> tuple[dict, np.ndarray, dict]:
    r = run_slmc("compile", folder, "-t", target, "-q", numerics, "--context", 32, "-o", out, *flags)
    assert r.returncode == 0, r.stderr
    dump = out.parent / f"{out.name}.f32"
    r = run_slmc("run", out, "--steps", STEPS, "--prompt-ids", PROMPT, "--json", "--dump-logits", dump)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout), np.fromfile(dump, np.float32), json.loads((out / "report.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("numerics", ["fp32", "q8"])
def test_the_cache_changes_no_logit_and_its_counters_add_up(tmp_path: Path, mixtral: Path, numerics: str) -> None:
    plain, logits, _ = _run(mixtral, tmp_path / "plain", "host", numerics)
    assert "expert_hits" not in plain
    for slots, policy in ((2, "none"), (3, "lru"), (16, "lru")):
        got, lg, rep = _run(mixtral, tmp_path / f"{slots}{policy}", "host", numerics, "--expert-slots", slots,
                            "--expert-prefetch", policy)
        assert got["ids"] == plain["ids"] and np.array_equal(lg, logits)
        ex = rep["experts"]
        assert (ex["count"], ex["top_k"], ex["layers"], ex["slots"], ex["prefetch"]) == (8, 2, 2, slots, policy)
        assert ex["all_experts_bytes"] == 8 * 2 * ex["slot_bytes"] and ex["cache_bytes"] == slots * ex["slot_bytes"]
        assert got["expert_hits"] + got["expert_misses"] == got["positions"] * 2 * 2  # x top_k x layers
        assert got["expert_bytes_loaded"] == got["expert_misses"] * ex["slot_bytes"]
        if policy == "none":
            assert got["expert_hits"] == 0
        if slots == 16:  # every expert of both layers fits: each is loaded once at most
            assert got["expert_misses"] <= 16


@pytest.mark.slow
@pytest.mark.parametrize("target", ["rp2350-arm", "rp2350-riscv"])
def test_cached_q8_on_the_mcu_matches_the_host(tmp_path: Path, mixtral: Path, target: str) -> None:
    host, _, _ = _run(mixtral, tmp_path / "host", "host", "q8")
    mcu, _, _ = _run(mixtral, tmp_path / "mcu", target, "q8", "--expert-slots", 4)
    assert mcu["ids"] == host["ids"]
    # on the RP2350 the experts stay in its flash: each miss costs a copy at the flash's bandwidth
    assert mcu["expert_stall_s_per_token"] == pytest.approx(mcu["expert_bytes_loaded"] / 37.5e6 / mcu["positions"],
                                                          rel=1e-6)
    # the estimate reads the other weights from flash (the experts only through the cache) and waits for
    # the cache's loads
    assert 0 <= mcu["estimated_flash_seconds_per_token"]
    assert 1 / mcu["estimated_tokens_per_s"] > mcu["expert_stall_s_per_token"] + mcu["estimated_flash_seconds_per_token"]


@pytest.mark.parametrize("flags, needles", [
    (["--expert-slots", "1"], ["--expert-slots 1", "2 experts"]),
    (["--expert-prefetch", "psychic"], ["--expert-prefetch"]),
    (["--expert-slots", "0"], ["--expert-slots 0"]),
    (["--chips", "2"], ["mixture-of-experts", "chips"]),
    (["-q", "int8"], ["int8", "mixture-of-experts"]),
])
def test_bad_expert_flags_are_one_line_errors(tmp_path: Path, mixtral: Path, flags: list, needles: list) -> None:
    r = run_slmc("compile", mixtral, "-t", "host", "--context", 32, "-o", tmp_path / "out", *flags)
    one_line_error(r, *needles)
    assert not (tmp_path / "out").exists()


def test_expert_slots_need_experts(tmp_path: Path) -> None:
    folder = save(hf_model(SUPPORTED["llama"], seed=1), tmp_path / "llama")
    one_line_error(run_slmc("compile", folder, "--context", 32, "--expert-slots", 2, "-o", tmp_path / "out"),
                   "mixture-of-experts")
