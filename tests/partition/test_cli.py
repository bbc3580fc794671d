"""`slmc compile --chips`: clean one-line errors, nothing left behind (no C compiler needed)."""

import subprocess
import sys

import pytest

from conftest import shared_path

SLMC = [sys.executable, "-m", "slmc.cli"]


@pytest.mark.parametrize("args,msg", [
    (["--chips", "2", "-t", "cortex-m33"], "runs on the host only"),
    (["--chips", "0"], "0 chips"),
    (["--chips", "2", "--fan-in", "1"], "fan-in 1 is below 2"),
    (["--chips", "2", "--reduce-fanin", "1"], "fan-in 1 is below 2"),   # the spelling of --fan-in
])
def test_bad_partition_options(tmp_path, args, msg):
    ckpt = shared_path("models/stories260K/stories260K.bin")
    out = tmp_path / "out"
    r = subprocess.run([*SLMC, "compile", str(ckpt), "-o", str(out), *args], capture_output=True, text=True)
    assert r.returncode == 2 and msg in r.stderr
    assert not out.exists() and not [p for p in tmp_path.iterdir()]


def test_run_of_one_chip_folder_is_refused(tmp_path):
    ckpt = shared_path("models/stories260K/stories260K.bin")
    out = tmp_path / "out"
    r = subprocess.run([*SLMC, "compile", str(ckpt), "-o", str(out), "--chips", "2"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in out.iterdir() if p.name != ".slmc-output.json")  # slmc's marker (output.py)
    assert names == ["chip0", "chip1", "manifest.json", "tokenizer.bin"] or names == ["chip0", "chip1", "manifest.json"]
    r = subprocess.run([*SLMC, "run", str(out / "chip1"), "--profile"], capture_output=True, text=True)
    assert r.returncode == 2 and "one chip of a partitioned build" in r.stderr
