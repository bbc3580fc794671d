"""The pipeline as plain function calls over typed stage results (stages/):

load -> build graphs (quantized, one per chip of a partition) -> bind kernels and plan memory ->
fit (candidate configurations until one fits) -> levels and tiles -> emit -> report -> write.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from slmc.config import CompileOptions, resolve_config
from slmc.frontend.decoder import DecoderModel
from slmc.frontend.load import load_model
from slmc.ir import Graph
from slmc.ir.printer import Dumps
from slmc.output import add_files, check_folder
from slmc.report.compile_report import ChipsManifest, CompileReport
from slmc.stages.emit import emit_project, write_output
from slmc.stages.fit import check_fits, fit, place, weights_to_sram
from slmc.stages.load import load_source
from slmc.stages.program import Progress, bind
from slmc.stages.report import build_report, chips_manifest

if TYPE_CHECKING:
    import numpy as np

# callers' imports: the options, the one entry point, and helpers benchmarks and tests use
__all__ = ["CompileOptions", "bind", "compile_model", "load_model", "run_graph"]


def compile_model(opts: CompileOptions, progress: Progress = lambda s: None,
                  model: DecoderModel | Graph | None = None,
                  extra_files: dict[str, str] | None = None) -> CompileReport | ChipsManifest:
    """Compile `opts.model` (or an already loaded `model`) into the folder `opts.out`, with `extra_files`
    (name -> text) beside the project. The folder and the options are checked before any work (output.py's
    rules). Returns the report (a partitioned build: its manifest)."""
    check_folder(opts.out)
    if opts.dump_dir is not None:
        check_folder(opts.dump_dir, "--dump-dir")
    config = resolve_config(opts)
    dumps = Dumps(opts.dump_dir is not None)
    progress("loading model")
    source = load_source(config, opts.tokenizer, model, dumps.on_pass("01-onnx"))
    dumps.add("00-model", source.model)
    # one program, or one per chip; kernels bound and memory planned for each candidate until one fits
    fitted = fit(source, config, progress)
    programs = [place(p, fitted.config, progress) for p in fitted.programs]
    check_fits(fitted, programs)
    for p in programs:  # the graphs after every pass, their kernels, their memory plan
        sfx = f"-chip{p.built.chip}" if p.built.chip is not None else ""
        dumps.add(f"10-graphs{sfx}", p.graphs)
        dumps.add(f"11-bind{sfx}", p.binding, p.graphs)
        dumps.add(f"12-plan{sfx}", p.plan)
    programs = [weights_to_sram(p, fitted.config) for p in programs]
    progress("emitting C")
    projects = [emit_project(p, fitted.config) for p in programs]
    reports = [build_report(fitted, p, proj, source, progress) for p, proj in zip(programs, projects)]
    manifest = chips_manifest(fitted, programs, reports, source) if config.partitioned else None
    write_output(opts.out, fitted.config, projects, reports, manifest, source.tokenizer, extra_files)
    if dumps.files:
        add_files(opts.dump_dir, dumps.files, "--dump-dir")
    return manifest if manifest is not None else reports[0]


def run_graph(project: Path, feeds: dict[str, "np.ndarray"], repeats: int = 1) -> tuple[dict[str, "np.ndarray"], float]:
    """Run a compiled graph (not a language model) on its inputs, on the host or the target's emulator
    (toolchain/graph_run.py). Returns `output_0`, ... and the seconds one run took (host)."""
    from slmc.toolchain.graph_run import run_graph as run

    return run(project, feeds, repeats)
