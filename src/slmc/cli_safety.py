"""The CLI's safety net and the checks of what users pass it (cli.py, cli_systems.py): every failure
ends in one line on stderr with a distinct exit code, and inputs are checked before they are opened."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

from slmc.errors import SlmcError


class SafeTyper(typer.Typer):
    """The `slmc` command behind its safety net, for `slmc` (pyproject's entry point calls app()) and
    `python -m slmc.cli` alike. Exit codes: 0 done; 2 a one-line error (bad input or options, usage
    errors included); 3 an internal error, also one line (SLMC_DEBUG=1 re-raises it with its traceback),
    so that a fuzzer tells unhandled cases from refused ones; 130 interrupted."""

    def __call__(self, *args, **kwargs):
        try:
            code = super().__call__(*args, **{**kwargs, "standalone_mode": False})
        except typer.TyperException as e:  # click's (vendored in typer) usage errors
            if type(e).__name__ == "NoArgsIsHelpError":  # bare `slmc`: the help, as before
                e.show()  # type: ignore[attr-defined]
                sys.exit(2)
            where = f" (see `{e.ctx.command_path} --help`)" if getattr(e, "ctx", None) else ""
            line(f"error: {e.format_message()}{where}")
            sys.exit(2)
        except typer.Abort:
            line("error: aborted")
            sys.exit(130)
        except KeyboardInterrupt:
            line("error: interrupted")
            sys.exit(130)
        except SlmcError as e:  # raised outside a command's own handler
            line(f"error: {e}")
            sys.exit(2)
        except Exception as e:  # MemoryError and RecursionError are Exceptions too
            if os.environ.get("SLMC_DEBUG", "") not in ("", "0"):
                raise
            line(f"error: internal error ({type(e).__name__}: {str(e)[:300]}) — please report it; "
                  "SLMC_DEBUG=1 shows the traceback")
            sys.exit(3)
        if code == 130:  # typer turns Ctrl-C inside a command into exit code 130, silently
            line("error: interrupted")
        sys.exit(code if isinstance(code, int) else 0)


def line(text: str) -> None:
    """One line on stderr, without rich markup (messages quote user input, which may hold brackets)."""
    try:
        sys.stderr.write(" ".join(text.split()) + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def input_path(p: Optional[Path], what: str, folder_ok: bool = False) -> None:
    """An input must be a regular file (or folder where one is taken): a FIFO or device would block."""
    if p is None:
        return
    if not p.exists():
        raise SlmcError(f"{what} '{p}' does not exist", "check the path")
    if not (p.is_file() or (folder_ok and p.is_dir())):
        kind = "a folder" if p.is_dir() else "not a regular file"
        raise SlmcError(f"{what} '{p}' is {kind}", f"give a {'file or folder' if folder_ok else 'file'} for {what}")


def read_json(path: Path, project: Path) -> dict:
    """report.json or manifest.json of an output folder, checked before anything reads a key of it."""
    if not path.is_file():
        raise SlmcError(f"{project} is not an slmc output folder (no report.json)", "run `slmc compile MODEL -o DIR` first")
    try:
        rep = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        rep = None
    def positive(v: object) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v > 0

    cfg = rep.get("config", {}) if isinstance(rep, dict) else None
    if (not isinstance(rep, dict) or not isinstance(rep.get("target"), str) or not isinstance(cfg, dict)
            or ("config" in rep and not all(positive(cfg.get(k)) for k in ("vocab_size", "seq_len")))
            or not isinstance(rep.get("tokenizer", ""), (str, type(None)))):
        raise SlmcError(f"{path} is not a report slmc wrote", "compile again with `slmc compile MODEL -o DIR`")
    return rep


def check_sampling(steps: int, temperature: float, top_p: float, seed: int) -> None:
    """The run-time options main_llm.c takes: -s is parsed with strtoull, so 0..2^64-1."""
    if steps <= 0:
        raise SlmcError(f"--steps {steps} must be positive", "e.g. --steps 256")
    if not (math.isfinite(temperature) and temperature >= 0):
        raise SlmcError(f"--temperature {temperature} must be a finite number >= 0", "0 is greedy; e.g. --temperature 0.8")
    if not (math.isfinite(top_p) and 0 < top_p <= 1):
        raise SlmcError(f"--top-p {top_p} must be in (0, 1]", "e.g. --top-p 0.9 (1 samples from every token)")
    if not 0 <= seed < 2 ** 64:
        raise SlmcError(f"--seed {seed} is outside 0..{2 ** 64 - 1}", "e.g. --seed 42")


def read_npz(inputs: Path, io: dict) -> dict:
    """--inputs: an .npz (numpy.savez) whose arrays fit the graph; checked before anything is unpacked."""
    import zipfile
    import zlib

    import numpy as np

    input_path(inputs, "--inputs")
    fix = "give an .npz written by numpy.savez(path, input_0=..., input_1=...)"
    if not zipfile.is_zipfile(inputs):
        with open(inputs, "rb") as f:
            kind = "an .npy file (one array)" if f.read(6) == b"\x93NUMPY" else "not an .npz (zip) file"
        raise SlmcError(f"--inputs '{inputs}' is {kind}", fix)
    cap = max(64 << 20, 16 * int(io.get("inputs_bytes", 0)))  # a zip bomb or a huge array stops here
    try:
        with zipfile.ZipFile(inputs) as z:
            total = sum(i.file_size for i in z.infolist())
        if total > cap:
            raise SlmcError(f"--inputs '{inputs}' unpacks to {total:,} B; the graph takes {io.get('inputs_bytes', 0):,} B",
                            "give arrays of the graph's input shapes")
        with np.load(inputs, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error, NotImplementedError) as e:
        raise SlmcError(f"cannot read --inputs '{inputs}': {type(e).__name__}: {str(e)[:200]}", fix) from None


err = Console(stderr=True)
NUMERICS = ("fp32", "q8", "int8")


def _fail(e: SlmcError) -> None:
    err.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _progress():
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err,
                    transient=True, disable=not err.is_terminal)
