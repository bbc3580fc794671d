"""Does a compiled model fit a target's memories? What needs how many bytes where, and the margin.

The numbers are known before any compiler runs: the memory plan gives the arena (activations,
scratch, KV cache), the weights blob its size, main.c's buffers follow from the model's shape, and
the target reserves stack, C-library state and code space. The linker checks the same regions
again when the program is built (the project passes each memory's size to picolibc's linker script).
"""

from __future__ import annotations

from dataclasses import dataclass

from slmc.errors import SlmcError
from slmc.targets import Target


@dataclass(frozen=True)
class Need:
    what: str
    nbytes: int


@dataclass(frozen=True)
class MemoryFit:
    memory: str                 # "sram" | "flash"
    capacity: int
    needs: tuple[Need, ...]

    @property
    def used(self) -> int:
        return sum(n.nbytes for n in self.needs)

    @property
    def margin(self) -> int:
        return self.capacity - self.used

    def as_dict(self) -> dict:
        return dict(capacity=self.capacity, used=self.used, margin=self.margin,
                    needs={n.what: n.nbytes for n in self.needs})

    def describe(self) -> str:
        parts = " + ".join(f"{n.what} {n.nbytes:,}" for n in self.needs if n.nbytes)
        return f"{self.memory.upper()} needs {self.used:,} B ({parts}) of {self.capacity:,} B"


def main_llm_buffers(vocab: int, seq_len: int, prefill_chunk: int) -> int:
    """Bytes of main_llm.c's static arrays: logits rows, probs, sort_idx, prompt (keep in step with it)."""
    return 4 * (max(prefill_chunk, 1) * vocab + vocab + vocab + seq_len)


def main_batch_buffers(vocab: int, seq_len: int, batch: int, rows: int | None = None) -> int:
    """Bytes of main_batch.c's static arrays (keep in step with it): R logits rows (R = rows, the row budget of a
    step; B by default), probs, sort_idx, a pool of 2B requests (the ids of a prompt and a few counters each), B
    slots and the rows of one step."""
    rows = batch if rows is None else rows
    return 4 * (rows * vocab + 2 * vocab) + 2 * batch * (4 * seq_len + 64) + batch * 96 + 16 * rows


def memory_fit(target: Target, arena_bytes: int, kv_cache_bytes: int, weights_bytes: int, main_bytes: int,
               weights_in: str = "flash", sram_weights: int = 0) -> tuple[MemoryFit, ...]:
    """What each of the target's memories must hold; empty for a target without limits (the host).
    `sram_weights`: bytes of the flash weights also copied into SRAM at boot (their image stays in flash)."""
    if target.sram is None or target.flash is None:
        return ()
    sram = [Need("activations and scratch", arena_bytes - kv_cache_bytes), Need("KV cache", kv_cache_bytes),
            Need("main.c buffers", main_bytes), Need("stack", target.stack_bytes),
            Need("C library", target.runtime_sram_bytes)]
    flash = [Need("code (estimate)", target.code_flash_bytes)]
    (sram if weights_in == "sram" else flash).insert(0, Need("weights", weights_bytes))
    if sram_weights:
        sram.insert(0, Need("weights copied to SRAM", sram_weights))
    return (MemoryFit("sram", target.sram.size, tuple(sram)), MemoryFit("flash", target.flash.size, tuple(flash)))


def fits(report: tuple[MemoryFit, ...]) -> bool:
    return all(m.margin >= 0 for m in report)


def check_fit(what: str, target: Target, report: tuple[MemoryFit, ...], fix: str = "", quantized: bool = False) -> None:
    """Raises SlmcError naming every memory that overflows, by how much, and what fills it; the fix offers
    -q q8 only to a float build and a shorter context only where the SRAM overflows."""
    over = [m for m in report if m.margin < 0]
    if not over:
        return
    msg = "; ".join(f"{m.describe()}: {-m.margin:,} B over" for m in over)
    ways = ["a smaller model", *([] if quantized else ["-q q8"]),
            *(["a shorter --context"] if any(m.memory == "sram" for m in over) else [])]
    raise SlmcError(f"{what} does not fit {target.name}: {msg}",
                    fix or f"use {', '.join(ways)}, or a target with more memory")


def positions_that_fit(report: tuple[MemoryFit, ...], seq_len: int, bytes_per_position: int, step: int = 64) -> int:
    """The longest context (a multiple of `step`, at most seq_len) whose KV cache and per-position
    buffers fit the SRAM left over by everything else; 0 when not even `step` positions fit."""
    sram = next((m for m in report if m.memory == "sram"), None)
    if sram is None or sram.margin >= 0:
        return seq_len
    fixed = sram.used - bytes_per_position * seq_len
    n = (sram.capacity - fixed) // bytes_per_position if bytes_per_position else seq_len
    return max(0, min(seq_len, n // step * step))
