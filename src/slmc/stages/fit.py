"""Stage 4: fit the target's memories. Candidate configurations are built and planned in order until one
fits: the one asked for; an fp16 KV cache (half the bytes, chosen before any position is cut, and it
keeps more positions if some must go); for a --batch build without --batch-rows, where the logits and
activations of fewer rows per step make up what the SRAM lacks, that many fewer rows (every slot and position
kept); then fewer positions, 64 at a time from the estimate of how many fit. Then the levels and tiles of a multi-level build, the fit check, and the weights copied to SRAM.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Iterator

from slmc.config import CompileConfig
from slmc.frontend.decoder import DecoderModel
from slmc.ir import Graph
from slmc.stages.load import Source, with_context
from slmc.stages.program import Planned, Progress, bind_and_plan, build_programs, memory_needs
from slmc.targets.fit import check_fit, fits, positions_that_fit

SRAM_RESERVE = 2048  # bytes of SRAM left free when weights fill the rest
POSITION_STEP = 64   # the context is cut in steps of this many positions (as positions_that_fit rounds)


@dataclass(frozen=True)
class Attempt:
    model: DecoderModel | Graph
    config: CompileConfig
    programs: list[Planned]

    @property
    def fits(self) -> bool:
        return all(fits(p.memory) for p in self.programs)


@dataclass(frozen=True)
class Fitted:
    model: DecoderModel | Graph     # with the positions kept
    config: CompileConfig           # with the KV cache storage chosen
    programs: list[Planned]
    fix: str                        # what the fit error suggests, when nothing fits
    notes: tuple[str, ...]          # why the KV cache or the context differ from the model's


def fit(source: Source, config: CompileConfig, progress: Progress) -> Fitted:
    """The first candidate whose programs fit the target; when none does, what the model with all its
    positions needs, for the error check_fits() raises once the levels are placed."""
    tried: list[Attempt] = []
    for model, cand in _candidates(source, config, tried):
        tried.append(Attempt(model, cand, [bind_and_plan(b, cand, progress) for b in build_programs(model, cand, progress)]))
        if tried[-1].fits:
            break
    uncut = [a for a in tried if a.model is source.model][-1]  # the last try with all the model's positions
    if not tried[-1].fits:
        # the error reports what the uncut model needs; a multi-level build still places the last try first
        n = _positions(uncut) if source.decoder is not None and config.context is not None else 0
        fix = f"--context {n} would fit (or choose a target with more memory)" if n > 0 else ""
        programs = [replace(p, memory=u.memory) for p, u in zip(tried[-1].programs, uncut.programs)]
        return Fitted(source.model, uncut.config, programs, fix, ())
    return Fitted(tried[-1].model, tried[-1].config, tried[-1].programs, "", _notes(source, tried))


def _candidates(source: Source, config: CompileConfig, tried: list[Attempt]) -> Iterator[tuple[DecoderModel | Graph, CompileConfig]]:
    """Each candidate after the first is asked for only when the ones before did not fit; the positions
    to try follow from the bytes the last full-context try needed (`tried`)."""
    yield source.model, config
    model = source.decoder
    if model is None:
        return
    if config.kv_cache is None and config.numerics != "int8":
        yield model, replace(config, kv_cache="fp16")
    if config.batch > 1 and not config.batch_rows_asked:  # the row budget shrinks before any position goes
        rows = _rows(tried[-1])
        if rows < tried[-1].config.batch_rows:
            yield model, replace(tried[-1].config, batch_rows=rows)
    if config.context is not None:  # the user chose the positions: the error names how many would fit
        return
    last = tried[-1]
    for n in range(_positions(last), 0, -POSITION_STEP):
        yield with_context(model, n), last.config


def _positions(attempt: Attempt) -> int:
    """How many positions the KV cache could keep, estimated from one try's needs."""
    p = attempt.programs[0]
    per_position = p.plan.kv_cache_bytes // p.llm.seq_len + 4 * 2  # + main.c's prompt slot and a score
    return positions_that_fit(p.memory, p.llm.seq_len, per_position)


def _rows(attempt: Attempt) -> int:
    """The most rows per step whose activations and logits fit the SRAM the rest leaves, estimated from one try's
    needs (both grow with the rows). Where even one row leaves the SRAM short, one row if the rows make up at least
    half of the shortfall (the positions cut after it then cost fewer positions), else all of them (the KV cache
    is what does not fit, and fewer rows would cost speed for little)."""
    p = attempt.programs[0]
    sram = next((m for m in p.memory if m.memory == "sram"), None)
    rows = attempt.config.batch_rows
    if sram is None or sram.margin >= 0:
        return rows
    per_row = (p.plan.activation_arena_bytes + 4 * p.llm.vocab_size * rows) / rows
    fewer = rows - math.ceil(-sram.margin / per_row)
    return fewer if fewer >= 1 else 1 if per_row * (rows - 1) >= -sram.margin / 2 else rows


def _notes(source: Source, tried: list[Attempt]) -> tuple[str, ...]:
    if source.decoder is None:
        return ()
    notes, last = [], tried[-1]
    target, seq_len = last.config.target.name, last.model.config.seq_len
    fp16 = next((a for a in tried if a.config.kv_cache != tried[0].config.kv_cache), None)
    if fp16 is not None:
        fp32 = tried[0].programs[0].plan.kv_cache_bytes
        notes.append(f"the KV cache is stored as fp16 ({fp16.programs[0].plan.kv_cache_bytes:,} B instead of {fp32:,} B "
                     "in fp32) so that " + (f"the full {source.seq_len}-position context fits" if seq_len == source.seq_len
                                            else "more positions fit")
                     + f" {target}'s SRAM (--kv-cache fp32 keeps fp32 and cuts the context instead)")
    if last.config.batch_rows != tried[0].config.batch_rows:
        r = last.config.batch_rows
        notes.append(f"a step runs at most {r} row{'s' if r > 1 else ''} for the {last.config.batch} slots' sequences "
                     f"(the logits and activations of {tried[0].config.batch_rows} rows do not fit {target}'s SRAM; "
                     "--batch-rows sets it)")
    if seq_len != source.seq_len:
        context = tried[0].config.context
        why = f"(--context {context})" if context is not None else f"so that it fits {target}'s SRAM (--context sets it)"
        notes.append(f"the KV cache holds {seq_len} of the model's {source.seq_len} positions {why}")
    return tuple(notes)


def place(p: Planned, config: CompileConfig, progress: Progress) -> Planned:
    """A build with memory levels (--mem, -m prefill): each buffer placed in a level, operators tiled."""
    if not config.placed:
        return p
    from slmc.codegen.tiled import place_and_tile

    progress("placing across memory levels and tiling")
    lp, tiled, levels = place_and_tile(p.graphs, p.binding, p.plan, p.weights.nbytes, config.target, config.mode, p.memory)
    return replace(p, binding=tiled.binding, tiled_decls=tuple(tiled.decls), levels=levels,
                   planner_seconds={u.level.name: round(u.seconds, 4) for u in lp.uses})


def check_fits(fitted: Fitted, programs: list[Planned]) -> None:
    c = fitted.config
    for p in programs:
        check_fit(f"{c.model_path.name} ({c.numerics})", c.target, p.memory, fitted.fix, c.numerics != "fp32")


def weights_to_sram(p: Planned, config: CompileConfig) -> Planned:
    """Where weights stream from flash every token, copy as many as the SRAM left over holds into it at
    boot. Not with memory levels (--mem, -m prefill): the level plan keeps the weights in the slowest."""
    target = config.target
    sram = next((m for m in p.memory if m.memory == "sram"), None)
    if (not config.weights_to_sram or p.llm is None or config.placed or sram is None or target.flash is None
            or not target.flash.read_bytes_per_s):
        return p
    from slmc.codegen.pico import HAL_LOG_BYTES, PLATFORMS
    from slmc.codegen.weights import layout_weights, weights_for_sram

    reserve = SRAM_RESERVE + (HAL_LOG_BYTES if config.dvfs else 0)
    staging = None
    if config.weight_staging and target.name in PLATFORMS and not p.llm.batch:  # DMA one product ahead (codegen/stage_plan.py)
        from slmc.codegen.stage_plan import plan_sram, restage

        chosen, staging = plan_sram(p.weights, p.graphs, sram.margin - reserve)
    else:
        chosen = weights_for_sram(p.weights, p.graphs, sram.margin - reserve)
    if not chosen and staging is None:
        return p
    weights = layout_weights(p.graphs, chosen)
    if staging is not None:
        staging = restage(weights, p.graphs, frozenset(sp.node for sp in staging.products))
    return replace(p, weights=weights, memory=_with_staging(memory_needs(target, p.plan, weights, p.llm), staging),
                   staging=staging)


def _with_staging(memory, staging):
    """The fit with the two staging buffers as a need of the SRAM."""
    if staging is None:
        return memory
    from slmc.targets.fit import Need

    return tuple(replace(m, needs=(*m.needs, Need("weight staging buffers (DMA)", 2 * staging.buffer_bytes)))
                 if m.memory == "sram" else m for m in memory)
