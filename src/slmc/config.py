"""What to compile and how: the user's options (CompileOptions) and the configuration every stage reads
(CompileConfig), resolved once from the options and the target.

Each option is checked here, before the model is loaded, so that a wrong flag costs no work and no
stage re-derives a rule (memory sharing off under --cores, tiling only with a level above the arena,
the prompt step the target defaults to). The fit stage (stages/fit.py) tries replacements of a
config: an fp16 KV cache, fewer positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from slmc.errors import SlmcError
from slmc.targets import Target, get_target

MAX_CHIPS = 64  # each chip is a C project and, when run, a process of its own


@dataclass(frozen=True)
class CompileOptions:
    model: Path
    target: str = "host"
    numerics: str = "fp32"
    out: Path = Path("out")
    prefill_chunk: int | None = None    # None: the target's default
    tokenizer: Path | None = None
    context: int | None = None          # positions the KV cache holds; None: the model's, or what fits
    kv_cache: str | None = None         # "fp32" | "fp16" | "int8" storage; None: fp32, or fp16 where fp32 does not fit SRAM
    dvfs: tuple = ()                    # OppSteps (codegen/pico.py): an RP2350 build that calls slmc_set_opp
    weights_sram: str = "auto"          # "auto": weights streamed from flash fill the SRAM left over (and on the RP2350
    #                                     the rest is DMA-staged one product ahead); "boot": the boot copy only; "off"
    chips: int = 1                      # > 1: partition over this many chips (plan/partition.py)
    fan_in: int = 2                     # of the chips' hierarchical all-reduce
    mem: str | None = None              # --mem L1=64KiB,L2=1MiB: resize the target's memory levels
    mode: str = "decode"                # "prefill": a prompt step over --seq tokens is the one planned for
    cores: int | None = None            # fork the kernels over N cores (codegen/parallel.py); None: the serial build
    engine: str | None = None           # --engine linear=npu|cluster: overrides of the engine assignment (plan/engines.py)
    memory_sharing: str = "on"          # "on": outputs may lie over the inputs their kernels consumed (kernels/overlap.py)
    layer_loop: bool = True             # a decoder's layers as one loop in model.c where it can be (codegen/layers.py)
    dump_dir: Path | None = None        # --dump-dir: every stage's result as stable text (ir/printer.py)
    expert_slots: int | None = None     # MoE: experts in flash, this many cached in SRAM (passes/expert_cache.py)
    expert_prefetch: str = "lru"        # the expert cache's policy: "none" | "lru" | "predictor"
    expert_routing: str = "router"      # "router" | "predicted" (the predictor's experts replace the router's)
    expert_predictor: Path | None = None  # predictor.safetensors; None: the model folder's (passes/expert_predict.py)
    batch: int | None = None            # --batch B: one step runs up to B rows of B sequences' KV slots (passes/batch.py)
    batch_rows: int | None = None       # --batch-rows R: a step's row budget (<= B); None: B, or fewer where the SRAM is short
    onnx_convention: str = "auto"       # an ONNX file read as onnx | deeploy | auto (frontend/onnx_convention.py)


@dataclass(frozen=True)
class CompileConfig:
    model: str                    # as given: report.json names it so
    model_path: Path
    target: Target                # with --cores and --mem applied
    numerics: str                 # "fp32" | "q8" | "int8"
    kv_cache: str | None          # as asked; None lets the fit stage choose fp16 where fp32 does not fit
    context: int | None           # --context; None: the model's, or as many positions as fit
    prefill_chunk: int            # tokens per prompt step asked (or the target's), before the context bounds it
    chips: int                    # 1: one program; otherwise one per chip of a partition
    fan_in: int
    placed: bool                  # --mem or -m prefill: place across the memory levels and tile (codegen/tiled.py)
    levels: tuple | None          # the levels tiles are cut for (one faster than the arena's), else None
    mode: str
    sharing: bool                 # outputs may overwrite consumed inputs (kernels/overlap.py)
    engine: str | None
    dvfs: tuple
    weights_to_sram: bool         # weights streamed from flash fill the SRAM left over
    layer_loop: bool = True       # False: model.c writes every layer out (codegen/layers.py)
    batch: int = 0                # > 0: this many KV slots, one per sequence served at once (passes/batch.py)
    batch_rows: int = 0           # the rows one step runs (1..batch); 0: batch, or fewer as the fit stage chooses
    batch_rows_asked: bool = False  # --batch-rows was given: the fit stage keeps it
    expert_slots: int = 0         # > 0: MoE experts stay in flash, this many cached in SRAM (passes/expert_cache.py)
    expert_prefetch: str = "lru"
    expert_routing: str = "router"
    expert_predictor: Path | None = None
    onnx_convention: str = "auto"  # frontend/onnx_convention.py
    weight_staging: bool = False  # RP2350: flash-resident matrices DMA-staged one product ahead (codegen/stage_plan.py)

    @property
    def partitioned(self) -> bool:
        return self.chips != 1

    @property
    def fuse_gate(self) -> bool:
        """The FFN pair writes its gate product over the gate input: a memory-sharing rewrite that the tiled
        and the engine-assigned builds, which bind those operators to other kernels, do not take."""
        return self.sharing and self.levels is None and not self.engine and not self.target.cores  # --cores: wrappers


def resolve_config(opts: CompileOptions) -> CompileConfig:
    """The configuration `opts` asks for, or SlmcError naming the first option that cannot work."""
    _check_partition(opts)
    _check_batch(opts)
    _check_experts(opts)
    from slmc.frontend.onnx_convention import check as check_convention

    check_convention(opts.onnx_convention)
    target = get_target(opts.target)
    if opts.chips != 1 and target.emulated:
        raise SlmcError(f"a partitioned model runs on the host only for now, not on '{target.name}'",
                        "compile with -t host (`slmc simulate` models the chips' speed and energy)")
    if opts.cores is not None:  # a multi-core build (codegen/parallel.py, toolchain/harts.py)
        from slmc.toolchain.harts import with_cores

        if opts.mem is not None or opts.mode != "decode":
            raise SlmcError("--cores does not combine with --mem or -m prefill yet", "omit one of them")
        target = with_cores(target, opts.cores)
    chunk = target.prefill_chunk if opts.prefill_chunk is None else opts.prefill_chunk
    placed = opts.mem is not None or opts.mode != "decode"
    if placed:
        from slmc.codegen.tiled import check_mode
        from slmc.targets.levels import with_mem

        target = with_mem(target, opts.mem)
        check_mode(opts.mode, chunk)
    if opts.memory_sharing not in ("on", "off"):
        raise SlmcError(f"unknown --memory-sharing '{opts.memory_sharing}'", "use --memory-sharing on or off")
    if opts.dvfs:
        from slmc.codegen.pico import PLATFORMS

        if target.name not in PLATFORMS:
            raise SlmcError(f"a DVFS schedule applies to the RP2350 only, not '{target.name}'",
                            f"compile for {' or '.join(PLATFORMS)}")
    return CompileConfig(
        model=str(opts.model), model_path=Path(opts.model), target=target, numerics=opts.numerics, kv_cache=opts.kv_cache,
        context=opts.context, prefill_chunk=chunk, chips=opts.chips, fan_in=opts.fan_in, placed=placed,
        levels=_tiled_levels(target) if placed else None, mode=opts.mode,
        # memory sharing needs the kernels' own loop order: not with --cores, whose wrappers run parts of a
        # kernel at the same time on several cores
        sharing=opts.memory_sharing == "on" and not target.cores,
        engine=opts.engine, dvfs=tuple(opts.dvfs), weights_to_sram=opts.weights_sram in ("auto", "boot"),
        weight_staging=opts.weights_sram == "auto",
        layer_loop=opts.layer_loop, batch=opts.batch or 0, batch_rows=opts.batch_rows or opts.batch or 0,
        batch_rows_asked=opts.batch_rows is not None, expert_slots=opts.expert_slots or 0,
        expert_prefetch=opts.expert_prefetch, expert_routing=opts.expert_routing,
        expert_predictor=opts.expert_predictor, onnx_convention=opts.onnx_convention)


def _check_experts(opts: CompileOptions) -> None:
    from slmc.passes.expert_cache import POLICIES

    from slmc.passes.expert_predict import ROUTINGS

    if opts.expert_prefetch not in POLICIES:
        raise SlmcError(f"unknown --expert-prefetch '{opts.expert_prefetch}'", f"use one of {', '.join(POLICIES)}")
    if opts.expert_routing not in ROUTINGS:
        raise SlmcError(f"unknown --expert-routing '{opts.expert_routing}'", f"use one of {', '.join(ROUTINGS)}")
    if opts.expert_prefetch == "predictor" and opts.expert_slots is None:
        raise SlmcError("--expert-prefetch predictor loads experts into the expert cache, and there is none",
                        "add --expert-slots N")
    if opts.expert_routing == "predicted" and opts.expert_prefetch != "predictor":
        raise SlmcError("--expert-routing predicted routes by the expert predictor, which is not in this build",
                        "add --expert-prefetch predictor")
    if opts.expert_predictor is not None and opts.expert_prefetch != "predictor":
        raise SlmcError("--expert-predictor is read only with --expert-prefetch predictor",
                        "add --expert-prefetch predictor, or omit --expert-predictor")
    if opts.expert_prefetch == "predictor" and opts.batch:
        raise SlmcError("--expert-prefetch predictor does not combine with --batch yet", "omit one of them")
    if opts.expert_slots is not None and not 1 <= opts.expert_slots <= MAX_EXPERT_SLOTS:
        raise SlmcError(f"--expert-slots {opts.expert_slots} is outside 1..{MAX_EXPERT_SLOTS}",
                        "give the number of experts the SRAM cache holds")
    if opts.expert_slots is not None and opts.chips != 1:
        raise SlmcError("--expert-slots does not combine with --chips yet", "omit one of them")


MAX_EXPERT_SLOTS = 1 << 14


def _check_batch(opts: CompileOptions) -> None:
    if opts.batch_rows is not None and (opts.batch is None or not 1 <= opts.batch_rows <= opts.batch):
        raise SlmcError(f"--batch-rows {opts.batch_rows} " + ("needs --batch" if opts.batch is None else
                        f"is outside 1..{opts.batch} (--batch {opts.batch})"),
                        "give --batch B and a row budget of 1..B rows per step")
    if opts.batch is None:
        return
    from slmc.passes.batch import MAX_BATCH

    if not 1 <= opts.batch <= MAX_BATCH:
        raise SlmcError(f"--batch {opts.batch} is outside 1..{MAX_BATCH}", f"give the sequences one step serves, 1..{MAX_BATCH}")
    others = [f for f, on in (("--chips", opts.chips != 1), ("--cores", opts.cores is not None),
                              ("--mem", opts.mem is not None), ("-m prefill", opts.mode != "decode"),
                              ("--engine", bool(opts.engine)), ("--dvfs", bool(opts.dvfs))) if on]
    if others:
        raise SlmcError(f"--batch does not combine with {' or '.join(others)} yet", "omit one of them")


def _check_partition(opts: CompileOptions) -> None:
    if opts.chips == 1:
        return
    if opts.mem is not None or opts.mode != "decode":
        raise SlmcError("--mem and -m prefill do not apply to a partitioned build (--chips) yet", "omit them, or --chips 1")
    if opts.cores is not None or opts.engine:
        raise SlmcError("--cores and --engine do not apply to a partitioned build (--chips) yet", "omit them, or --chips 1")
    if opts.chips > MAX_CHIPS:
        raise SlmcError(f"--chips {opts.chips} is more than the {MAX_CHIPS} chips a partitioned build supports",
                        f"use --chips 2..{MAX_CHIPS} (`slmc simulate` models larger systems)")
    if opts.numerics not in ("fp32", "q8", "int8"):
        raise SlmcError(f"--chips supports -q fp32, q8 and int8, not {opts.numerics}", "use one of those")


def _tiled_levels(target: Target) -> tuple | None:
    from slmc.targets.levels import levels_of, tiles_above_arena

    return levels_of(target) if tiles_above_arena(target) else None
