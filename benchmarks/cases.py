"""The models benchmarked, their files in benchmarks/work, and how to run slmc's program for them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import llama2c_baseline as l2c

from slmc.frontend import llama2c
from slmc.frontend.decoder import DecoderModel
from slmc.frontend.random_model import SHAPES, random_decoder

STEPS = 256
NATIVE = "host-native"  # the fast host target: the build machine's vector ISA, not bit-exact


@dataclass
class Case:
    """One model: its llama2.c files (v0 fp32, v2 Q8_0), the dummy tokenizer llama2.c needs, expected ids."""

    key: str
    title: str
    model: DecoderModel
    v0: Path
    v2: Path
    tokenizer: Path
    source: str
    group: int                                   # the v2 file's group size
    numerics: tuple[str, ...] = ("fp32", "q8")
    profile_steps: int = STEPS                   # positions counted under callgrind (about 50x slower)
    reference_ids: list[int] | None = None
    projects: dict[str, Path] = field(default_factory=dict)   # numerics -> slmc project
    binaries: dict[str, Path] = field(default_factory=dict)   # numerics -> built slmc program
    build_flags: str = ""                                     # the generated Makefile's CFLAGS, abridged
    native: dict[str, Path] = field(default_factory=dict)     # numerics -> slmc program built for NATIVE
    native_flags: str = ""

    def checkpoint(self, numerics: str) -> Path:
        return self.v0 if numerics == "fp32" else self.v2


def prepare(work: Path, stories260k: Path, notes: list[str]) -> list[Case]:
    cases = []
    if (stories260k / "stories260K.bin").is_file():
        d = work / "stories260K"
        d.mkdir(parents=True, exist_ok=True)
        v0 = stories260k / "stories260K.bin"
        m = llama2c.load(v0)
        tok = d / "dummy_tokenizer.bin"
        l2c.write_dummy_tokenizer(tok, m.config.vocab_size)
        ref = stories260k / "greedy_ids_from_bos.txt"
        ids = [int(x) for x in ref.read_text().split()] if ref.is_file() else None
        g = llama2c.v2_group(m.config.dim)
        llama2c.save_v2(m, d / "model_q8.bin", g)
        cases.append(Case("stories260K", "stories260K (trained, llama2.c)", m, v0, d / "model_q8.bin", tok,
                          f"{v0} (real TinyStories weights)", g, reference_ids=ids))
        # export.py's group (64) does not divide hidden_dim 172, and runq.c then skips 44 of w2's inputs;
        # a group that divides both lets runq.c compute the same thing as slmc
        g4 = llama2c.v2_group(m.config.hidden_dim, g)
        llama2c.save_v2(m, d / f"model_q8_g{g4}.bin", g4)
        cases.append(Case(f"stories260K-g{g4}", f"stories260K, Q8_0 file with group {g4} (divides hidden_dim too, "
                          "so runq.c reads every input)", m, v0, d / f"model_q8_g{g4}.bin", tok,
                          f"{v0}, save_v2(group={g4})", g4, numerics=("q8",)))
    else:
        notes.append(f"stories260K skipped: {stories260k / 'stories260K.bin'} is absent (set SLMC_SHARED).")
    d = work / "stories15M"
    d.mkdir(parents=True, exist_ok=True)
    m = random_decoder(SHAPES["stories15M"], seed=0)
    g = llama2c.v2_group(m.config.dim)
    llama2c.save_v0(m, d / "model.bin")
    llama2c.save_v2(m, d / "model_q8.bin", g)
    l2c.write_dummy_tokenizer(d / "dummy_tokenizer.bin", m.config.vocab_size)
    cases.append(Case("stories15M", "stories15M-shaped, random weights (seed 0)", m, d / "model.bin",
                      d / "model_q8.bin", d / "dummy_tokenizer.bin",
                      "random_decoder(SHAPES['stories15M'], seed=0), written with save_v0 / save_v2", g,
                      profile_steps=64))
    return cases


def makefile_flags(project: Path) -> str:
    """CFLAGS of a generated Makefile without warnings, defines and include paths."""
    for line in (project / "Makefile").read_text().splitlines():
        if line.startswith("CFLAGS"):
            flags = line.split("=", 1)[1].split()
            return " ".join(f for f in flags if not f.startswith(("-W", "-D", "-I")))
    return "?"


def slmc_cmd(c: Case, numerics: str, extra: list[str] | None = None, steps: int = STEPS, native: bool = False) -> list[str]:
    return [str((c.native if native else c.binaries)[numerics]), "-n", str(steps), "-t", "0", *(extra or [])]


def parse_slmc(stdout: str) -> tuple[list[int], int, float]:
    """(generated ids, positions, seconds) from the program's T and S lines."""
    ids, st = [], {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "T":
            ids.append(int(parts[1]))
        elif len(parts) == 3 and parts[0] == "S":
            st[parts[1]] = float(parts[2])
    return ids, int(st["positions"]), st["seconds"]

