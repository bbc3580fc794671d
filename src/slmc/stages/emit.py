"""Stage 5: a planned program -> Project (model.h, model.c and every file of its C project), and the last
stage, writing the projects and their reports into the output folder in one atomic swap (output.py).

A partitioned build emits one project per chip, in DIR/chip<k>: main_chip.c (chip 0 runs main_llm.c's
generation loop with the link hooks), chip.h naming the chip, and the link collectives of
kernels/c/link_runtime.c; DIR/manifest.json holds the partition and what `slmc run DIR` needs.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from slmc.codegen.emit_c import emit_model, prototypes
from slmc.codegen.project import TEMPLATES, write_project
from slmc.codegen.weights import WeightsLayout
from slmc.config import CompileConfig
from slmc.kernels.registry import KernelSpec
from slmc.output import output_folder
from slmc.report.compile_report import MANIFEST, ChipsManifest, CompileReport, write_report_json
from slmc.stages.program import Built, Planned

KERNELS_C = Path(__file__).parents[1] / "kernels" / "c"


@dataclass(frozen=True)
class Project:
    folder: str                   # under the output folder: "" for one program, "chip<k>" for a chip's
    model_h: str
    model_c: str
    weights: WeightsLayout
    kernel_files: list[str]       # copied from kernels/c into kernels/
    main: str                     # the template that becomes main.c
    extra: dict[str, str]         # more files beside model.c (name -> text)
    extra_srcs: tuple[str, ...]   # those of them compiled with main.c
    defines: tuple[str, ...]      # -D for every compilation
    dvfs_calls: int               # operating-point changes per token (a DVFS schedule's hooks)
    notes: tuple[str, ...] = ()   # why a graph's layers are written out one by one (codegen/layers.py)


def emit_project(p: Planned, config: CompileConfig) -> Project:
    target, chip, dvfs = config.target, p.built.chip, bool(config.dvfs)
    files = kernel_files(p.binding)
    if p.llm is not None and chip in (None, 0):  # chip 0 samples; the other chips only follow its tokens
        files.append("sample.c")
    par_decls, par_extra, par_defines = [], {}, ()
    if target.cores:
        from slmc.codegen.parallel import build_files

        par_decls, par_extra, par_defines, more = build_files(p.graphs, p.binding, target)
        files += [f for f in more if f not in files]
    expert_dma = _expert_dma(target, files)
    files += [f for f in ("dma.c",) if expert_dma and f not in files]
    sources = {f: (KERNELS_C / f).read_text() for f in files}
    hooks = {}
    if dvfs:
        from slmc.codegen.pico import opp_calls

        hooks = opp_calls(p.graphs[0], config.dvfs)
    notes: list[str] = []  # emit_model's: why a graph's layers stay unrolled
    stage_decls, staging, stage_files = [], None, {}
    if p.staging is not None:  # DMA staging of the flash-resident matrices (codegen/staging.py)
        from slmc.codegen import staging as st

        stage_decls, stage_files = st.declarations(p.staging), st.hal_files()
        staging = {id(p.graphs[0]): st.stage_calls(p.staging, p.graphs[0], p.weights)}
    model_h, model_c = emit_model(p.graphs, p.plan, p.weights, p.binding,
                                  par_decls + prototypes(files, sources) + list(p.tiled_decls) + stage_decls,
                                  banner(config, p.built), p.llm, hooks, config.layer_loop and staging is None, notes,
                                  staging)
    if chip is not None:
        from slmc.codegen.chips import chip_h

        return Project(f"chip{chip}", model_h, model_c, p.weights, files, "main_chip.c",
                       {"main_llm.c": (TEMPLATES / "main_llm.c").read_text(), "chip.h": chip_h(p.built.partition, chip)},
                       (), (), 0, tuple(notes))
    from slmc.codegen.pico import rp2350_files

    main = "main_graph.c" if p.llm is None else "main_batch.c" if p.llm.batch else "main_llm.c"
    return Project("", model_h, model_c, p.weights, files, main,
                   {**rp2350_files(target, files, dvfs, bool(stage_files)), **par_extra, **stage_files},
                   (("slmc_hal_log.c",) if dvfs else ()) + tuple(f for f in stage_files if f == "slmc_stage.c"),
                   (("SLMC_DVFS",) if dvfs else ()) + par_defines + expert_dma, len(hooks), tuple(notes))


def _expert_dma(target, files: list[str]) -> tuple[str, ...]:
    """An expert cache on a target whose slowest memory level has DMA: its loads go through dma.c, from that
    level to the SRAM level (kernels/c/expert_cache.c); the -D defines naming them, else none."""
    levels = target.levels
    if "expert_cache.c" not in files or not levels or not levels[-1].dma:
        return ()
    dst = next((i for i, lv in enumerate(levels) if lv.memory == "sram"), len(levels) - 1)
    return (f"SLMC_EXPERT_DMA_SRC={len(levels) - 1}", f"SLMC_EXPERT_DMA_DST={dst}")


def kernel_files(binding: dict[int, KernelSpec]) -> list[str]:
    """The kernels' C files and what they depend on, each once, in the order the graphs first use them."""
    files: list[str] = []
    for spec in binding.values():
        for f in (spec.c_file, *spec.deps):
            if f not in files:
                files.append(f)
    return files


def banner(config: CompileConfig, built: Built) -> str:
    head = f"generated by slmc from {config.model_path.name}: {config.numerics}, target {config.target.name}"
    if built.chip is not None:  # the KV cache storage of a partitioned build is in manifest.json
        return head + f", chip {built.chip} of {built.partition.n_chips}"
    return (head + (f", KV cache {config.kv_cache}" if config.kv_cache in ("fp16", "int8") else "") + (f", batch {config.batch}" if config.batch else "")
            + (f" ({config.batch_rows} rows per step)" if config.batch and config.batch_rows != config.batch else "")
            + (f", {config.target.cores} cores" if config.target.cores else ""))


def write_output(out: Path, config: CompileConfig, projects: list[Project], reports: list[CompileReport],
                 manifest: ChipsManifest | None, tokenizer: Path | None, extra_files: dict[str, str] | None) -> None:
    """Everything staged, then swapped in (output.py): nothing half-written stays."""
    with output_folder(out) as tmp:
        for proj, rep in zip(projects, reports):
            d = tmp / proj.folder
            write_project(d, config.target, proj.model_h, proj.model_c, proj.weights.blob, proj.kernel_files,
                          proj.main, proj.extra, proj.extra_srcs, proj.defines, proj.weights.ram_blob)
            write_report_json(d / "report.json", rep)
        if tokenizer is not None:
            shutil.copyfile(tokenizer, tmp / ("tokenizer" + tokenizer.suffix))
        if manifest is not None:
            write_report_json(tmp / MANIFEST, manifest)
        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text)
