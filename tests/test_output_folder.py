"""Where `slmc compile -o` (and report, --chips, --emit) may write, and what it may replace (src/slmc/output.py):
never a user's file, never through a symbolic link it did not expect, never half a project. Every case runs
in a throwaway folder; `-o ~` gets a HOME of its own."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import one_line_error, run_slmc, shared_path
from slmc.errors import SlmcError
from slmc.output import MARKER, output_folder

SLMC = [sys.executable, "-m", "slmc.cli"]


def _ckpt() -> Path:
    return shared_path("models/stories260K/stories260K.bin")


_slmc, _refused = run_slmc, one_line_error


def _snapshot(folder: Path) -> dict[str, bytes | str]:
    """Every path under `folder` (not following links) with its content, link target or 'dir'."""
    out: dict[str, bytes | str] = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        out[rel] = f"-> {os.readlink(p)}" if p.is_symlink() else "dir" if p.is_dir() else p.read_bytes()
    return out


def _no_leftovers(*folders: Path) -> None:
    for f in folders:
        if f.is_dir():
            odd = [p.name for p in f.iterdir() if p.name.startswith((".slmc-new", ".slmc-old", ".slmc-tmp"))
                   or (p.name.startswith(".") and ".slmc" not in p.name and p.name.count(".") >= 2 and p.is_dir())]
            assert not odd, odd


def _user_folder(d: Path, report: bool) -> dict:
    d.mkdir(parents=True, exist_ok=True)
    (d / ".bashrc").write_text("alias ll='ls -l'\n")
    (d / "notes.txt").write_text("keep me\n")
    (d / "sub").mkdir(exist_ok=True)
    (d / "sub" / "data.bin").write_bytes(b"\x00\x01")
    if report:
        (d / "report.json").write_text("{}\n")
    return _snapshot(d)


@pytest.mark.parametrize("report", [True, False])
def test_a_foreign_folder_is_refused_and_untouched(tmp_path, report):
    proj = tmp_path / "proj"
    before = _user_folder(proj, report)
    line = _refused(_slmc("compile", _ckpt(), "-o", proj))
    assert ("report.json" in line and MARKER in line) if report else "not written by slmc" in line
    assert _snapshot(proj) == before
    _no_leftovers(proj, tmp_path)


@pytest.mark.parametrize("report", [True, False])
def test_home_folder_as_output_is_refused(tmp_path, report):
    home = tmp_path / "home"
    before = _user_folder(home, report)
    # `-o ~` as a shell expands it, with HOME pointing at the throwaway folder
    r = subprocess.run(["sh", "-c", '"$@" -o ~', "sh", *SLMC, "compile", str(_ckpt())], capture_output=True, text=True,
                       cwd=tmp_path, env={**os.environ, "HOME": str(home)})
    _refused(r)
    assert _snapshot(home) == before
    _no_leftovers(home, tmp_path)


@pytest.mark.parametrize("where", [".", ".."])
def test_dot_and_dotdot(tmp_path, where):
    cwd = tmp_path / "a" / "b"
    cwd.mkdir(parents=True)
    if where == ".":  # an empty folder: slmc writes into it in place (the shell's cwd stays a live folder)
        ino = cwd.stat().st_ino
        r = _slmc("compile", _ckpt(), "-o", ".", cwd=cwd)
        assert r.returncode == 0, r.stderr
        assert cwd.stat().st_ino == ino and (cwd / "report.json").is_file() and (cwd / MARKER).is_file()
        r = _slmc("compile", _ckpt(), "-o", ".", cwd=cwd)  # and again: its own folder
        assert r.returncode == 0, r.stderr
        _no_leftovers(cwd, cwd.parent)
    else:  # the parent holds b/: not slmc's, refused
        (cwd / "report.json").write_text("{}")
        before = _snapshot(tmp_path)
        _refused(_slmc("compile", _ckpt(), "-o", "..", cwd=cwd), "not written by slmc")
        assert _snapshot(tmp_path) == before


def test_dot_with_report_json_but_no_marker(tmp_path):
    before = _user_folder(tmp_path / "w", True)
    _refused(_slmc("compile", _ckpt(), "-o", ".", cwd=tmp_path / "w"), "report.json")
    assert _snapshot(tmp_path / "w") == before


@pytest.mark.parametrize("sub", [False, True])
def test_a_file_as_output(tmp_path, sub):
    f = tmp_path / "file.txt"
    f.write_text("mine")
    _refused(_slmc("compile", _ckpt(), "-o", f / "sub" if sub else f), "file")
    assert f.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_symlinks(tmp_path):
    real = tmp_path / "real"
    assert _slmc("compile", _ckpt(), "-o", real).returncode == 0
    link = tmp_path / "link"
    link.symlink_to(real)
    r = _slmc("compile", _ckpt(), "-o", link)  # a link to slmc's own folder: written through, left a link
    assert r.returncode == 0, r.stderr
    assert link.is_symlink() and (real / "report.json").is_file()
    foreign = tmp_path / "foreign"
    _user_folder(foreign, True)
    (tmp_path / "to_foreign").symlink_to(foreign)
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    before = _snapshot(tmp_path)
    _refused(_slmc("compile", _ckpt(), "-o", tmp_path / "to_foreign"), "symbolic link")
    _refused(_slmc("compile", _ckpt(), "-o", tmp_path / "dangling"), "dangling")
    assert _snapshot(tmp_path) == before and not (tmp_path / "nowhere").exists()


def test_a_link_inside_an_slmc_folder_is_not_followed(tmp_path):
    out = tmp_path / "out"
    assert _slmc("compile", _ckpt(), "-o", out).returncode == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "add_f32.c").write_text("mine")
    import shutil

    shutil.rmtree(out / "kernels")
    (out / "kernels").symlink_to(elsewhere)  # a listed folder replaced by a link to the user's files
    _refused(_slmc("compile", _ckpt(), "-o", out), "kernels")
    assert (elsewhere / "add_f32.c").read_text() == "mine"


def test_recompile_keeps_the_users_files_and_drops_build_outputs(tmp_path):
    out = tmp_path / "out"
    assert _slmc("compile", _ckpt(), "-o", out).returncode == 0
    (out / "mine.txt").write_text("keep me")
    (out / "kernels" / "my_kernel.c").write_text("/* mine */")
    r = _slmc("run", out, "--steps", "4", "--ids")  # builds: make's program joins the marker
    assert r.returncode == 0, r.stderr
    assert "model" in json.loads((out / MARKER).read_text())["files"]
    (out / "model.c").write_text("/* an edit of slmc's file: replaced by the re-compile */")
    assert _slmc("compile", _ckpt(), "-q", "q8", "-o", out).returncode == 0
    assert (out / "mine.txt").read_text() == "keep me"
    assert (out / "kernels" / "my_kernel.c").read_text() == "/* mine */"
    assert not (out / "model").exists() and "slmc_" in (out / "model.c").read_text()
    assert json.loads((out / "report.json").read_text())["numerics"] == "q8"
    listed = set(json.loads((out / MARKER).read_text())["files"])
    assert "mine.txt" not in listed and "kernels/my_kernel.c" not in listed
    assert "kernels/linear_f32.c" not in listed and not (out / "kernels" / "linear_f32.c").exists()  # fp32's kernel went
    _no_leftovers(out, tmp_path)


def test_a_name_the_new_project_needs_is_refused_when_it_is_the_users(tmp_path):
    out = tmp_path / "out"
    assert _slmc("compile", _ckpt(), "-o", out).returncode == 0
    (out / "kernels" / "quantize_q8.c").write_text("the user's own file")  # a name only the q8 build writes
    before = _snapshot(out)
    _refused(_slmc("compile", _ckpt(), "-q", "q8", "-o", out), "quantize_q8.c")
    assert _snapshot(out) == before
    _no_leftovers(out, tmp_path)


def test_empty_existing_folder_and_umask(tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    assert _slmc("compile", _ckpt(), "-o", out).returncode == 0
    new = tmp_path / "new" / "deeper"
    r = subprocess.run(["sh", "-c", 'umask 027 && exec "$@"', "sh", *SLMC, "compile", str(_ckpt()), "-o", str(new)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for p in (new, new / "kernels"):
        assert stat.S_IMODE(p.stat().st_mode) == 0o750, oct(p.stat().st_mode)
    for p in (new / "report.json", new / MARKER, new / "kernels" / "sample.c"):
        assert stat.S_IMODE(p.stat().st_mode) == 0o640, (p, oct(p.stat().st_mode))


def test_failed_compile_leaves_nothing_and_keeps_the_earlier_project(tmp_path):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(_ckpt().read_bytes()[:100_000])
    _refused(_slmc("compile", bad, "-o", tmp_path / "x" / "y" / "out"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.bin"]  # no parents made for nothing
    out = tmp_path / "out"
    assert _slmc("compile", _ckpt(), "-o", out).returncode == 0
    before = _snapshot(out)
    _refused(_slmc("compile", bad, "-o", out))
    assert _snapshot(out) == before
    _no_leftovers(out, tmp_path)


def test_interrupt_during_the_swap_puts_the_earlier_project_back(tmp_path, monkeypatch):
    out = tmp_path / "out"
    with output_folder(out) as stage:
        (stage / "a.txt").write_text("old a")
        (stage / "sub").mkdir()
        (stage / "sub" / "b.txt").write_text("old b")
    (out / "user.txt").write_text("mine")
    before = _snapshot(out)
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C while the new files are written
        with output_folder(out) as stage:
            (stage / "a.txt").write_text("new a")
            raise KeyboardInterrupt
    assert _snapshot(out) == before
    real, calls, at = os.rename, [], [4]

    def flaky(a, b):  # Ctrl-C in the middle of the swap itself
        calls.append(a)
        if len(calls) == at[0]:
            raise KeyboardInterrupt
        real(a, b)

    monkeypatch.setattr(os, "rename", flaky)
    with pytest.raises(KeyboardInterrupt):
        with output_folder(out) as stage:
            (stage / "a.txt").write_text("new a")
            (stage / "c.txt").write_text("new c")
    empty = tmp_path / "empty"  # the first project into an existing empty folder, interrupted midway
    empty.mkdir()
    calls.clear()
    at[0] = 2  # after x/f.txt moved in
    with pytest.raises(KeyboardInterrupt):
        with output_folder(empty) as stage:
            for d in ("x", "y"):
                (stage / d).mkdir()
                (stage / d / "f.txt").write_text(d)
    monkeypatch.setattr(os, "rename", real)
    assert _snapshot(out) == before and list(empty.iterdir()) == []
    _no_leftovers(out, tmp_path)


def test_a_hostile_marker_names_nothing_outside_its_folder(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    out = tmp_path / "out"
    out.mkdir()
    (out / MARKER).write_text(json.dumps({"files": ["../victim.txt"], "dirs": [], "trees": []}))
    _refused(_slmc("compile", _ckpt(), "-o", out), "damaged")
    assert victim.read_text() == "keep"
    with pytest.raises(SlmcError):
        with output_folder(out):
            pass


def test_report_out_folder_rules(tmp_path):
    proj = tmp_path / "proj"
    assert _slmc("compile", _ckpt(), "-o", proj).returncode == 0
    assert _slmc("report", proj).returncode == 0  # beside the project, listed in its marker
    listed = json.loads((proj / MARKER).read_text())["files"]
    assert {"report.html", "memory_plan.png", "ops.png"} <= set(listed)
    assert _slmc("report", proj, "-o", tmp_path / "r").returncode == 0
    assert (tmp_path / "r" / MARKER).is_file()
    foreign = tmp_path / "foreign"
    before = _user_folder(foreign, False)
    _refused(_slmc("report", proj, "-o", foreign), "not written by slmc")
    f = tmp_path / "f.txt"
    f.write_text("x")
    _refused(_slmc("report", proj, "-o", f), "file")
    assert _snapshot(foreign) == before and f.read_text() == "x"
    assert _slmc("compile", _ckpt(), "-o", proj).returncode == 0  # a re-compile drops the stale report
    assert not (proj / "report.html").exists()


def test_chips_build_has_one_marker_and_recompiles(tmp_path):
    out = tmp_path / "out"
    assert _slmc("compile", _ckpt(), "--chips", "2", "-o", out).returncode == 0
    listed = json.loads((out / MARKER).read_text())["files"]
    assert "manifest.json" in listed and "chip1/report.json" in listed
    (out / "mine.txt").write_text("keep")
    assert _slmc("compile", _ckpt(), "--chips", "2", "-o", out).returncode == 0
    assert (out / "mine.txt").read_text() == "keep"
    _refused(_slmc("compile", _ckpt(), "-o", out / "chip0"), "report.json")


def test_same_input_gives_byte_identical_folders(tmp_path):
    """Host fp32 and a tiled prefill build (whose planner times once reached report.json), twice each."""
    for name, args in (("host", ()), ("tiled", ("-m", "prefill", "--seq", "16", "-t", "siracusa-like"))):
        a, b = tmp_path / f"{name}-a", tmp_path / f"{name}-b"
        for d in (a, b):
            r = _slmc("compile", _ckpt(), *args, "-o", d)
            assert r.returncode == 0, r.stderr
        assert _snapshot(a) == _snapshot(b), name
        assert "seconds" not in (a / "report.json").read_text()
        if name == "tiled":
            assert " s\n" in r.stderr or " s" in r.stderr  # the planner's time stays on the console


def test_concurrent_runs_of_one_unbuilt_folder(tmp_path):
    out = tmp_path / "out"
    assert _slmc("compile", _ckpt(), "-o", out).returncode == 0
    cmd = [*SLMC, "run", str(out), "--steps", "16", "--ids"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    res = [p.communicate(timeout=600) + (p.returncode,) for p in procs]
    for stdout, stderr, code in res:  # unlocked, one of them often failed with "Text file busy"
        assert code == 0, stderr
    assert res[0][0] == res[1][0] == res[2][0] and len(res[0][0].split()) > 0
