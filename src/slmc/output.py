"""Every folder and file slmc writes at a path the user gave goes through here (README, "Safety").

A folder is written only when it is new, empty, or holds slmc's marker `.slmc-output.json`, which lists
every path slmc put there (the project, `slmc report`'s pictures, profile.json, and what `make` built:
`trees`). Only those paths are ever replaced or removed: a user's own files beside them survive a
re-compile, and a name the new project needs that a user's file holds is refused rather than
overwritten. A folder with report.json but no marker (an older slmc's, or anyone's) and any other
non-empty folder are refused with one line. A project is built in a staging folder and swapped in, so a
failure or Ctrl-C leaves the earlier contents as they were. Single files (--save, --dump-logits, --plot)
are written beside their path and renamed over it. New folders and files get the permissions the umask
allows (mkdtemp/mkstemp would make them private).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import stat
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterator

from slmc.errors import SlmcError

MARKER = ".slmc-output.json"
_NOTE = "written by slmc: it replaces or removes only the paths listed here; anything else in this folder is yours"


@dataclass(frozen=True)
class Marker:
    files: tuple[str, ...] = ()   # relative paths of the files slmc wrote
    dirs: tuple[str, ...] = ()    # folders it made for them (removed again once empty)
    trees: tuple[str, ...] = ()   # folders whose whole content is slmc's (the build folders `make` fills)

    def plus(self, files: tuple[str, ...] = (), trees: tuple[str, ...] = ()) -> "Marker":
        return Marker(tuple(sorted({*self.files, *files})), self.dirs, tuple(sorted({*self.trees, *trees})))

    def text(self) -> str:  # sorted and timestamp-free: the same project gives the same bytes
        return json.dumps(dict(note=_NOTE, files=list(self.files), dirs=list(self.dirs), trees=list(self.trees)),
                          indent=1) + "\n"


def _umask() -> int:
    try:  # /proc avoids os.umask's set-and-restore, which races with threads
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    m = os.umask(0o022)
    os.umask(m)
    return m


def _rel(s: object, folder: Path) -> str:
    """A marker entry, checked: a damaged or hostile marker must not name anything outside its folder."""
    p = PurePosixPath(s) if isinstance(s, str) and s and "\0" not in s else None
    if p is None or p.is_absolute() or any(part in ("..", ".", "") for part in p.parts) or str(p) != s:
        raise SlmcError(f"'{folder / MARKER}' is damaged (entry {str(s)[:60]!r})",
                        "remove that folder, or give another output path")
    return s  # type: ignore[return-value]


def _plain(s: str) -> bool:
    try:
        return bool(_rel(s, Path(".")))
    except SlmcError:
        return False


def read_marker(folder: Path) -> Marker | None:
    p = Path(folder) / MARKER
    try:
        st = os.lstat(p)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode) or st.st_size > 16 << 20:
        raise SlmcError(f"'{p}' is not slmc's marker file", "remove that folder, or give another output path")
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
        lists = [d[k] for k in ("files", "dirs", "trees")] if isinstance(d, dict) else None
    except (OSError, ValueError, KeyError, RecursionError):
        lists = None
    if lists is None or not all(isinstance(x, list) for x in lists):
        raise SlmcError(f"'{p}' is damaged", "remove that folder, or give another output path")
    return Marker(*(tuple(_rel(s, Path(folder)) for s in x) for x in lists))


def _write_marker(folder: Path, m: Marker) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".slmc-tmp.", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(m.text())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, folder / MARKER)  # whole or not at all: a reader never sees half a marker
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_held: dict[str, list] = {}  # realpath -> [fd, depth]: re-entrant within one process


@contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive flock on the folder itself (no lock file to leave behind): two `slmc run` of one
    project, or a run and a re-compile, take turns."""
    key = os.path.realpath(folder)
    if key in _held:
        _held[key][1] += 1
    else:
        fd = -1
        try:
            fd = os.open(key, os.O_RDONLY | os.O_DIRECTORY)
            fcntl.flock(fd, fcntl.LOCK_EX)  # closing the fd releases it
        except OSError:
            pass  # an unreadable folder, or a file system without locks: go on unlocked, as slmc did before
        _held[key] = [fd, 1]
    try:
        yield
    finally:
        _held[key][1] -= 1
        if _held[key][1] == 0:
            held_fd = _held.pop(key)[0]
            if held_fd >= 0:
                os.close(held_fd)


def _linked(folder: Path, rel: str) -> bool:
    """Whether a folder on the way from `folder` to `rel` is a symbolic link (or not a folder): slmc never
    writes or deletes through one."""
    q = folder
    for part in PurePosixPath(rel).parts[:-1]:
        q = q / part
        if q.is_symlink() or (q.exists() and not q.is_dir()):
            return True
    return False


def check_folder(out: Path, what: str = "-o", ignore: str = "") -> tuple[Path, Marker | None]:
    """The folder to write for `what` (a link to an slmc folder is written through) and its marker, or a
    one-line SlmcError saying why slmc will not write there."""
    out = Path(out)
    if out.is_symlink():
        to = out.resolve()
        if not (to.is_dir() and (to / MARKER).is_file()):
            kind = "a dangling symbolic link" if not to.exists() else "a symbolic link to something slmc did not write"
            raise SlmcError(f"{what} '{out}' is {kind}", "give a folder path (slmc writes through a link only to its own folder)")
    dest = out.resolve()
    if dest.exists():
        if not dest.is_dir():
            raise SlmcError(f"{what} '{out}' is a file, not a folder", f"give a folder path for {what}")
        marker = read_marker(dest)
        if marker is not None:
            return dest, marker
        try:
            names = {n for n in os.listdir(dest) if n != ignore}
        except OSError as e:
            raise SlmcError(f"cannot read the output folder '{out}' ({e.strerror})", f"choose another {what}") from None
        mine = sorted(names & {"report.json", "manifest.json"})
        if mine:
            raise SlmcError(f"'{out}' holds {mine[0]} but no {MARKER}, so slmc cannot tell its files from yours",
                            f"remove that folder yourself, or choose another {what}")
        if names:
            raise SlmcError(f"output folder '{out}' exists and was not written by slmc",
                            f"choose another {what} (a new or empty folder), or remove it")
        return dest, None
    up = dest.parent
    while not up.exists():
        up = up.parent
    if not up.is_dir():
        raise SlmcError(f"{what} '{out}' cannot be created: '{up}' is a file", f"choose another {what}")
    return dest, None


def _scan(stage: Path) -> Marker:
    files, dirs = [], []
    for root, ds, fs in os.walk(stage):
        r = PurePosixPath(Path(root).relative_to(stage).as_posix())
        dirs += [str(r / d) for d in ds]
        files += [str(r / f) for f in fs if not (str(r) == "." and f == MARKER)]
    return Marker(tuple(sorted(files)), tuple(sorted(dirs)))


@contextmanager
def output_folder(out: Path, what: str = "-o") -> Iterator[Path]:
    """Yields an empty staging folder to fill; when the block ends normally its files replace slmc's files
    in `out` (a new folder is renamed into place whole); on any exception nothing in `out` changes."""
    dest, _ = check_folder(out, what)
    made: list[Path] = []  # parent folders made for a new `out`: removed again if the compile fails
    try:
        if not dest.exists():
            up = dest.parent
            while not up.exists():
                made.insert(0, up)
                up = up.parent
            for d in made:
                d.mkdir()
        stage = Path(tempfile.mkdtemp(prefix=".slmc-new." if dest.exists() else f".{dest.name}.",
                                      dir=dest if dest.exists() else dest.parent))
    except OSError as e:
        _remove_empty(made)
        raise SlmcError(f"cannot write {what} '{out}' ({e.strerror})", f"choose another {what}") from None
    try:
        yield stage
        new = _scan(stage)
        _write_marker(stage, new)
        _commit(stage, dest, new, out, what)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        _remove_empty(made)
        raise


def _remove_empty(dirs: list[Path]) -> None:
    for d in reversed(dirs):
        try:
            d.rmdir()
        except OSError:
            break


def _commit(stage: Path, dest: Path, new: Marker, out: Path, what: str) -> None:
    if not dest.exists():
        try:
            os.rename(stage, dest)
            os.chmod(dest, 0o777 & ~_umask())
            return
        except OSError as e:
            if not dest.is_dir():
                raise SlmcError(f"cannot create {what} '{out}' ({e.strerror})", f"choose another {what}") from None
    with folder_lock(dest):  # another slmc may have made `dest` meanwhile: the rules for an existing folder
        _, old = check_folder(dest, what, ignore=stage.name)
        old = old or Marker()
        owned = set(old.files)
        for rel in (*new.files, MARKER):
            p = dest / rel
            if _linked(dest, rel) or (os.path.lexists(p) and rel not in owned and rel != MARKER
                                      and not any(rel.startswith(t + "/") for t in old.trees)):
                raise SlmcError(f"'{out}/{rel}' is not one of slmc's files (it is not in {MARKER}) and the new "
                                "project writes that name", f"move it out of the folder, or choose another {what}")
        trash = Path(tempfile.mkdtemp(prefix=".slmc-old.", dir=dest))
        moved: list[str] = []
        placed: list[str] = []
        made: list[Path] = []
        try:
            for rel in (*old.trees, *old.files):  # the earlier project's paths, kept until the new one is in
                if _kind_ok(dest / rel, rel in old.trees) and not _linked(dest, rel):
                    (trash / rel).parent.mkdir(parents=True, exist_ok=True)
                    os.rename(dest / rel, trash / rel)
                    moved.append(rel)
            for rel in (*new.files, MARKER):  # the marker last: until it moves, the old one still holds
                for up in reversed((dest / rel).relative_to(dest).parents[:-1]):
                    if not (dest / up).is_dir():
                        (dest / up).mkdir()
                        made.append(dest / up)
                os.rename(stage / rel, dest / rel)
                placed.append(rel)
        except BaseException:  # put the earlier project back as it was
            for a, b in [(dest / r, stage / r) for r in reversed(placed)] + [(trash / r, dest / r) for r in reversed(moved)]:
                try:
                    os.rename(a, b)
                except OSError:
                    pass
            _remove_empty(made)
            shutil.rmtree(trash, ignore_errors=True)
            raise
        shutil.rmtree(trash, ignore_errors=True)
        for d in sorted(set(old.dirs) - set(new.dirs), key=lambda s: -s.count("/")):  # the old project's folders, if empty now
            if not _linked(dest, d + "/x") and (dest / d).is_dir():
                try:
                    (dest / d).rmdir()
                except OSError:
                    pass  # something of the user's is in it
        shutil.rmtree(stage, ignore_errors=True)


def _kind_ok(p: Path, tree: bool) -> bool:
    """A listed file is moved only while it is still a file (or link), a tree only while it is a folder:
    a folder of the user's that took a listed file's name is not slmc's."""
    try:
        mode = os.lstat(p).st_mode
    except OSError:
        return False
    return stat.S_ISDIR(mode) if tree else not stat.S_ISDIR(mode)


def add_files(folder: Path, files: dict[str, bytes], what: str = "-o") -> list[Path]:
    """Write `files` (relative name -> bytes) into `folder`: a new or empty folder becomes an slmc folder;
    in an slmc folder they are added beside what is there (a same-named file of slmc's is replaced)."""
    dest, marker = check_folder(folder, what)
    if marker is None:
        with output_folder(folder, what) as stage:
            for name, data in files.items():
                (stage / _rel(name, dest)).write_bytes(data)
        return [dest / n for n in files]
    with folder_lock(dest):
        marker = read_marker(dest) or Marker()
        for name in files:
            rel = _rel(name, dest)
            if _linked(dest, rel) or (os.path.lexists(dest / rel) and (rel not in marker.files or not (dest / rel).is_file())):
                raise SlmcError(f"'{Path(folder) / rel}' is not one of slmc's files (it is not in {MARKER})",
                                f"move it out of the folder, or choose another {what}")
        for name, data in files.items():
            with output_file(dest / name, what) as tmp:
                tmp.write_bytes(data)
        _write_marker(dest, marker.plus(tuple(files)))
    return [dest / n for n in files]


def register(folder: Path, files: tuple[str, ...] = (), trees: tuple[str, ...] = ()) -> None:
    """Record paths something else wrote into an slmc folder (`make`'s build folder and program), so that a
    re-compile removes them. The marker may sit one level up (a chip of a partitioned build)."""
    folder = Path(folder).resolve()
    files, trees = tuple(f for f in files if _plain(f)), tuple(t for t in trees if _plain(t))
    for top, pre in ((folder, ""), (folder.parent, folder.name + "/")):
        if (top / MARKER).is_file():
            try:
                with folder_lock(top):
                    m = read_marker(top)
                    if m is not None:
                        _write_marker(top, m.plus(tuple(pre + f for f in files), tuple(pre + t for t in trees)))
            except (OSError, SlmcError):
                pass  # a read-only or damaged folder: the build outputs just stay unlisted
            return


def check_file(path: Path, what: str) -> None:
    """Refuse a file path slmc must not write: a folder, a link, a device or FIFO, a read-only file, a
    path whose folder is missing or not writable. Called early, before the work that produces the file."""
    p = Path(path)
    kind = ("a symbolic link" if p.is_symlink() else "a folder" if p.is_dir()
            else "not a regular file" if p.exists() and not p.is_file()
            else "read-only" if p.exists() and not os.access(p, os.W_OK) else None)
    if kind:
        raise SlmcError(f"{what} '{p}' is {kind}", f"give a path for a new file (or a file of yours to replace) to {what}")
    if not p.parent.is_dir():
        raise SlmcError(f"{what} '{p}': the folder '{p.parent}' does not exist", f"create it, or give another {what} path")
    if not os.access(p.parent, os.W_OK | os.X_OK):
        raise SlmcError(f"{what} '{p}': the folder '{p.parent}' is not writable", f"give another {what} path")


@contextmanager
def output_file(path: Path, what: str) -> Iterator[Path]:
    """Yields a temporary path beside `path` (same suffix) to write; renamed over `path` when the block ends
    normally, removed otherwise (check_file's refusals first)."""
    p = Path(path)
    check_file(p, what)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{p.name[:80]}.", suffix=p.suffix[:16], dir=p.parent)
    except OSError as e:
        raise SlmcError(f"cannot write {what} '{p}' ({e.strerror})", f"give a writable {what} path") from None
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
