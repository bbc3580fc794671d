"""Stages 2 and 3: a model -> Built (the step graphs of each program) -> Planned (kernels bound, memory
planned, weights laid out, and what that needs of each of the target's memories).

A build is one program, or one per chip of a partition (plan/partition.py): every later stage maps
over the list, so a partitioned model goes through the same pipeline as one chip's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from slmc.codegen.emit_c import LlmInfo
from slmc.codegen.weights import WeightsLayout, layout_weights
from slmc.config import CompileConfig
from slmc.errors import SlmcError
from slmc.frontend.decoder import DecoderModel
from slmc.ir import Graph
from slmc.kernels.registry import KernelSpec, select
from slmc.plan.plan import MemoryPlan, plan_memory
from slmc.targets import Target
from slmc.targets.fit import MemoryFit, main_llm_buffers, memory_fit

if TYPE_CHECKING:
    from slmc.plan.partition import PartitionPlan
    from slmc.codegen.stage_plan import Staging

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Built:
    graphs: list[Graph]                    # the decode step first, then the prompt step if there is one
    llm: LlmInfo | None                    # None: a graph, not a language model
    chip: int | None = None                # a partitioned build: this program's chip of `partition`
    partition: PartitionPlan | None = None


@dataclass(frozen=True)
class Planned:
    built: Built
    binding: dict[int, KernelSpec]         # id(node) -> its kernel
    plan: MemoryPlan
    weights: WeightsLayout
    memory: tuple[MemoryFit, ...]          # what each of the target's memories must hold; () for the host
    # set by stages/fit.py's place(), for builds placed across memory levels (--mem, -m prefill)
    tiled_decls: tuple[str, ...] = ()
    levels: dict | None = None             # report.json's `levels`
    planner_seconds: dict | None = None    # per level; wall-clock, so console only
    staging: Staging | None = None         # set by stages/fit.py's weights_to_sram: the DMA-staged products

    @property
    def graphs(self) -> list[Graph]:
        return self.built.graphs

    @property
    def llm(self) -> LlmInfo | None:
        return self.built.llm


def build_programs(model: DecoderModel | Graph, config: CompileConfig, progress: Progress) -> list[Built]:
    if not isinstance(model, DecoderModel):
        return [Built([model], None)]
    llm = llm_info(model, config)
    if not config.partitioned:
        progress("building graphs")
        return [Built(_step_graphs(model, config, llm)[0], llm)]
    from slmc.plan.partition import partition_model

    partition = partition_model(model, config.chips, config.fan_in, config.numerics)
    progress("building the chips' graphs")
    return [Built(graphs, llm, chip, partition) for chip, graphs in enumerate(_step_graphs(model, config, llm, partition))]


def llm_info(model: DecoderModel, config: CompileConfig) -> LlmInfo:
    c = model.config
    if config.batch:  # one step graph over B rows, each of any sequence (passes/batch.py); no prompt graph
        frac = -1
        if config.numerics == "int8":
            from slmc.frontend.calibrate import formats_for

            frac = formats_for(model).logits
        return LlmInfo(c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len, 0, frac,
                       batch=config.batch, rows=config.batch_rows or config.batch)
    if config.numerics == "int8":  # integer-only: one decode graph; prompts go through it token by token
        from slmc.frontend.calibrate import formats_for

        return LlmInfo(c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len, 0,
                       formats_for(model).logits)
    chunk = max(0, min(config.prefill_chunk, c.seq_len))
    return LlmInfo(c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len,
                   chunk if chunk > 1 else 0)


def _step_graphs(model: DecoderModel, config: CompileConfig, llm: LlmInfo,
                 partition: PartitionPlan | None = None) -> list[list[Graph]]:
    """Each step's graph (decode, then the prompt step if any) built once in float, quantized, then (for a
    partitioned build) cut into each chip's share: [chip][step]; one chip when not partitioned."""
    from slmc.frontend.build import build_float_graph

    steps = [llm.rows] if llm.batch else [1, llm.prefill_chunk] if llm.prefill_chunk else [1]
    graphs = [quantize(build_float_graph(model, seq, config.kv_cache or "fp32"), model, config, partition)
              for seq in steps]
    if partition is not None:
        from slmc.passes import partition as cut

        return [[cut.run(g, partition, chip) for g in graphs] for chip in range(partition.n_chips)]
    if config.expert_slots:  # the experts stay in flash; the chosen ones are copied into SRAM slots
        from slmc.passes import expert_cache

        graphs = [expert_cache.run(g, config.expert_slots, config.expert_prefetch) for g in graphs]
    if config.expert_prefetch == "predictor":  # SiDA: a trained predictor loads the later layers' experts ahead
        from slmc.passes import expert_predict

        predictor = load_expert_predictor(model, config)
        graphs = [expert_predict.run(g, predictor, config.expert_routing) for g in graphs]
    if config.fuse_gate:
        from slmc.passes import fuse_gate   # the FFN pair: its gate product is written over the gate input

        # q8/int8 too (kernels/ffn_pair.py), but not in a batched step, whose products are multi-row kernels
        graphs = [fuse_gate.run(g, None if llm.batch else config.target.features) for g in graphs]
        if not llm.batch:  # q8 prompt steps: the products that stream rows (passes/stream_rows.py)
            from slmc.passes import stream_rows

            graphs = [stream_rows.run(g, config.target.features) for g in graphs]
    if llm.batch:  # rows of different sequences: per-row position and KV slot where a node reads them
        from slmc.passes import batch

        graphs = [batch.run(g, llm.rows, llm.batch) for g in graphs]
    return [graphs]


def expert_predictor_path(config: CompileConfig) -> Path:
    """--expert-predictor, or predictor.safetensors in the model's folder."""
    from slmc.frontend.expert_predictor import find_predictor

    path = config.expert_predictor or find_predictor(config.model_path)
    if path is None:
        raise SlmcError(f"--expert-prefetch predictor needs a trained expert predictor, and {config.model} has no "
                        "predictor.safetensors (with its predictor.json)",
                        "give one with --expert-predictor, or train it: python -m slmc.train.predictor")
    return Path(path)


def load_expert_predictor(model: DecoderModel, config: CompileConfig):
    """The predictor, checked against the model (frontend/expert_predictor.py) and against the slots."""
    from slmc.frontend.expert_predictor import load_predictor
    from slmc.passes.expert_predict import check_slots

    predictor = load_predictor(expert_predictor_path(config), model)
    check_slots(predictor, config.expert_slots)
    return predictor


def quantize(graph: Graph, model: DecoderModel, config: CompileConfig, partition: PartitionPlan | None) -> Graph:
    """The float graph at the numerics asked, its weights in the order the target's kernels read (row-major
    for a partition: a chip's share is cut from the rows and columns)."""
    features = frozenset() if partition is not None else config.target.features
    if config.numerics == "q8":
        from slmc.kernels.llm import q8_layout
        from slmc.passes import quantize_q8

        return quantize_q8.run(graph, q8_layout(features, config.batch))
    if config.numerics == "int8":
        from slmc.frontend.calibrate import formats_for
        from slmc.kernels.int_llm import int8_layout
        from slmc.passes import quantize_int8

        return quantize_int8.run(graph, formats_for(model), int8_layout(features))
    return graph


def bind(graphs: list[Graph], target: Target) -> dict[int, KernelSpec]:
    from slmc.ir.ops import VIEWS

    return {id(n): select(n, target.features) for g in graphs for n in g.nodes if n.op not in VIEWS}


def bind_and_plan(built: Built, config: CompileConfig, progress: Progress) -> Planned:
    graphs, target = built.graphs, config.target
    progress("selecting kernels")
    binding = bind(graphs, target)
    if config.engine or target.cores:  # the matrix products the engine plan gives the NPU get its weight layout
        from slmc.passes import npu_weights
        from slmc.plan.engines import npu_nodes, parse_ffn_bits

        on_npu = npu_nodes(graphs, binding, target, config.engine)
        if on_npu:
            npu_weights.run(graphs, on_npu, parse_ffn_bits(config.engine))
            binding = bind(graphs, target)  # those nodes now select the NPU's kernel (kernels/npu.py)
    if target.cores:  # the splittable kernels through their parallel wrappers, with a scratch slice per core
        from slmc.codegen.parallel import parallelize

        cluster = target.engines.cluster if target.engines is not None else None
        binding, _ = parallelize(graphs, binding, target.cores, cluster.min_split_elements if cluster else 0)
    progress("planning memory")
    scratch = {id(n): binding[id(n)].scratch(n) for g in graphs for n in g.nodes if id(n) in binding}
    contracts = None
    if config.sharing:
        from slmc.plan.sharing import contracts_for

        contracts = contracts_for(graphs, binding, config.levels)
    plan, weights = plan_memory(graphs, scratch, contracts), layout_weights(graphs)
    return Planned(built, binding, plan, weights, memory_needs(target, plan, weights, built.llm))


def memory_needs(target: Target, plan: MemoryPlan, weights: WeightsLayout, llm: LlmInfo | None) -> tuple[MemoryFit, ...]:
    main_bytes = main_llm_buffers(llm.vocab_size, llm.seq_len, llm.prefill_chunk) if llm else 0
    if llm and llm.batch:
        from slmc.targets.fit import main_batch_buffers

        main_bytes = main_batch_buffers(llm.vocab_size, llm.seq_len, llm.batch, llm.rows)
    return memory_fit(target, plan.arena_bytes, plan.kv_cache_bytes, weights.nbytes, main_bytes,
                      sram_weights=weights.ram_bytes)
