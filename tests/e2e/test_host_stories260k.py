"""stories260K through the whole pipeline on the host, against llama2.c's own outputs."""

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import shared_path

pytestmark = pytest.mark.slow
SLMC = [sys.executable, "-m", "slmc.cli"]


def _ids() -> list[int]:
    return [int(x) for x in shared_path("models/stories260K/greedy_ids_from_bos.txt").read_text().split()]


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    ckpt = shared_path("models/stories260K/stories260K.bin")
    out = {}
    for q in ("fp32", "q8"):
        d = tmp_path_factory.mktemp(q) / "out"
        subprocess.run([*SLMC, "compile", str(ckpt), "-t", "host", "-q", q, "-o", str(d)], check=True)
        out[q] = d
    return out


def test_fp32_greedy_ids_and_logits_match_llama2c(builds, tmp_path):
    logits = tmp_path / "logits.f32"
    r = subprocess.run([*SLMC, "run", str(builds["fp32"]), "--steps", "256", "--temperature", "0", "--ids",
                        "--dump-logits", str(logits)], check=True, capture_output=True, text=True)
    assert [int(x) for x in r.stdout.split()] == _ids()
    got = np.fromfile(logits, np.float32).reshape(-1, 512)
    ref = np.fromfile(shared_path("models/stories260K/logits_first16.f32"), np.float32).reshape(16, 512)
    assert got.shape == (256, 512)
    assert np.abs(got[:16] - ref).max() < 1e-4


def test_report_has_the_interface_fields(builds):
    rep = json.loads((builds["fp32"] / "report.json").read_text())
    for key in ("arena_bytes", "lower_bound_bytes", "weights_bytes", "kv_cache_bytes", "macs_per_token", "planner",
                "shared_lower_bound_bytes", "activation_arena_bytes", "activation_lower_bound_bytes", "memory_sharing"):
        assert key in rep
    assert rep["macs_per_token"] == 259_328  # DESIGN.md: MACs per token in the matrix products
    assert rep["kv_cache_bytes"] == 2 * 5 * 512 * 32 * 4
    # memory sharing (on by default): the arena may go below the conventional bound, never below the shared one
    assert rep["lower_bound_bytes"] >= rep["arena_bytes"] >= rep["shared_lower_bound_bytes"]
    assert rep["activation_arena_bytes"] == rep["arena_bytes"] - rep["kv_cache_bytes"]


def test_prompt_ids_through_prefill_continue_the_greedy_run(builds, tmp_path):
    ids = _ids()
    prompt = [1] + ids[:40]  # 40 prompt positions: two full prompt chunks of 16 and a partial one
    logits = tmp_path / "l.f32"
    r = subprocess.run([*SLMC, "run", str(builds["fp32"]), "--steps", "256", "--prompt-ids", ",".join(map(str, prompt)),
                        "--ids", "--dump-logits", str(logits)], check=True, capture_output=True, text=True)
    assert [int(x) for x in r.stdout.split()] == ids[40:]
    ref = np.fromfile(shared_path("models/stories260K/logits_first16.f32"), np.float32).reshape(16, 512)
    assert np.abs(np.fromfile(logits, np.float32).reshape(-1, 512)[:16] - ref).max() < 1e-4


def test_q8_teacher_forced_agreement_with_fp32(builds, tmp_path):
    ids = _ids()
    logits = tmp_path / "q.f32"
    subprocess.run([*SLMC, "run", str(builds["q8"]), "--steps", "256", "--prompt-ids", ",".join(map(str, [1] + ids[:255])),
                    "--ids", "--dump-logits", str(logits)], check=True, capture_output=True)
    got = np.fromfile(logits, np.float32).reshape(256, 512)
    agree = float((got.argmax(axis=1) == np.array(ids)).mean())
    print(f"\nq8 top-1 agreement with fp32 on stories260K (256 teacher-forced positions): {agree:.1%}")
    assert agree >= Q8_AGREEMENT_FLOOR


# The issue hoped for 98%. runq semantics reach 89.5% on this 260K-parameter model, whose top-2 logit gap
# is under 0.3 at 36 of the 256 positions: quantizing only the activations (fp32 weights) already gives
# 94.5%, only the weights 92.2%, and even 4-wide weight groups 96.5% (README, "q8 accuracy").
Q8_AGREEMENT_FLOOR = 0.89


def test_fp16_kv_cache_teacher_forced_agreement_and_its_numpy_twin(tmp_path):
    """fp32 numerics with the KV cache stored as fp16 (what the RP2350 targets choose): its argmax against
    llama2.c's greedy ids over 256 teacher-forced positions, and its logits against the numpy twin."""
    from slmc.frontend import llama2c
    from slmc.frontend.logits import reference_logits

    ckpt, ids = shared_path("models/stories260K/stories260K.bin"), _ids()
    out, logits = tmp_path / "kv16", tmp_path / "kv16.f32"
    subprocess.run([*SLMC, "compile", str(ckpt), "-t", "host", "-q", "fp32", "--kv-cache", "fp16", "-o", str(out)],
                   check=True, capture_output=True)
    assert json.loads((out / "report.json").read_text())["kv_cache_bytes"] == 2 * 5 * 512 * 32 * 2
    subprocess.run([*SLMC, "run", str(out), "--steps", "256", "--prompt-ids", ",".join(map(str, [1] + ids[:255])),
                    "--ids", "--dump-logits", str(logits)], check=True, capture_output=True)
    got = np.fromfile(logits, np.float32).reshape(256, 512)
    agree = float((got.argmax(axis=1) == np.array(ids)).mean())
    print(f"\nfp16 KV cache (fp32 numerics) top-1 agreement with llama2.c's fp32 on stories260K "
          f"(256 teacher-forced positions): {agree:.1%}")
    assert agree >= 0.99
    ref = reference_logits(llama2c.load(ckpt), [1] + ids[:47], "fp32", kv_cache="fp16")
    # numpy sums in another order than the C (fp32: within 4e-5 here); where that moves a key or value across
    # a rounding tie of fp16, the stored half differs by one fp16 ulp, so the bound is looser than fp32's
    assert np.abs(got[:48] - ref).max() < 2e-3


@pytest.mark.parametrize("numerics,floor", [("fp32", 0.97), ("q8", 0.88)])
def test_int8_kv_cache_teacher_forced_agreement(tmp_path, numerics, floor):
    """The KV cache as int8 with a binary16 scale per position and KV head, integer attention (--kv-cache int8): its
    argmax against llama2.c's greedy ids over 256 teacher-forced positions (benchmarks/kv_int8.py: fp32 numerics
    97.3%, fp16's 99.2%; q8 88.3%, with float32 scales 89.5%, with an fp32 cache 89.5%), and a quarter of the
    fp32 cache's bytes plus the scales."""
    ckpt, ids = shared_path("models/stories260K/stories260K.bin"), _ids()
    out, logits = tmp_path / "kv8", tmp_path / "kv8.f32"
    subprocess.run([*SLMC, "compile", str(ckpt), "-t", "host", "-q", numerics, "--kv-cache", "int8", "-o", str(out)],
                   check=True, capture_output=True)
    assert json.loads((out / "report.json").read_text())["kv_cache_bytes"] == 2 * 5 * 512 * 4 * (8 + 2)
    subprocess.run([*SLMC, "run", str(out), "--steps", "256", "--prompt-ids", ",".join(map(str, [1] + ids[:255])),
                    "--ids", "--dump-logits", str(logits)], check=True, capture_output=True)
    got = np.fromfile(logits, np.float32).reshape(256, 512)
    agree = float((got.argmax(axis=1) == np.array(ids)).mean())
    print(f"\nint8 KV cache ({numerics} numerics) top-1 agreement with llama2.c's fp32 on stories260K: {agree:.1%}")
    assert agree >= floor


def test_same_input_gives_byte_identical_files(builds, tmp_path):
    again = tmp_path / "again"
    subprocess.run([*SLMC, "compile", str(shared_path("models/stories260K/stories260K.bin")), "-t", "host", "-q", "q8",
                    "-o", str(again)], check=True)
    first = builds["q8"]
    # `first` has been run: its program, and slmc's marker listing it (output.py), differ from a fresh compile
    built = ("model", ".slmc-output.json")
    names = sorted(p.relative_to(first).as_posix() for p in first.rglob("*") if p.is_file() and p.name not in built)
    assert names == sorted(p.relative_to(again).as_posix() for p in again.rglob("*") if p.is_file() and p.name not in built)
    for n in names:
        assert (first / n).read_bytes() == (again / n).read_bytes(), n
