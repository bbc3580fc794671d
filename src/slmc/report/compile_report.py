"""What `slmc compile` reports: CompileReport (one program's report.json) and ChipsManifest (a partitioned
build's manifest.json), typed, and their JSON.

The JSON keeps its field names and order: the fields of each dataclass in declaration order, the
decoder's facts in their place, optional fields only where they apply. stages/report.py fills them.
Fields nested below the top level (the memory fit, levels, engines, cluster) are the dicts their
own modules write (`as_dict`), so their shape has one owner.

The report also reads like report.json loaded from disk (`rep["arena_bytes"]`, `"levels" in rep`), so
code that takes either (toolchain/profile.py's count_run, sim/, the tests) needs no second form.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"

# Fields of the returned report that are not written to report.json: wall-clock times differ from run to
# run, and the same input must give byte-identical output (they reach the console: report/levels_table.py).
CONSOLE_ONLY = ("timings",)

_OPTIONAL = {"optional": True}  # a field written only where it applies (not None)


def _opt() -> Any:
    return field(default=None, metadata=_OPTIONAL)


@dataclass(frozen=True)
class OpEntry:
    name: str
    op: str
    kernel: str                           # its C file
    macs: int
    weights_sram_share: float | None = None   # of its weight bytes, the share read from SRAM (sim/dvfs.py)
    layer: int | None = None              # a decoder's: the layer and the part of the block (ir/roles.py)
    role: str | None = None

    def to_json(self) -> dict:
        d: dict = dict(name=self.name, op=self.op, kernel=self.kernel, macs=self.macs)
        for key in ("weights_sram_share", "layer", "role"):
            if getattr(self, key) is not None:
                d[key] = getattr(self, key)
        return d


@dataclass(frozen=True)
class DecoderFacts:
    attention_macs_per_position: int
    config: dict                          # the model's configuration, seq_len as compiled
    params: int
    source: str
    notes: tuple[str, ...]                # the frontend's, then why the KV cache or context differ

    def to_json(self) -> dict:
        return dict(attention_macs_per_position=self.attention_macs_per_position, config=self.config,
                    params=self.params, source=self.source, notes=list(self.notes))


class _JsonView:
    """Reads by report.json's field names (console-only fields included, as the run returned them)."""

    def to_json(self, console: bool = False) -> dict:
        out: dict = {}
        for f in fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if isinstance(v, DecoderFacts):
                out.update(v.to_json())
            elif (v is None and (f.metadata.get("optional") or f.name == "decoder")) or (
                    f.name in CONSOLE_ONLY and not console):
                continue
            else:
                out[f.name] = [o.to_json() for o in v] if f.name in ("ops", "per_chip") else v
        return out

    def __getitem__(self, key: str) -> Any:
        return self.to_json(console=True)[key]

    def __contains__(self, key: str) -> bool:
        return key in self.to_json(console=True)

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_json(console=True).get(key, default)


@dataclass(frozen=True)
class CompileReport(_JsonView):
    model: str
    target: str
    numerics: str
    arena_bytes: int
    lower_bound_bytes: int
    shared_lower_bound_bytes: int
    activation_arena_bytes: int
    activation_lower_bound_bytes: int
    memory_sharing: list[dict]
    weights_bytes: int
    kv_cache_bytes: int
    macs_per_token: int
    planner: str
    plan_optimal: bool
    plan_best_bound_bytes: int
    graphs: list[str]
    graph_steps: list[int]
    ops: tuple[OpEntry, ...]
    buffers: list[dict]
    decoder: DecoderFacts | None          # a language model's facts (absent for a graph)
    prefill_chunk: int
    chip: int | None = _opt()             # a partitioned build: which chip, and its share (plan/partition.py)
    share: dict | None = _opt()
    cluster: dict | None = _opt()         # --cores: the cores and how each site splits (codegen/parallel.py)
    engines: dict | None = _opt()         # where each operator runs, and why (plan/engines.py)
    levels: dict | None = _opt()          # --mem, -m prefill: placement and tiles (plan/levels.py)
    experts: dict | None = _opt()         # a mixture of experts and its cache (sim/experts.py)
    timings: dict | None = _opt()         # CONSOLE_ONLY
    kv_cache: str | None = _opt()         # "fp32" | "fp16" | "int16"
    int8: dict | None = _opt()            # -q int8: agreement with fp32 (quant/int8.py)
    dvfs: dict | None = _opt()
    graph_io: dict | None = _opt()        # a graph's packed inputs and outputs (codegen/emit_c.py)
    memory: dict | None = _opt()          # the fit, per memory of the target (targets/fit.py)
    weights_sram_bytes: int | None = _opt()
    weights_read_per_step: dict | None = _opt()  # {"flash": B, "sram": B} a decode step reads (tables one row)
    staging: dict | None = _opt()         # RP2350: the DMA-staged products and their buffers (codegen/stage_plan.py)
    model_seq_len: int | None = _opt()    # the model's context, where the KV cache holds fewer positions
    tokenizer: str | None = _opt()        # its file name in the output folder
    batch: dict | None = _opt()           # --batch: slots, rows per step, what batches and why (passes/batch.py)
    onnx: dict | None = _opt()            # an ONNX graph: the convention it was read with (frontend/onnx_convention.py)

    @property
    def notes(self) -> tuple[str, ...]:
        return self.decoder.notes if self.decoder is not None else ()


@dataclass(frozen=True)
class ChipSummary:
    chip: int
    weights_bytes: int
    arena_bytes: int
    kv_cache_bytes: int
    macs_per_token: int

    def to_json(self) -> dict:
        return dict(chip=self.chip, weights_bytes=self.weights_bytes, arena_bytes=self.arena_bytes,
                    kv_cache_bytes=self.kv_cache_bytes, macs_per_token=self.macs_per_token)


@dataclass(frozen=True)
class ChipsManifest(_JsonView):
    model: str
    target: str
    numerics: str
    n_chips: int
    fan_in: int
    chips: list[str]                      # the chips' folders
    prefill_chunk: int
    kv_cache: str
    config: dict
    partition: dict                       # plan/partition.py's plan
    per_chip: tuple[ChipSummary, ...]
    weights_bytes: int
    notes: list[str]
    tokenizer: str | None = _opt()


def write_report_json(path: Path, report: CompileReport | ChipsManifest) -> None:
    path.write_text(json.dumps(report.to_json(), indent=1) + "\n")
