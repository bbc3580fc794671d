"""Targets are data (DESIGN.md rule 7): memory levels, ISA features, compiler recipe, emulator and
cycle model. Nothing in the pipeline branches on a target's name; it reads these fields.

The built-in targets live in `builtin.py`; `cycles.py` holds the per-ISA cycle models used for
speed estimates and `fit.py` the check that a compiled model fits a target's memories.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from slmc.errors import SlmcError
from slmc.targets.levels import Level
from slmc.targets.engines import Engines


@dataclass(frozen=True)
class MemoryLevel:
    """One memory the linker places things in. `origin` is the link address on the emulated
    machine (which must have memory there); `size` is what slmc lets the program use, so a
    target with less memory than its emulator still fails to link when it would not fit."""

    name: str                            # "sram" | "flash"
    origin: int
    size: int
    read_bytes_per_s: float | None = None  # sustained rate for data streamed from it (None: core speed)


@dataclass(frozen=True)
class Emulator:
    """How a target's ELF is run and counted. `qemu` is the command without semihosting
    arguments and -kernel; `counter` names the exact instruction counter (toolchain/count.py)."""

    qemu: tuple[str, ...]
    counter: str                         # "unicorn" | "qemu-gdb"
    unicorn_cpu: str = ""                # Unicorn CPU model for the "unicorn" counter and the mix


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    isa: str                             # "host", "armv8m", "rv32"
    features: frozenset[str]             # ISA features kernels may ask for (KernelSpec.isa)
    cc: str                              # C compiler
    cflags: tuple[str, ...]
    ldflags: tuple[str, ...] = ()
    runner: str = "host"                 # "host", "qemu-arm", "qemu-riscv32"
    flash: MemoryLevel | None = None     # None: no limit that slmc checks (the host)
    sram: MemoryLevel | None = None
    clock_hz: int | None = None          # rated clock, for estimated tokens/s (None: cycles only)
    prefill_chunk: int = 16              # tokens per prompt step (0: the prompt goes through decode steps)
    tool_prefix: str = ""                # binutils prefix: nm, objdump, size
    emulator: Emulator | None = None
    cycle_model: str = ""                # key into cycles.MODELS; "" for none
    stack_bytes: int = 0                 # reserved at the top of SRAM (picolibc's __stack_size)
    runtime_sram_bytes: int = 0          # C library state, heap for fopen: counted in the fit check
    code_flash_bytes: int = 0            # code + C library, counted before the real link tells
    # extra compiler flags a kernel file needs for an ISA feature it asks for (kernels compiled
    # one file at a time, so a Zbb kernel does not change how everything else is compiled)
    feature_cflags: tuple[tuple[str, tuple[str, ...]], ...] = ()
    notes: tuple[str, ...] = field(default=())
    levels: tuple[Level, ...] = ()     # memory hierarchy, fastest first (targets/levels.py); () : one level
    engines: Engines | None = None     # compute engines: a core cluster, an NPU (targets/engines.py); None: one core
    cores: int = 0                     # cores the generated program forks over (--cores); 0: the serial build

    @property
    def emulated(self) -> bool:
        return self.emulator is not None

    @property
    def sram_bytes(self) -> int | None:
        return self.sram.size if self.sram else None

    @property
    def flash_bytes(self) -> int | None:
        return self.flash.size if self.flash else None

    def cflags_for(self, isa: str) -> tuple[str, ...]:
        """Extra flags for a kernel whose registry entry asks for ISA feature `isa`."""
        return dict(self.feature_cflags).get(isa, ())


from slmc.targets.builtin import BUILTIN  # noqa: E402  (data needs the classes above)

TARGETS: dict[str, Target] = {t.name: t for t in BUILTIN}
HOST = TARGETS["host"]
import slmc.targets.siracusa  # noqa: E402,F401  (registers siracusa-like)


def get_target(name: str) -> Target:
    if name not in TARGETS:
        raise SlmcError(f"unknown target '{name}'", f"choose one of: {', '.join(sorted(TARGETS))} (see `slmc targets`)")
    return TARGETS[name]
