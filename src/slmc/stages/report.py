"""Stage 6: the typed report of each program (report/compile_report.py), and a partitioned build's manifest.

A chip's report holds what that chip's program is; what the whole model has (its KV cache storage,
accuracy, tokenizer, context) is in manifest.json.
"""

from __future__ import annotations

from slmc.sim.experts import report_section
from slmc.config import CompileConfig
from slmc.frontend.decoder import DecoderModel
from slmc.report.compile_report import ChipSummary, ChipsManifest, CompileReport, DecoderFacts, OpEntry
from slmc.stages.emit import Project
from slmc.stages.fit import Fitted
from slmc.stages.load import Source
from slmc.stages.program import Planned, Progress


def build_report(fitted: Fitted, p: Planned, project: Project, source: Source, progress: Progress) -> CompileReport:
    config, model, plan = fitted.config, fitted.model, p.plan
    whole = p.built.chip is None  # one program, not a chip of a partitioned build
    ops = _ops(p)
    decoder = isinstance(model, DecoderModel)
    return CompileReport(
        model=config.model, target=config.target.name, numerics=config.numerics,
        arena_bytes=plan.arena_bytes, lower_bound_bytes=plan.lower_bound_bytes,
        shared_lower_bound_bytes=plan.shared_lower_bound_bytes, activation_arena_bytes=plan.activation_arena_bytes,
        activation_lower_bound_bytes=plan.activation_lower_bound_bytes, memory_sharing=plan.sharing_rows(),
        weights_bytes=p.weights.nbytes, kv_cache_bytes=plan.kv_cache_bytes,
        macs_per_token=sum(o.macs for o in ops if o.op not in ("attention", "attention_rows")) // max(1, p.llm.rows if p.llm and p.llm.batch else 1),
        planner=plan.planner,
        plan_optimal=plan.optimal, plan_best_bound_bytes=plan.best_bound_bytes, graphs=[g.name for g in p.graphs],
        graph_steps=[len(g.nodes) for g in p.graphs], ops=ops, buffers=plan.as_rows(),
        decoder=_decoder_facts(model, (fitted.notes if whole else ()) + project.notes) if decoder else None,
        prefill_chunk=p.llm.prefill_chunk if p.llm else 0,
        chip=p.built.chip, share=p.built.partition.to_dict()["chips"][p.built.chip] if not whole else None,
        cluster=_cluster(p, config), engines=_engines(p, config, model, progress),
        experts=report_section(p.graphs, config.expert_slots, config.expert_prefetch, config.expert_routing,
                               _predictor(model, config) if decoder and config.expert_prefetch == "predictor" else None),
        levels=p.levels, timings={"planner_seconds": p.planner_seconds} if p.planner_seconds is not None else None,
        kv_cache=_kv_cache(config) if p.llm is not None and whole else None,
        int8=_int8_accuracy(model, p, progress) if config.numerics == "int8" and decoder and whole else None,
        dvfs=dict(schedule=[dict(group=s.group, voltage_mv=s.voltage_mv, khz=s.khz) for s in config.dvfs],
                  calls_per_token=project.dvfs_calls) if config.dvfs else None,
        graph_io=_graph_io(p) if p.llm is None else None,
        memory={"weights_in": "flash+sram" if p.weights.ram_blob else "flash", **{m.memory: m.as_dict() for m in p.memory}}
        if p.memory else None,
        weights_sram_bytes=p.weights.ram_bytes if p.weights.ram_blob else None,
        weights_read_per_step=_weights_read(p) if p.llm is not None else None,
        staging=p.staging.as_dict() if p.staging is not None else None,
        model_seq_len=source.seq_len if decoder and whole and model.config.seq_len != source.seq_len else None,
        tokenizer="tokenizer" + source.tokenizer.suffix if source.tokenizer is not None and whole else None,
        batch=_batch(p) if p.llm is not None and p.llm.batch else None,
        onnx=source.model.convention.to_json() if not decoder and getattr(source.model, "convention", None) else None,
    )


def _predictor(model: DecoderModel, config) -> dict:
    """The expert predictor's facts for report.json's `experts` (stages/program.py loaded and checked it)."""
    from slmc.stages.program import expert_predictor_path, load_expert_predictor

    pr = load_expert_predictor(model, config)
    return dict(file=str(expert_predictor_path(config)), input=pr.input, input_layer=pr.input_layer,
                layers=list(pr.layers), hidden=pr.hidden, hit_rate_heldout=pr.hit_rate_heldout,
                top1_agreement_heldout=pr.top1_agreement_heldout, token_layers=list(pr.token_layers),
                token_hit_rate_heldout=pr.token_hit_rate_heldout)


def _batch(p: Planned) -> dict:
    """--batch: the slots, the row budget of a step, and what the batching pass shares and runs per row."""
    from slmc.passes.batch import explain

    b, rows, seq_len = p.llm.batch, p.llm.rows, p.llm.seq_len  # type: ignore[union-attr]
    return dict(slots=b, rows_per_step=rows, positions_per_slot=seq_len,
                kv_cache_bytes_per_slot=p.plan.kv_cache_bytes // b,
                activation_bytes=p.plan.activation_arena_bytes, explain=explain(p.graphs[0], rows))


def chips_manifest(fitted: Fitted, programs: list[Planned], reports: list[CompileReport], source: Source) -> ChipsManifest:
    config, partition, model = fitted.config, programs[0].built.partition, fitted.model
    return ChipsManifest(
        model=config.model, target=config.target.name, numerics=config.numerics, n_chips=partition.n_chips,
        fan_in=partition.fan_in, chips=[f"chip{i}" for i in range(partition.n_chips)],
        prefill_chunk=programs[0].llm.prefill_chunk, kv_cache=_kv_cache(config), config=_model_config(model),
        partition=partition.to_dict(),
        per_chip=tuple(ChipSummary(r.chip, r.weights_bytes, r.arena_bytes, r.kv_cache_bytes, r.macs_per_token)
                       for r in reports),
        weights_bytes=sum(r.weights_bytes for r in reports), notes=list(partition.notes),
        tokenizer="tokenizer" + source.tokenizer.suffix if source.tokenizer is not None else None)


def _ops(p: Planned) -> tuple[OpEntry, ...]:
    """The decode step's operators with their kernels and MACs; where some weights were copied to SRAM,
    each operator's share of weight bytes read from there (sim/dvfs.py prices flash reads by it)."""
    nodes = [n for n in p.graphs[0].nodes if id(n) in p.binding]
    out = []
    for n in nodes:
        spec, share = p.binding[id(n)], None
        if p.weights.ram_blob:
            ents = [p.weights.entry(v) for v in n.inputs if v is not None and id(v) in p.weights.by_value]
            total = sum(e.nbytes for e in ents)
            share = sum(e.nbytes for e in ents if e.region == "ram") / total if total else 0.0
        out.append(OpEntry(n.name, n.op, spec.c_file, spec.macs(n), share, n.layer, n.role.value if n.role else None))
    return tuple(out)


def _model_config(model: DecoderModel) -> dict:
    c = model.config
    return {k: getattr(c, k) for k in c.__dataclass_fields__ if not k.endswith("_")} | {"head_dim": c.head_dim}


def _decoder_facts(model: DecoderModel, fit_notes: tuple[str, ...]) -> DecoderFacts:
    c = model.config
    return DecoderFacts(2 * c.n_layers * c.n_heads * c.head_dim, _model_config(model), model.n_params(), model.source,
                        (*model.notes, *fit_notes))


def _weights_read(p: Planned) -> dict:
    """The constant bytes a decode step reads, where they sit (a table one row per token row of the step:
    codegen/weights.py); the flash term of the ESTIMATE (toolchain/profile.py) reads `flash`."""
    from slmc.codegen.weights import read_bytes_per_step

    rows = p.llm.rows if p.llm is not None and p.llm.batch else 1
    return dict(flash=read_bytes_per_step(p.weights, p.graphs[:1], "flash", rows),
                sram=read_bytes_per_step(p.weights, p.graphs[:1], "ram", rows))


def _kv_cache(config: CompileConfig) -> str:
    return "int16" if config.numerics == "int8" else config.kv_cache or "fp32"


def _graph_io(p: Planned) -> dict:
    from slmc.codegen.emit_c import graph_io

    return graph_io(p.graphs[0])


def _cluster(p: Planned, config: CompileConfig) -> dict | None:
    if not config.target.cores:
        return None
    from slmc.codegen.parallel import cluster_report

    return cluster_report(p.graphs, p.binding, config.target)


def _engines(p: Planned, config: CompileConfig, model, progress: Progress) -> dict | None:
    """Where each operator runs, and why; with FFN weights stored narrower on the NPU, what that costs in
    accuracy (measured on the model's own float weights)."""
    target = config.target
    if not (target.cores or config.engine) or target.engines is None:
        return None
    import numpy as np

    from slmc.plan.engines import assign, parse_ffn_bits, parse_overrides

    engines = assign(p.graphs, target, parse_overrides(config.engine)).as_dict()
    engines["note"] = ("operators on the NPU run its bit-exact functional model (npu_linear.c) on "
                       "core 0; the NPU's cycles and energy are its cost model's (kernels/npu.py)")
    bits = parse_ffn_bits(config.engine)
    if bits < 8 and isinstance(model, DecoderModel) and isinstance(model.layers[0].w1, np.ndarray):
        from slmc.frontend.calibrate import ffn_bits_accuracy

        progress(f"measuring the accuracy of {bits}-bit FFN weights")
        engines["accuracy"] = ffn_bits_accuracy(model, bits, graph=p.graphs[0])
    return engines


def _int8_accuracy(model: DecoderModel, p: Planned, progress: Progress) -> dict:
    from slmc.frontend.calibrate import accuracy, formats_for

    progress("measuring int8 accuracy against fp32")
    graph = p.graphs[0]
    if p.llm is not None and p.llm.batch:  # its rows compute what the one-token step computes (passes/batch.py)
        from slmc.frontend.build import build_float_graph
        from slmc.kernels.int_llm import int8_layout
        from slmc.passes import quantize_int8

        graph = quantize_int8.run(build_float_graph(model, 1), formats_for(model), int8_layout(frozenset()))
    return accuracy(model, graph, formats_for(model))
