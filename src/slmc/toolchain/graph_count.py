"""Exact instructions of one inference of a compiled graph (not a language model) on its emulated target.

The graph's main.c calls slmc_run_packed once per inference; toolchain/count.py treats that call as a step,
so the counters, the operator attribution and the cycle estimate are the language models' own
(toolchain/profile.py's count_run): Unicorn on the Cortex-M33, QEMU -icount through gdb on RV32.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from slmc.errors import SlmcError
from slmc.targets import get_target
from slmc.toolchain.graph_run import pack_inputs


@dataclass(frozen=True)
class KernelCount:
    kernel: str                     # the C file
    calls: int                      # operators bound to it
    instructions: int
    macs: int


@dataclass(frozen=True)
class GraphCount:
    target: str
    counter: str                    # "unicorn" | "qemu-gdb"
    instructions: int               # one inference: slmc_run_packed from entry to return
    macs: int                       # report.json's MACs of one inference
    kernels: tuple[KernelCount, ...]  # most instructions first
    estimated_cycles: float | None  # the target's cycle model over the instruction mix, where it has one
    # toolchain/profile.py's profile of the run: "ops" per operator (name, op, kernel, macs, instructions, share,
    # estimated_cycles), the prologue, the counter; one inference is its one "decode step"
    profile: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def instructions_per_mac(self) -> float | None:
        return self.instructions / self.macs if self.macs else None


def count_graph(project: Path, feeds: dict[str, np.ndarray]) -> GraphCount:
    from slmc.toolchain.profile import count_run

    project = Path(project)
    rep = json.loads((project / "report.json").read_text())
    if "graph_io" not in rep:
        raise SlmcError(f"{project} holds a language model, not a graph", "count it with `slmc run --profile`")
    target = get_target(rep["target"])
    packed = pack_inputs(rep["graph_io"], feeds)
    with tempfile.TemporaryDirectory(prefix="slmc-count-") as tmp:
        src, dst = Path(tmp) / "inputs.bin", Path(tmp) / "outputs.bin"
        src.write_bytes(packed)
        _, prof = count_run(project, target, rep, [str(src.resolve()), str(dst.resolve())], lambda _t: None)
    if prof["decode_steps"] != 1:
        raise SlmcError(f"counted {prof['decode_steps']} calls of slmc_run_packed, expected one", "this is a bug in slmc")
    by: dict[str, list[int]] = {}
    for o in prof["ops"]:
        row = by.setdefault(o["kernel"], [0, 0, 0])
        row[0] += 1
        row[1] += int(o["instructions_total"])
        row[2] += int(o["macs"])
    kernels = tuple(KernelCount(k, c, i, m) for k, (c, i, m) in sorted(by.items(), key=lambda kv: (-kv[1][1], kv[0])))
    return GraphCount(target.name, prof["counter"], int(prof["instructions_total"]),
                      int(sum(o["macs"] for o in rep["ops"])), kernels, prof.get("estimated_cycles_per_token"), prof)
