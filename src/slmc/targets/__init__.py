"""Targets are data (DESIGN.md rule 7): memory, ISA features, compiler and runner."""

from __future__ import annotations

from dataclasses import dataclass

from slmc.errors import SlmcError


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    isa: str                          # "host", "armv8m", "rv32"
    features: frozenset[str]          # ISA features kernels may ask for
    cc: str                           # C compiler
    cflags: tuple[str, ...]
    ldflags: tuple[str, ...] = ()
    runner: str = "host"              # "host", "qemu-arm", "qemu-riscv32"
    sram_bytes: int | None = None     # None: no limit that slmc checks
    flash_bytes: int | None = None
    clock_hz: int | None = None
    prefill_chunk: int = 16           # tokens per prompt step (0: the prompt goes through decode steps)


HOST = Target(
    name="host",
    description="this machine: gcc -O2, one thread",
    isa="host",
    features=frozenset(),
    cc="gcc",
    cflags=("-O2", "-std=c99", "-ffp-contract=off", "-Wall", "-Wno-unused-variable"),
    ldflags=("-lm",),
)

TARGETS: dict[str, Target] = {t.name: t for t in (HOST,)}


def get_target(name: str) -> Target:
    if name not in TARGETS:
        raise SlmcError(f"unknown target '{name}'", f"choose one of: {', '.join(sorted(TARGETS))} (see `slmc targets`)")
    return TARGETS[name]
