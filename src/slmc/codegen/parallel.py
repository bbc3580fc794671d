"""Multi-core builds (`slmc compile --cores N`): the kernels that split their work over a cluster
are bound to the wrappers of kernels/c/parallel_llm.c, which call the build's serial kernel on a
slice of the outputs through slmc_parallel_for (kernels/c/parallel.c). Matrix products split by
blocks of output rows, attention and RoPE by heads, SwiGLU and RMSNorm's scaling (after its sum of
squares, on core 0) by blocks of elements, the q8 activation quantizer by groups (RMSNorm and RoPE only
from the target's Cluster.min_split_elements elements a row: on the RP2350 a fork/join costs more than
such a short cheap step saves): never inside a
dot product or a reduction, so the outputs are bit-identical to the serial build. Attention over an
fp16 KV cache splits by KV heads (parallel_attention_f16kv.c), so each cached row is still
converted once for the query heads that share it. The RP2350's products (q8 on the M33, int8 on
Hazard3) have theirs in parallel_mcu.c; attention over the int8 KV cache on the M33 splits by KV heads
(parallel_attention_i8kv_dsp.c: a pair of query heads per KV head for stories260K), -q int8's integer
attention by heads (parallel_attention_i.c). The int8 KV cache's portable kernel (attention_i8kv.c)
takes all heads in one call and stays on core 0.

`parallelize` is a pass over the kernel binding (it returns a new binding; the graph is not
touched). Each wrapped call gets a site number: the runtime counts each core's instructions per
site, and report.json's `cluster.sites` says which operator each site is.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from slmc.ir import Graph, Node
from slmc.kernels.registry import CallContext, KernelSpec

PAR_FILE = "parallel_llm.c"
RUNTIME = ("parallel.c", "parallel_harts.c")
HEADER = "slmc_parallel.h"


@dataclass(frozen=True)
class Wrapper:
    c_name: str          # the wrapper in parallel_llm.c
    fn_arg: bool         # the serial kernel is passed as its first argument
    split: str           # "rows" | "heads" | "kv_heads" | "elements" | "groups", for the report
    c_file: str = PAR_FILE


# serial kernel file -> its parallel wrapper; kernels not listed run on core 0 alone
WRAPPERS: dict[str, Wrapper] = {
    "linear_q8.c": Wrapper("slmc_par_linear_q8", True, "rows"),
    "linear_q8_rv32.c": Wrapper("slmc_par_linear_q8s", True, "rows"),
    "linear_q8_sse2.c": Wrapper("slmc_par_linear_q8s", True, "rows"),
    "linear_f32.c": Wrapper("slmc_par_linear_f32", True, "rows"),
    "rmsnorm_f32.c": Wrapper("slmc_par_rmsnorm_f32", True, "elements"),  # the sum of squares stays on core 0
    "attention_f32.c": Wrapper("slmc_par_attention_f32", False, "heads", "parallel_attention_f32.c"),
    "swiglu_f32.c": Wrapper("slmc_par_swiglu_f32", True, "elements"),
    "quantize_q8.c": Wrapper("slmc_par_quantize_q8", True, "groups"),
    # the same bits as the portable kernels, with their signatures: the ISA variants split the same way
    "quantize_q8_sse2.c": Wrapper("slmc_par_quantize_q8", True, "groups"),
    "quantize_q8_dsp.c": Wrapper("slmc_par_quantize_q8", True, "groups"),
    "swiglu_f32_dsp.c": Wrapper("slmc_par_swiglu_f32", True, "elements"),
    "rope_f32_dsp.c": Wrapper("slmc_par_rope_f32", True, "heads"),
    "rope_f32.c": Wrapper("slmc_par_rope_f32", True, "heads"),
    "attention_f16kv.c": Wrapper("slmc_par_attention_f16kv", False, "kv_heads", "parallel_attention_f16kv.c"),
    # the RP2350's attention: the int8 KV cache's on the M33 by KV heads, -q int8's integer attention by heads
    "attention_i8kv_dsp.c": Wrapper("slmc_par_attention_i8kv_dsp", False, "kv_heads", "parallel_attention_i8kv_dsp.c"),
    "attention_i.c": Wrapper("slmc_par_attention_i", False, "heads", "parallel_attention_i.c"),
    # the RP2350's matrix products (parallel_mcu.c): q8 on the M33, int8 on Hazard3 and the portable int8
    "linear_q8_dsp.c": Wrapper("slmc_par_linear_q8w", True, "rows", "parallel_mcu.c"),
    "linear_i8_rv32.c": Wrapper("slmc_par_linear_i8", True, "rows", "parallel_mcu.c"),
    "linear_i8.c": Wrapper("slmc_par_linear_i8", True, "rows", "parallel_mcu.c"),
}
PAR_FILES = frozenset(w.c_file for w in WRAPPERS.values())


@dataclass(frozen=True)
class Site:
    index: int
    graph: str
    node: str
    op: str
    kernel: str          # the serial kernel each core runs on its slice
    split: str


def _stride(spec: KernelSpec, n: Node) -> int:
    return -(-spec.scratch(n) // 16) * 16


def _wrapped(base: KernelSpec, w: Wrapper, cores: int, sites: dict[int, int]) -> KernelSpec:
    def emit(n: Node, c: CallContext) -> str:
        call = base.emit(n, c)
        name, args = call.split("(", 1)
        fn = f"{name.strip()}, " if w.fn_arg else ""
        return f"{w.c_name}({fn}{_stride(base, n)}, {sites[id(n)]}, {args}"

    # deps[0] is the serial kernel (sites_of reads it back; parallel_attention_f16kv.c calls into it)
    # a matrix product split by rows: another core may still read the input while this one writes its
    # rows, so no output lies over a consumed input (the serial kernel's overlap contract no longer holds)
    overlap = (lambda n: ()) if w.split == "rows" else base.overlap
    return replace(base, c_file=w.c_file, emit=emit, scratch=lambda n: cores * _stride(base, n),
                   deps=(base.c_file, *base.deps, "parallel.c"), tiling=None, overlap=overlap)


# the products a row split slices right: one call per token row, weights row-major or in blocks of 4 rows
# (parallel_mcu.c slices at multiples of 8 rows); other ops bound to the same file (the fused FFN pair of
# kernels/ffn_pair.py, a loop over rows) and other weight orders stay on core 0
_ROW_OPS, _ROW_LAYOUTS = ("linear", "linear_q8", "linear_i8"), ("", "rows4")


# element-wise steps too cheap per element to pay a fork/join on few elements (the target's Cluster.min_split_elements)
_CHEAP_OPS = ("rmsnorm", "rope")


def _splits(n: Node, w: Wrapper, min_elements: int = 0) -> bool:
    if n.op in _CHEAP_OPS and min_elements and n.outputs[0].shape[-1] < min_elements:
        return False
    return w.split != "rows" or (n.op in _ROW_OPS and n.attrs.get("layout", "") in _ROW_LAYOUTS)


def parallelize(graphs: list[Graph], binding: dict[int, KernelSpec], cores: int,
                min_elements: int = 0) -> tuple[dict[int, KernelSpec], list[Site]]:
    """The binding with every splittable kernel replaced by its parallel wrapper, and the call sites; RMSNorm
    and RoPE on rows of fewer than `min_elements` elements stay serial."""
    out, sites, index = dict(binding), [], {}
    wrapped: dict[int, KernelSpec] = {}
    for g in graphs:
        for n in g.nodes:
            spec = binding.get(id(n))
            if spec is None or spec.c_file not in WRAPPERS or not _splits(n, WRAPPERS[spec.c_file], min_elements):
                continue
            w = WRAPPERS[spec.c_file]
            index[id(n)] = len(sites)
            sites.append(Site(len(sites), g.name, n.name, n.op, spec.c_file, w.split))
            if id(spec) not in wrapped:
                wrapped[id(spec)] = _wrapped(spec, w, cores, index)
            out[id(n)] = wrapped[id(spec)]
    return out, sites


def header_text() -> str:
    from slmc.kernels.registry import C_DIR

    return (C_DIR / HEADER).read_text()


def sites_of(graphs: list[Graph], binding: dict[int, KernelSpec]) -> list[Site]:
    """The call sites of a parallelized binding, numbered as `parallelize` numbered them."""
    out = []
    for g in graphs:
        for n in g.nodes:
            spec = binding.get(id(n))
            if spec is not None and spec.c_file in PAR_FILES:
                out.append(Site(len(out), g.name, n.name, n.op, spec.deps[0], WRAPPERS[spec.deps[0]].split))
    return out


def build_files(graphs: list[Graph], binding: dict[int, KernelSpec], target) -> tuple[list[str], dict[str, str],
                                                                                      tuple[str, ...], list[str]]:
    """(lines for model.c before the prototypes, files beside model.c, -D defines, runtime C files)."""
    n_sites = max(1, len(sites_of(graphs, binding)))
    decls = [f'#include "{HEADER}" /* slmc_parallel_for and the serial kernel types its wrappers take */']
    return decls, {HEADER: header_text()}, (f"SLMC_CORES={target.cores}", f"SLMC_PAR_SITES={n_sites}"), runtime_files(target)


def runtime_files(target) -> list[str]:
    """The runtime C files a multi-core build compiles (the reset stub only where harts boot:
    toolchain/harts.py links it first on an emulated RV32 cluster)."""
    return ["parallel.c", *(["parallel_harts.c"] if target.emulator is not None and target.isa == "rv32" else [])]


def cluster_report(graphs: list[Graph], binding: dict[int, KernelSpec], target) -> dict:
    """report.json's `cluster`: the cores, how each site splits, and what runs where."""
    sites = sites_of(graphs, binding)
    return dict(cores=target.cores, runtime="threads" if target.emulator is None else "harts",
                sites=[dict(site=s.index, graph=s.graph, node=s.node, op=s.op, kernel=s.kernel, split=s.split)
                       for s in sites])
