"""`slmc run` and the other commands with bad option values: one line, exit code 2, nothing written; an
unexpected exception is exit code 3 with one line (cli.py's safety net), never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import one_line_error, run_slmc, shared_path



_slmc, _refused = run_slmc, one_line_error


@pytest.fixture(scope="module")
def llm(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "p"
    assert _slmc("compile", shared_path("models/stories260K/stories260K.bin"), "-o", out).returncode == 0
    return out


@pytest.fixture(scope="module")
def graph(tmp_path_factory) -> Path:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    d = tmp_path_factory.mktemp("graph")
    w = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(3, 4), "w")
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])], [w])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)]), d / "g.onnx")
    assert _slmc("compile", d / "g.onnx", "-o", d / "p").returncode == 0
    return d / "p"


@pytest.mark.parametrize("args,needle", [
    (["--temperature", "nan"], "--temperature"), (["--temperature", "-1"], "--temperature"),
    (["--temperature", "inf"], "--temperature"), (["--temperature", "1e309"], "--temperature"),
    (["--top-p", "0"], "--top-p"), (["--top-p", "5"], "--top-p"), (["--top-p", "nan"], "--top-p"),
    (["--top-p", "-0.1"], "--top-p"),
    (["--seed", "-1"], "--seed"), (["--seed", str(2 ** 64)], "--seed"), (["--seed", "99999999999999999999"], "--seed"),
    (["--steps", "0"], "--steps"), (["--steps", "-3"], "--steps"), (["--steps", "x"], "--steps"),
    (["--prompt-ids", ""], "prompt ids"), (["--prompt-ids", "a,b"], "--prompt-ids"), (["--prompt-ids", "1;2"], "--prompt-ids"),
    (["--prompt-ids", "600"], "0..511"),
    (["--prompt-ids", ",".join(["7"] * 513), "--steps", "600"], "holds 512 positions"),  # longer than the context
    (["--prompt-ids", "1,2,3,4,5", "--steps", "3"], "--steps 5"),                       # longer than --steps
    (["--prompt", "hello"], "tokenizer"),
    (["--on", "mars"], "--on mars"),
    (["--inputs", "in.npz"], "language model"),
])
def test_bad_run_options(llm, tmp_path, args, needle):
    _refused(_slmc("run", llm, *args, cwd=tmp_path), needle)
    assert list(tmp_path.iterdir()) == []


def test_seed_range_ends_work(llm):
    for seed in ("0", str(2 ** 64 - 1)):
        r = _slmc("run", llm, "--steps", "4", "--temperature", "0.8", "--seed", seed, "--ids")
        assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("kind", ["missing_folder", "folder", "fifo", "symlink", "read_only_folder"])
def test_unwritable_dump_logits(llm, tmp_path, kind):
    target = {"missing_folder": tmp_path / "nope" / "l.f32", "folder": tmp_path, "fifo": tmp_path / "fifo",
              "symlink": tmp_path / "link", "read_only_folder": tmp_path / "ro" / "l.f32"}[kind]
    if kind == "fifo":
        os.mkfifo(target)
    if kind == "symlink":
        (tmp_path / "real.f32").write_text("mine")
        target.symlink_to(tmp_path / "real.f32")
    if kind == "read_only_folder":
        if os.geteuid() == 0:
            pytest.skip("root writes into a read-only folder")
        (tmp_path / "ro").mkdir(mode=0o555)
    before = sorted(p.name for p in tmp_path.iterdir())
    _refused(_slmc("run", llm, "--steps", "4", "--dump-logits", target), "--dump-logits")
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_dump_logits_replaces_a_file_whole(llm, tmp_path):
    f = tmp_path / "l.f32"
    f.write_bytes(b"x" * 10_000_000)
    r = _slmc("run", llm, "--steps", "4", "--ids", "--dump-logits", f)
    assert r.returncode == 0, r.stderr
    assert f.stat().st_size == 4 * 512 * 4 and sorted(p.name for p in tmp_path.iterdir()) == ["l.f32"]


def _arrays(d: Path) -> None:
    np.savez(d / "in.npz", input_0=np.ones((2, 3), np.float32))
    np.savez(d / "shape.npz", input_0=np.ones((3, 3), np.float32))
    np.savez(d / "dtype.npz", input_0=np.ones((2, 3), np.complex64))
    np.savez(d / "obj.npz", input_0=np.array([[None] * 3] * 2, dtype=object))
    np.savez(d / "none.npz")
    np.save(d / "one.npy", np.ones((2, 3), np.float32))
    (d / "fake.npz").write_bytes(b"PK\x03\x04 not really a zip")
    (d / "text.npz").write_text("hello")


@pytest.mark.parametrize("args,needle", [
    (["--inputs", "missing.npz"], "does not exist"), (["--inputs", "one.npy"], ".npy"),
    (["--inputs", "fake.npz"], "not an .npz"), (["--inputs", "text.npz"], "not an .npz"),
    (["--inputs", "shape.npz"], "[2, 3]"), (["--inputs", "dtype.npz"], "complex64"),
    (["--inputs", "obj.npz"], "--inputs"), (["--inputs", "none.npz"], "no value for graph input 0"),
    (["--inputs", "."], "folder"), (["--inputs", "fifo"], "not a regular file"),
    (["--inputs", "in.npz", "--save", "nope/o.npz"], "does not exist"),
    (["--inputs", "in.npz", "--save", "."], "folder"),
    (["--save", "o.npz"], "--save needs --inputs"),
    (["--prompt-ids", "1"], "graph"),
])
def test_bad_graph_inputs(graph, tmp_path, args, needle):
    _arrays(tmp_path)
    os.mkfifo(tmp_path / "fifo")
    before = sorted(p.name for p in tmp_path.iterdir())
    _refused(_slmc("run", graph, *args, cwd=tmp_path), needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_graph_save_writes_exactly_the_named_file(graph, tmp_path):
    _arrays(tmp_path)
    r = _slmc("run", graph, "--inputs", "in.npz", "--save", "out.bin", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    with np.load(tmp_path / "out.bin") as f:
        np.testing.assert_array_equal(f["output_0"], np.ones((2, 3), np.float32) @ np.arange(12, dtype=np.float32).reshape(3, 4))


@pytest.mark.parametrize("args,needle", [
    (["compile", "fifo", "-o", "o"], "not a regular file"),
    (["compile", "MODEL", "--tokenizer", "fifo", "-o", "o"], "--tokenizer"),
    (["compile", "MODEL", "--tokenizer", ".", "-o", "o"], "folder"),
    (["compile", "MODEL", "--seq", "-5", "-o", "o"], "--seq"),
    (["compile", "MODEL", "--chips", "4096", "-o", "o"], "--chips 4096"),
    (["compile", "MODEL", "--cores", "4096", "-o", "o"], "--cores 4096"),
    (["compile", "MODEL", "--cores", "0", "-o", "o"], "--cores 0"),
    (["compile", "MODEL", "--context", "x", "-o", "o"], "--context"),
    (["report", "fifo"], "report.json"),
    (["simulate", "stories260K", "--heads", "0"], "--heads"),
    (["simulate", "stories260K", "--plot", "."], "folder"),
    (["simulate", "fifo"], "not a regular file"),
    (["dvfs", "fifo"], "not a regular file"),
    (["dvfs", "MODEL", "--latency-ms", "nan"], "budgets"),
    (["dvfs", "MODEL", "--isa", "arm", "--emit", "fifo"], "--emit"),
    (["generate", "MODEL", "--top-p", "0"], "--top-p"),
    (["targets", "--bogus"], "--bogus"),
])
def test_other_commands_refuse_bad_values(tmp_path, args, needle):
    os.mkfifo(tmp_path / "fifo")
    model = str(shared_path("models/stories260K/stories260K.bin"))
    _refused(_slmc(*[model if a == "MODEL" else a for a in args], cwd=tmp_path), needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo"]


def _probe(tmp_path, exc: str):
    """A script that runs `slmc compile` with the compile step raising `exc`."""
    probe = tmp_path / "probe.py"
    probe.write_text("import sys, slmc.cli\n"
                     f"def fail(*a, **k):\n    raise {exc}\n"
                     "slmc.cli._compile = fail\n"
                     "sys.argv = ['slmc', 'compile', 'x.bin']\nslmc.cli.main()\n")
    return probe


def test_internal_errors_are_one_line_with_exit_code_3(tmp_path):
    """An exception slmc did not expect: one line, exit code 3; SLMC_DEBUG=1 shows the traceback."""
    probe = _probe(tmp_path, "ZeroDivisionError('planted')")
    r = subprocess.run([sys.executable, str(probe)], capture_output=True, text=True)
    line = _refused(r, "internal error", "ZeroDivisionError: planted", "SLMC_DEBUG=1", code=3)
    assert line.startswith("error:")
    r = subprocess.run([sys.executable, str(probe)], capture_output=True, text=True, env={**os.environ, "SLMC_DEBUG": "1"})
    assert r.returncode == 1 and "Traceback" in r.stderr and "planted" in r.stderr


def test_interrupt_is_exit_code_130(tmp_path):
    probe = _probe(tmp_path, "KeyboardInterrupt")
    r = subprocess.run([sys.executable, str(probe)], capture_output=True, text=True)
    _refused(r, "interrupted", code=130)


@pytest.mark.parametrize("config", [{"vocab_size": "512", "seq_len": 512}, {"vocab_size": 512}, [], {"vocab_size": True, "seq_len": 8}])
def test_a_hand_edited_report_is_refused(tmp_path, config):
    """report.json is read before anything is built: a damaged config is one line, not an internal error."""
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "report.json").write_text(json.dumps({"target": "host", "config": config}))
    one_line_error(run_slmc("run", proj, "--steps", "4"), "not a report slmc wrote")
