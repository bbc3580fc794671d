"""llama2.c's run.c (fp32) and runq.c (Q8_0) as baselines, from a copy the user points to with LLAMA2C_DIR.

The sources are copied into benchmarks/work (never into the repository) and built there. llama2.c needs a
tokenizer.bin with the model's vocabulary size; the dummy one written here maps id i to the piece "i ", so the
generated ids can be read back from run.c's stdout and compared with slmc's.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

# (label, flags): the generated Makefile's optimisation level, llama2.c's own `make run` (-O3), and its fastest
# single-thread build (`make runfast` is -Ofast; -march=native on top is what a user tuning it adds)
FASTEST = "gcc -Ofast -march=native"
BUILDS = (("gcc -O2", ["-O2"]), ("gcc -O3 (llama2.c's `make run`)", ["-O3"]), (FASTEST, ["-Ofast", "-march=native"]))
PROGRAMS = {"fp32": "run", "q8": "runq"}


def source_dir() -> Path | None:
    d = os.environ.get("LLAMA2C_DIR")
    if not d:
        return None
    p = Path(d)
    return p if (p / "run.c").is_file() and (p / "runq.c").is_file() else None


def write_dummy_tokenizer(path: Path, vocab_size: int) -> None:
    """llama2.c's tokenizer.bin: int32 max_token_length, then per token float32 score, int32 length, bytes."""
    pieces = [f"{i} ".encode() for i in range(vocab_size)]
    out = [struct.pack("<i", max(len(p) for p in pieces))]
    for p in pieces:
        out.append(struct.pack("<fi", 0.0, len(p)) + p)
    Path(path).write_bytes(b"".join(out))


@dataclass(frozen=True)
class Binary:
    numerics: str
    build: str
    path: Path
    command: str


def build_all(src: Path, work: Path) -> list[Binary]:
    work.mkdir(parents=True, exist_ok=True)
    for f in ("run.c", "runq.c"):
        shutil.copyfile(src / f, work / f)
    out = []
    for numerics, prog in PROGRAMS.items():
        for label, flags in BUILDS:
            exe = work / f"{prog}{flags[0].replace('-', '_')}"
            cmd = ["gcc", *flags, "-o", str(exe), str(work / f"{prog}.c"), "-lm"]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError(f"building llama2.c's {prog}.c failed: {r.stderr[-400:]}")
            out.append(Binary(numerics, label, exe, f"gcc {' '.join(flags)} -o {prog} {prog}.c -lm"))
    return out


def args(model: Path, tokenizer: Path, steps: int) -> list[str]:
    return [str(model), "-z", str(tokenizer), "-t", "0", "-n", str(steps)]


@dataclass
class Output:
    ids: list[int]
    positions: int
    achieved_tok_s: float | None  # llama2.c's own figure: (pos - 1) / time after the first token, ms clock


def parse(stdout: str, stderr: str, steps: int) -> Output:
    """Read the ids back through the dummy tokenizer's pieces. The loop stops after `steps` positions or at
    the position whose prediction is BOS (not printed), so positions = printed ids (+1 if it stopped early)."""
    ids = [int(t) for t in stdout.split()]
    m = re.search(r"achieved tok/s:\s*([0-9.]+)", stderr)
    return Output(ids, len(ids) if len(ids) >= steps else len(ids) + 1, float(m.group(1)) if m else None)
