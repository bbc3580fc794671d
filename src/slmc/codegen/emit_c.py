"""model.h / model.c: llama2.c-like C over one static arena (DESIGN.md rule 5).

Every graph becomes one function that reads like a forward pass: named pointers into the arena with
their shapes (activations, then each kernel's scratch), then one kernel call per node with a comment
giving the op and the shapes. A decoder's layers are one loop over a per-layer table where the C allows
(codegen/layers.py). Language models get the llama2.c-style API on top (codegen/llm_api.py): slmc_reset,
slmc_decode, slmc_prefill, writing the caller's `logits`.
"""

from __future__ import annotations

import re

from slmc.codegen.experts_api import expert_api
from slmc.codegen.layers import LOOP_VARS, LayerTable, graph_calls, unrolled_note
from slmc.codegen.llm_api import LlmInfo, llm_api, llm_header  # noqa: F401  (LlmInfo: callers import it from here)
from slmc.codegen.weights import WeightsLayout
from slmc.cquote import LOCAL_PREFIXES, LOCALS, Names, c_comment, c_ident, c_int, comment
from slmc.ir import Graph, Node, Value, ValueKind
from slmc.ir.ops import VIEWS
from slmc.kernels.registry import KernelSpec
from slmc.plan.layers import Layers, find_layers
from slmc.plan.lifetimes import buffer_name, scratch_name, storage_root
from slmc.plan.plan import MemoryPlan


class _Ctx:
    def __init__(self, fn: "_Function", node: Node) -> None:
        self.fn, self.node = fn, node

    def ref(self, i: int) -> str:
        v = self.node.inputs[i] if i < len(self.node.inputs) else None
        return "NULL" if v is None else self.fn.expr(v)

    def out(self, i: int = 0) -> str:
        return self.fn.expr(self.node.outputs[i])

    def weight(self, i: int) -> str:
        """Constant input i by its own symbol, also in a layer loop whose table holds it for another node (the
        expert predictor reads later layers' experts: the same address in every layer, not row l's)."""
        root = storage_root(self.node.inputs[i])  # type: ignore[arg-type]
        self.fn.used.add(self.fn.weights.by_value[id(root)])
        return self.fn.weights.entry(root).symbol

    def scratch(self) -> str:
        return self.fn.scratch_of(self.node)

    def ints(self, values: list[int]) -> str:
        """A static const int32_t array in model.c (shapes and strides of generic kernels), shared by value."""
        key = tuple(int(v) for v in values) or (0,)
        if key not in self.fn.arrays:
            self.fn.arrays[key] = f"slmc_dims_{len(self.fn.arrays)}"
        return self.fn.arrays[key]

    @property
    def rows(self) -> str:
        return "n" if self.fn.graph.dynamic_rows else str(self.node.outputs[0].shape[0])

    @property
    def pos(self) -> str:
        return "pos"

    def attr(self, key: str, wide: bool = False) -> str:
        v = self.fn.attr_subst.get((id(self.node), key))
        if v is None:
            v = c_int(self.node.attrs[key], key, -2**63, 2**63 - 1) + ("LL" if wide else "")
        return f"(int64_t){v}" if wide else v


class _Function:
    def __init__(self, graph: Graph, plan: MemoryPlan, weights: WeightsLayout, binding: dict[int, KernelSpec],
                 arrays: dict[tuple[int, ...], str] | None = None, hooks: dict[str, str] | None = None,
                 out_names: tuple[str, ...] = (), loop: bool = False):
        self.graph, self.plan, self.weights, self.binding = graph, plan, weights, binding
        self.hooks = hooks or {}  # node name -> a statement run before the node (the DVFS HAL calls)
        self.arrays = {} if arrays is None else arrays
        # identifiers are unique within the function and never shadow a weight symbol: two ONNX names
        # such as "a.b" and "a_b" must not become one C variable
        self._names = Names({e.symbol for e in weights.entries} | LOCALS | (LOOP_VARS if loop else set()),
                            avoid=LOCAL_PREFIXES)
        # a language model's output is the caller's `logits`, whatever the graph calls it
        outs = [(v, out_names[i] if i < len(out_names) else v.name) for i, v in enumerate(graph.outputs)]
        self.params = {id(v): self._ident(name) for v, name in [(v, v.name) for v in graph.inputs] + outs}
        self.locals: dict[str, tuple[str, Value]] = {}
        self._local_of: dict[int, str] = {}
        self.scratches: dict[int, tuple[str, int]] = {}   # id(node) -> its scratch's local and offset
        self.used: set[int] = set()                        # weight entries named by their symbol
        # the layer loop's (codegen/layers.py): names for layer 0's values, and C standing in for layer i's
        self.rename: dict[int, str] = {}
        self.subst: dict[int, str] = {}
        self.scratch_subst: dict[int, str] = {}
        self.attr_subst: dict[tuple[int, str], str] = {}   # (id(node), attribute) -> C
        self.staging: dict = {}                           # id(node) -> its DMA staging calls (codegen/staging.py)
        # a batched step: the rows whose logits are not wanted skip the nodes after the blocks (codegen/batch_api.py)
        self.want = _want_rows(graph, self._ident)

    def _ident(self, name: str) -> str:
        return self._names.add(name)

    def expr(self, v: Value) -> str:
        if id(v) in self.params:
            return self.params[id(v)]
        root = storage_root(v)
        if id(root) in self.params:
            return self.params[id(root)]
        if id(root) in self.subst:
            return self.subst[id(root)]
        if root.kind == ValueKind.CONST:
            self.used.add(self.weights.by_value[id(root)])
            return self.weights.entry(root).symbol
        if id(root) not in self._local_of:
            name = self._ident(self.rename.get(id(root), root.name))
            self._local_of[id(root)] = name
            self.locals[name] = (name, root)
        return self._local_of[id(root)]

    def scratch_of(self, node: Node) -> str:
        """The named pointer to the node's scratch (a kernel's work area) in the arena."""
        if id(node) in self.scratch_subst:
            return self.scratch_subst[id(node)]
        if id(node) not in self.scratches:
            off = self.plan.offset_of(scratch_name(self.graph, node))
            self.scratches[id(node)] = (self._ident(self.rename.get(id(node), node.name) + ".scratch"), off)
        return self.scratches[id(node)][0]

    def _copy_out(self, v: Value, src: Value) -> str:
        """Graph outputs are the caller's memory: a view, constant or input there is copied in."""
        root = storage_root(src)
        if root.kind == ValueKind.CONST:
            self.used.add(self.weights.by_value[id(root)])
            from_ = self.weights.entry(root).symbol
        else:
            from_ = self.params.get(id(root)) or self.expr(root)
        return f"    memcpy({self.params[id(v)]}, {from_}, {v.nbytes}); {comment(c_comment(v.name))}"

    def signature(self) -> str:
        ps = []
        for v in self.graph.inputs:
            if self.graph.dynamic_rows and v.name == "pos" and "slot" not in self.params.values():  # batched: per row
                ps.append("int pos")
            else:
                ps.append(f"const {v.dtype.c} *{self.params[id(v)]}")
        if self.graph.dynamic_rows:
            ps.append("int n")
        if self.want is not None:
            ps.append(f"const unsigned char *{self.want.param}")
        ps += [f"{v.dtype.c} *{self.params[id(v)]}" for v in self.graph.outputs]
        return f"static void slmc_graph_{c_ident(self.graph.name)}({', '.join(ps) or 'void'})"

    def statements(self, node: Node, label: str | None = None) -> list[str]:
        """The C of one node: its kernel call (after its DVFS hook, under a comment when `label` is given), or
        for a view, the copy into a graph output it is."""
        if node.op in VIEWS:
            outs = {id(v) for v in self.graph.outputs}
            return [self._copy_out(o, node.inputs[0]) for o in node.outputs  # type: ignore[arg-type]
                    if id(o) in outs and o.nbytes]
        lines = ["    " + self.hooks[node.name]] if node.name in self.hooks else []
        if self.want is not None and node is self.want.first:
            lines += self.want.lines(self.expr)
        if label is not None:
            ins = ", ".join(str(v.type) for v in node.inputs if v is not None)
            outs_t = ", ".join(str(v.type) for v in node.outputs)
            lines.append("    " + comment(f"{c_comment(label)}: {node.op}({ins}) -> {outs_t}"))
        st = self.staging.get(id(node))
        if st is None:
            return lines + ["    " + self.binding[id(node)].emit(node, _Ctx(self, node))]
        kept, self.subst = self.subst, {**self.subst, **st.subst}  # its matrix read from a staging buffer
        call = self.binding[id(node)].emit(node, _Ctx(self, node))
        self.subst = kept
        return lines + ["    " + x for x in (*st.before, call, *st.after)]

    def body(self, calls: list[str] | None = None) -> list[str]:
        """Declarations of the named buffers, then `calls` (default: every node in order) and the copy-outs."""
        if calls is None:
            calls = [line for node in self.graph.nodes for line in self.statements(node, node.name)]
        calls = calls + [self._copy_out(v, v) for v in self.graph.outputs if v.producer is None and v.nbytes]
        decls = []
        for name, root in self.locals.values():
            off = self.plan.offset_of(buffer_name(self.graph, root))
            decls.append(f"    {root.dtype.c} *const {name} = ({root.dtype.c} *)(slmc_arena + {off}); /* {root.type} */")
        decls += [f"    void *const {name} = slmc_arena + {off};" for name, off in self.scratches.values()]
        return decls + ([""] if decls else []) + calls


def _want_rows(graph: Graph, ident):
    from slmc.passes.batch import batched

    if not batched(graph):
        return None
    from slmc.codegen.batch_api import WantRows

    return WantRows.of(graph, ident("want"))


_PROTO = re.compile(r"^((?:void|int|float|int32_t)\s+slmc_\w+\([^)]*\))\s*\{", re.M | re.S)


def prototypes(spec_files: list[str], sources: dict[str, str]) -> list[str]:
    out = []
    for f in spec_files:
        for m in _PROTO.finditer(sources[f]):
            out.append(" ".join(m.group(1).split()) + ";")
    return out


def emit_model(graphs: list[Graph], plan: MemoryPlan, weights: WeightsLayout, binding: dict[int, KernelSpec],
               kernel_protos: list[str], banner: str, llm: LlmInfo | None,
               hooks: dict[str, str] | None = None, layer_loop: bool = True,
               notes: list[str] | None = None, staging: dict[int, dict] | None = None) -> tuple[str, str]:
    """Returns (model.h, model.c). `hooks`: statements to run before named nodes (codegen/pico.py).
    `layer_loop`: a decoder's layers as one loop over a per-layer table where the C allows (codegen/layers.py);
    False writes every layer out. `notes`: where given, gets a line for each graph whose layers stay unrolled.
    `staging`: id(graph) -> its nodes' DMA staging calls (codegen/staging.py)."""
    banner = comment(banner, BANNER_CHARS)  # it names the model's file
    h = [banner, "#ifndef SLMC_MODEL_H", "#define SLMC_MODEL_H", "#include <stdint.h>", "",
         f"#define SLMC_ARENA_BYTES {plan.arena_bytes}", f"#define SLMC_WEIGHTS_BYTES {len(weights.blob)}"]
    c = [banner, '#include "model.h"', '#include "slmc_kernels.h"', "",
         *(['#include "slmc_hal.h" /* slmc_set_opp: the DVFS schedule\'s transitions */'] if hooks else []),
         "/* kernels, one C file each in kernels/ */", *kernel_protos, "",
         "/* every constant lives in weights.bin, linked read-only (weights.S) */",
         "extern const uint8_t slmc_weights[];"]
    if weights.ram_blob:
        c += ["/* the weights read most, copied from flash into SRAM at boot as initialised data (weights_ram.bin) */",
              "extern const uint8_t slmc_weights_ram[];"]
    arrays: dict[tuple[int, ...], str] = {}
    funcs: list[str] = []
    found = {id(g): find_layers(g) for g in graphs} if layer_loop else {}
    count = next((x.count for x in found.values() if isinstance(x, Layers)), 0)
    table = LayerTable(count, "SLMC_N_LAYERS" if llm is not None and llm.n_layers == count else str(count))
    used: set[int] = set()
    for g in graphs:
        fn, body = _function(g, plan, weights, binding, arrays, hooks, llm, found.get(id(g)), table, notes,
                             (staging or {}).get(id(g)))
        used |= fn.used
        funcs += [comment(f"{c_comment(g.name)}: {_io_list(g.inputs)} -> {_io_list(g.outputs, 'logits' if llm else '')}"),
                  # an integer-only build keeps its graph a function of its own: toolchain/floatcheck.py reads it
                  ("__attribute__((noinline)) " if llm is not None and llm.logits_frac >= 0 else "")
                  + fn.signature() + " {", *body, "}", ""]
    only_in_table = {e for col in table.members if col[0] == "const" for e in col[1]} - used
    for i, e in enumerate(weights.entries):
        if i in only_in_table:
            continue
        t = e.dtype.c
        blob = "slmc_weights_ram" if e.region == "ram" else "slmc_weights"
        c.append(f"static const {t} *const {e.symbol} = (const {t} *)({blob} + {e.offset}); /* {e.dtype.short}"
                 f"[{','.join(map(str, e.shape))}] */")
    c += ["", "/* one static arena: activations, scratch and state at offsets fixed by the memory plan */",
          # a graph that needs no arena still gets a one-slot array: C has no zero-length arrays
          "static uint8_t slmc_arena[SLMC_ARENA_BYTES > 0 ? SLMC_ARENA_BYTES : 16] __attribute__((aligned(16)));", ""]
    c += table.lines()
    if arrays:
        c += ["/* shapes and strides the generic kernels walk (in elements) */"]
        c += [f"static const int32_t {name}[] = {{{', '.join(map(str, key))}}};" for key, name in arrays.items()]
        c += [""]
    c += funcs
    if llm is not None and llm.batch:
        from slmc.codegen.batch_api import batch_api, batch_header

        h += batch_header(llm)
        c += batch_api(graphs, plan, llm, table)
    elif llm is not None:
        h += llm_header(llm)
        c += llm_api(graphs, plan, llm, table)
    else:
        h += _generic_header(graphs[0])
        c += _generic_api(graphs[0])
    eh, ec = expert_api(graphs, plan)
    h, c = h + eh, c + ec
    h += ["", "#endif", ""]
    return "\n".join(h), "\n".join(c) + "\n"


def _function(g: Graph, plan: MemoryPlan, weights: WeightsLayout, binding: dict[int, KernelSpec],
              arrays: dict[tuple[int, ...], str], hooks: dict[str, str] | None, llm: LlmInfo | None,
              lay: "Layers | str | None", table: LayerTable, notes: list[str] | None,
              staging: dict | None = None) -> tuple["_Function", list[str]]:
    """The graph's step function (its _Function and body): with its layers as one loop where they can be."""
    outs = ("logits",) if llm is not None else ()
    if isinstance(lay, Layers):
        kept = dict(arrays)
        fn = _Function(g, plan, weights, binding, arrays, hooks, outs, loop=True)
        calls = graph_calls(fn, lay, table)
        if not isinstance(calls, str):
            return fn, fn.body(calls)
        arrays.clear()
        arrays.update(kept)
        lay = calls
    marked = [n.layer for n in g.nodes if n.layer is not None]
    if isinstance(lay, str) and notes is not None and marked and max(marked) > 0:
        notes.append(unrolled_note(g.name, max(marked) + 1, lay))
    fn = _Function(g, plan, weights, binding, arrays, hooks, outs)
    fn.staging = staging or {}
    return fn, fn.body()


BANNER_CHARS = 300  # the banner's length at most (the model's file name is in it)


def _io_list(values: list[Value], name: str = "") -> str:
    """`name type, ...` for a comment, each name escaped and bounded (codegen/cquote.py); `name` for all."""
    return ", ".join(f"{c_comment(name or v.name)} {v.type}" for v in values)


PACK_ALIGN = 16


def packed_layout(values: list[Value]) -> list[tuple[int, int]]:
    """(offset, bytes) of each tensor in the packed input or output buffer of slmc_run_packed:
    in order, each at a PACK_ALIGN-aligned offset. `slmc run --inputs` packs and unpacks with it."""
    out, off = [], 0
    for v in values:
        out.append((off, v.nbytes))
        off += -(-v.nbytes // PACK_ALIGN) * PACK_ALIGN
    return out


def graph_io(g: Graph) -> dict[str, list[dict]]:
    """report.json's record of the packed buffers: what `slmc run --inputs` binds input_i and output_i to."""
    def rows(vals: list[Value]) -> list[dict]:
        return [dict(name=v.name, dtype=v.dtype.short, shape=list(v.shape), offset=off, nbytes=nb)
                for v, (off, nb) in zip(vals, packed_layout(vals))]
    return dict(inputs=rows(g.inputs), outputs=rows(g.outputs), inputs_bytes=_packed_bytes(g.inputs),
                outputs_bytes=_packed_bytes(g.outputs))


def _packed_bytes(values: list[Value]) -> int:
    lay = packed_layout(values)
    return lay[-1][0] + -(-lay[-1][1] // PACK_ALIGN) * PACK_ALIGN if lay else 0


def _run_params(g: Graph) -> list[str]:
    ins = [f"const {v.dtype.c} *input_{i}" for i, v in enumerate(g.inputs)]
    return ins + [f"{v.dtype.c} *output_{i}" for i, v in enumerate(g.outputs)]


def _generic_header(g: Graph) -> list[str]:
    lines = ["", comment(f"inputs: {_io_list(g.inputs)}"), comment(f"outputs: {_io_list(g.outputs)}"),
             f"void slmc_run({', '.join(_run_params(g)) or 'void'});",
             "/* The same over packed buffers: tensor i at a 16-byte aligned offset after tensor i-1. */",
             "void slmc_run_packed(const uint8_t *inputs, uint8_t *outputs);",
             f"#define SLMC_N_INPUTS {len(g.inputs)}", f"#define SLMC_N_OUTPUTS {len(g.outputs)}",
             f"#define SLMC_INPUTS_BYTES {_packed_bytes(g.inputs)}", f"#define SLMC_OUTPUTS_BYTES {_packed_bytes(g.outputs)}"]
    for i, v in enumerate(g.inputs):
        lines.append(f"#define SLMC_INPUT_{i}_NUMEL {v.type.numel}")
    for i, v in enumerate(g.outputs):
        lines.append(f"#define SLMC_OUTPUT_{i}_NUMEL {v.type.numel}")
    return lines


def _generic_api(g: Graph) -> list[str]:
    args = [f"input_{i}" for i in range(len(g.inputs))] + [f"output_{i}" for i in range(len(g.outputs))]
    packed = [f"({'const ' if i < len(g.inputs) else ''}{v.dtype.c} *)({'inputs' if i < len(g.inputs) else 'outputs'} + {off})"
              for i, (v, (off, _)) in enumerate(zip(g.inputs + g.outputs, packed_layout(g.inputs) + packed_layout(g.outputs)))]
    return [f"void slmc_run({', '.join(_run_params(g)) or 'void'}) {{", f"    slmc_graph_{c_ident(g.name)}({', '.join(args)});", "}",
            "", "void slmc_run_packed(const uint8_t *inputs, uint8_t *outputs) {",
            "    (void)inputs; (void)outputs;", f"    slmc_run({', '.join(packed)});", "}"]

