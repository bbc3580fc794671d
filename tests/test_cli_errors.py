"""Bad input gets one line naming the cause and the fix, exit code 2, no traceback, nothing in -o."""

import subprocess
import sys

import numpy as np
import pytest

from conftest import shared_path

SLMC = [sys.executable, "-m", "slmc.cli"]


def _expect_clean_failure(args, out_dir, *needles):
    r = subprocess.run([*SLMC, *args], capture_output=True, text=True)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    for n in needles:
        assert n.lower() in lines[0].lower(), lines[0]
    if out_dir is not None:
        assert not out_dir.exists()
        assert not any(p.name.startswith(f".{out_dir.name}") for p in out_dir.parent.iterdir())


def test_truncated_checkpoint(tmp_path):
    src = shared_path("models/stories260K/stories260K.bin").read_bytes()
    bad = tmp_path / "trunc.bin"
    bad.write_bytes(src[:100_000])
    _expect_clean_failure(["compile", str(bad), "-o", str(tmp_path / "o")], tmp_path / "o", "truncated")


def test_garbage_checkpoint(tmp_path):
    bad = tmp_path / "garbage.bin"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    _expect_clean_failure(["compile", str(bad), "-o", str(tmp_path / "o")], tmp_path / "o")


def test_missing_model(tmp_path):
    _expect_clean_failure(["compile", str(tmp_path / "nope.bin"), "-o", str(tmp_path / "o")], tmp_path / "o",
                          "does not exist")


def test_unknown_target(tmp_path):
    ckpt = shared_path("models/stories260K/stories260K.bin")
    _expect_clean_failure(["compile", str(ckpt), "-t", "z80", "-o", str(tmp_path / "o")], tmp_path / "o",
                          "unknown target 'z80'", "slmc targets")


def test_unknown_numerics(tmp_path):
    ckpt = shared_path("models/stories260K/stories260K.bin")
    _expect_clean_failure(["compile", str(ckpt), "-q", "int4", "-o", str(tmp_path / "o")], tmp_path / "o", "int4")


def test_unknown_memory_sharing(tmp_path):
    ckpt = shared_path("models/stories260K/stories260K.bin")
    _expect_clean_failure(["compile", str(ckpt), "--memory-sharing", "maybe", "-o", str(tmp_path / "o")], tmp_path / "o",
                          "--memory-sharing 'maybe'", "on or off")


def test_tokenizer_vocabulary_mismatch(tmp_path):
    import sentencepiece as spm

    text = tmp_path / "t.txt"
    text.write_text("\n".join(f"the cat sat on the mat number {i} and ran to the park" for i in range(300)))
    spm.SentencePieceTrainer.train(input=str(text), model_prefix=str(tmp_path / "tok"), vocab_size=300,
                                   model_type="bpe", byte_fallback=True, bos_id=1, eos_id=2, unk_id=0, pad_id=-1,
                                   minloglevel=2)
    ckpt = shared_path("models/stories260K/stories260K.bin")
    _expect_clean_failure(["compile", str(ckpt), "--tokenizer", str(tmp_path / "tok.model"), "-o", str(tmp_path / "o")],
                          tmp_path / "o", "512", "300")


def test_run_on_a_folder_that_is_not_a_build(tmp_path):
    _expect_clean_failure(["run", str(tmp_path)], None, "report.json")


def test_existing_foreign_output_folder_is_left_alone(tmp_path):
    ckpt = shared_path("models/stories260K/stories260K.bin")
    out = tmp_path / "mine"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    r = subprocess.run([*SLMC, "compile", str(ckpt), "-o", str(out)], capture_output=True, text=True)
    assert r.returncode == 2 and "not written by slmc" in r.stderr
    assert (out / "precious.txt").read_text() == "keep me"
