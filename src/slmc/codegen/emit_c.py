"""model.h / model.c: llama2.c-like C over one static arena (DESIGN.md rule 5).

Every graph becomes one function that reads like a forward pass: pointers into the arena with
their shapes, then one kernel call per node with a comment giving the op and the shapes. Language
models get the llama2.c-style API on top: slmc_reset, slmc_decode, slmc_prefill.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from slmc.codegen.cquote import LOCAL_PREFIXES, LOCALS, Names, c_comment, c_ident, comment
from slmc.codegen.weights import WeightsLayout
from slmc.ir import Graph, Node, Value, ValueKind
from slmc.ir.ops import VIEWS
from slmc.kernels.registry import KernelSpec
from slmc.plan.lifetimes import buffer_name, scratch_name, storage_root
from slmc.plan.plan import MemoryPlan


@dataclass(frozen=True)
class LlmInfo:
    """What the language-model API in model.h needs to know."""

    dim: int
    hidden_dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    vocab_size: int
    seq_len: int
    prefill_chunk: int
    logits_frac: int = -1     # >= 0: the decode graph's logits are int32 with this many fractional bits (-q int8)


class _Ctx:
    def __init__(self, fn: "_Function", node: Node) -> None:
        self.fn, self.node = fn, node

    def ref(self, i: int) -> str:
        v = self.node.inputs[i] if i < len(self.node.inputs) else None
        return "NULL" if v is None else self.fn.expr(v)

    def out(self, i: int = 0) -> str:
        return self.fn.expr(self.node.outputs[i])

    def scratch(self) -> str:
        return f"(void *)(slmc_arena + {self.fn.plan.offset_of(scratch_name(self.fn.graph, self.node))})"

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


class _Function:
    def __init__(self, graph: Graph, plan: MemoryPlan, weights: WeightsLayout, binding: dict[int, KernelSpec],
                 arrays: dict[tuple[int, ...], str] | None = None, hooks: dict[str, str] | None = None):
        self.graph, self.plan, self.weights, self.binding = graph, plan, weights, binding
        self.hooks = hooks or {}  # node name -> a statement run before the node (the DVFS HAL calls)
        self.arrays = {} if arrays is None else arrays
        # identifiers are unique within the function and never shadow a weight symbol: two ONNX names
        # such as "a.b" and "a_b" must not become one C variable
        self._names = Names({e.symbol for e in weights.entries} | LOCALS, avoid=LOCAL_PREFIXES)
        self.params = {id(v): self._ident(v.name) for v in graph.inputs + graph.outputs}
        self.locals: dict[str, tuple[str, Value]] = {}
        self._local_of: dict[int, str] = {}

    def _ident(self, name: str) -> str:
        return self._names.add(name)

    def expr(self, v: Value) -> str:
        if id(v) in self.params:
            return self.params[id(v)]
        root = storage_root(v)
        if id(root) in self.params:
            return self.params[id(root)]
        if root.kind == ValueKind.CONST:
            return self.weights.entry(root).symbol
        if id(root) not in self._local_of:
            name = self._ident(root.name)
            self._local_of[id(root)] = name
            self.locals[name] = (name, root)
        return self._local_of[id(root)]

    def _copy_out(self, v: Value, src: Value) -> str:
        """Graph outputs are the caller's memory: a view, constant or input there is copied in."""
        root = storage_root(src)
        if root.kind == ValueKind.CONST:
            from_ = self.weights.entry(root).symbol
        else:
            from_ = self.params.get(id(root)) or self.expr(root)
        return f"    memcpy({self.params[id(v)]}, {from_}, {v.nbytes}); {comment(c_comment(v.name))}"

    def signature(self) -> str:
        ps = []
        for v in self.graph.inputs:
            if self.graph.dynamic_rows and v.name == "pos":
                ps.append("int pos")
            else:
                ps.append(f"const {v.dtype.c} *{self.params[id(v)]}")
        if self.graph.dynamic_rows:
            ps.append("int n")
        ps += [f"{v.dtype.c} *{self.params[id(v)]}" for v in self.graph.outputs]
        return f"static void slmc_graph_{c_ident(self.graph.name)}({', '.join(ps) or 'void'})"

    def body(self) -> list[str]:
        calls: list[str] = []
        graph_outs = {id(v) for v in self.graph.outputs}
        for node in self.graph.nodes:
            if node.op in VIEWS:
                calls += [self._copy_out(o, node.inputs[0]) for o in node.outputs  # type: ignore[arg-type]
                          if id(o) in graph_outs and o.nbytes]
                continue
            ins = ", ".join(str(v.type) for v in node.inputs if v is not None)
            outs = ", ".join(str(v.type) for v in node.outputs)
            if node.name in self.hooks:
                calls.append("    " + self.hooks[node.name])
            calls.append("    " + comment(f"{c_comment(node.name)}: {node.op}({ins}) -> {outs}"))
            calls.append("    " + self.binding[id(node)].emit(node, _Ctx(self, node)))
        calls += [self._copy_out(v, v) for v in self.graph.outputs if v.producer is None and v.nbytes]
        decls = []
        for name, root in self.locals.values():
            off = self.plan.offset_of(buffer_name(self.graph, root))
            decls.append(f"    {root.dtype.c} *const {name} = ({root.dtype.c} *)(slmc_arena + {off}); /* {root.type} */")
        return decls + ([""] if decls else []) + calls


_PROTO = re.compile(r"^((?:void|int|float|int32_t)\s+slmc_\w+\([^)]*\))\s*\{", re.M | re.S)


def prototypes(spec_files: list[str], sources: dict[str, str]) -> list[str]:
    out = []
    for f in spec_files:
        for m in _PROTO.finditer(sources[f]):
            out.append(" ".join(m.group(1).split()) + ";")
    return out


def emit_model(graphs: list[Graph], plan: MemoryPlan, weights: WeightsLayout, binding: dict[int, KernelSpec],
               kernel_protos: list[str], banner: str, llm: LlmInfo | None,
               hooks: dict[str, str] | None = None) -> tuple[str, str]:
    """Returns (model.h, model.c). `hooks`: statements to run before named nodes (codegen/pico.py)."""
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
    for e in weights.entries:
        t = e.dtype.c
        blob = "slmc_weights_ram" if e.region == "ram" else "slmc_weights"
        c.append(f"static const {t} *const {e.symbol} = (const {t} *)({blob} + {e.offset}); /* {e.dtype.short}"
                 f"[{','.join(map(str, e.shape))}] */")
    c += ["", "/* one static arena: activations, scratch and state at offsets fixed by the memory plan */",
          # a graph that needs no arena still gets a one-slot array: C has no zero-length arrays
          "static uint8_t slmc_arena[SLMC_ARENA_BYTES > 0 ? SLMC_ARENA_BYTES : 16] __attribute__((aligned(16)));", ""]
    arrays: dict[tuple[int, ...], str] = {}
    funcs: list[str] = []
    for g in graphs:
        fn = _Function(g, plan, weights, binding, arrays, hooks)
        body = fn.body()
        funcs += [comment(f"{c_comment(g.name)}: {_io_list(g.inputs)} -> {_io_list(g.outputs)}"),
                  # an integer-only build keeps its graph a function of its own: toolchain/floatcheck.py reads it
                  ("__attribute__((noinline)) " if llm is not None and llm.logits_frac >= 0 else "")
                  + fn.signature() + " {", *body, "}", ""]
    if arrays:
        c += ["/* shapes and strides the generic kernels walk (in elements) */"]
        c += [f"static const int32_t {name}[] = {{{', '.join(map(str, key))}}};" for key, name in arrays.items()]
        c += [""]
    c += funcs
    if llm is not None:
        h += _llm_header(llm)
        c += _llm_api(graphs, plan, llm)
    else:
        h += _generic_header(graphs[0])
        c += _generic_api(graphs[0])
    h += ["", "#endif", ""]
    return "\n".join(h), "\n".join(c) + "\n"


BANNER_CHARS = 300  # the banner's length at most (the model's file name is in it)


def _io_list(values: list[Value]) -> str:
    """`name type, ...` for a comment, each name escaped and bounded (codegen/cquote.py)."""
    return ", ".join(f"{c_comment(v.name)} {v.type}" for v in values)


def _llm_header(m: LlmInfo) -> list[str]:
    return [
        f"#define SLMC_DIM {m.dim}", f"#define SLMC_HIDDEN_DIM {m.hidden_dim}", f"#define SLMC_N_LAYERS {m.n_layers}",
        f"#define SLMC_N_HEADS {m.n_heads}", f"#define SLMC_N_KV_HEADS {m.n_kv_heads}",
        f"#define SLMC_VOCAB_SIZE {m.vocab_size}", f"#define SLMC_SEQ_LEN {m.seq_len}",
        f"#define SLMC_PREFILL_CHUNK {m.prefill_chunk} /* tokens per prompt step; 0: prompts go through decode */",
        "",
        "typedef struct { int dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len, prefill_chunk; } SlmcConfig;",
        "extern const SlmcConfig slmc_config;",
        "",
        "/* Forget every position: zeroes the KV cache. */",
        "void slmc_reset(void);",
        "",
        "/* What slmc_decode and slmc_prefill return: they check their arguments before touching any state, so",
        "   a call that fails leaves the KV cache as it was. Checked in the order NULL, n, pos, tokens. */",
        "#define SLMC_OK 0",
        "#define SLMC_ERR_TOKEN (-1) /* a token outside 0 .. SLMC_VOCAB_SIZE - 1 */",
        "#define SLMC_ERR_POS (-2)   /* pos outside 0 .. SLMC_SEQ_LEN - 1, or pos + n beyond SLMC_SEQ_LEN */",
        "#define SLMC_ERR_COUNT (-3) /* n < 1 */",
        "#define SLMC_ERR_NULL (-4)  /* tokens or logits is NULL */",
        "/* Process `token` at position `pos` (0 <= pos < SLMC_SEQ_LEN); writes SLMC_VOCAB_SIZE logits. */",
        "int slmc_decode(int token, int pos, float *logits);",
        "/* Process n tokens at positions pos .. pos+n-1; writes n rows of SLMC_VOCAB_SIZE logits. */",
        "int slmc_prefill(const int32_t *tokens, int n, int pos, float *logits);",
    ]


def _llm_api(graphs: list[Graph], plan: MemoryPlan, m: LlmInfo) -> list[str]:
    states = sorted({(v.name, v.nbytes) for g in graphs for v in g.states()})
    out = [f"const SlmcConfig slmc_config = {{{m.dim}, {m.hidden_dim}, {m.n_layers}, {m.n_heads}, {m.n_kv_heads}, "
           f"{m.vocab_size}, {m.seq_len}, {m.prefill_chunk}}};", "", "void slmc_reset(void) {"]
    out += [f"    memset(slmc_arena + {plan.offset_of(n)}, 0, {b}); {comment(c_comment(n))}" for n, b in states]
    # a chip of a partitioned model other than chip 0 has no logits (codegen/chips.py): it only follows
    lg = ", logits" if graphs[0].outputs else ""
    decode = [f"    slmc_graph_decode(&t, pos, 1{lg});", *([] if lg else ["    (void)logits;"])]
    if m.logits_frac >= 0 and lg:  # integer logits, written into the caller's buffer, turned into floats in place
        decode = ["    slmc_graph_decode(&t, pos, 1, (int32_t *)(void *)logits);",
                  "    for (int i = 0; i < SLMC_VOCAB_SIZE; i++) {",
                  "        int32_t v;", "        memcpy(&v, &logits[i], sizeof v);",
                  f"        logits[i] = (float)v * 0x1p-{m.logits_frac}f;", "    }"]
    # The graph indexes the embedding table with the token and the KV cache with the position, with no
    # check of its own: out of range they would read and write outside both. One compare and branch each
    # (the compiler folds `x < 0 || x >= N` into one unsigned compare); a chip with no logits takes NULL.
    null = "!logits" if lg else ""
    out += ["}", "", "int slmc_decode(int token, int pos, float *logits) {",
            *([f"    if ({null}) return SLMC_ERR_NULL;"] if null else []),
            "    if (pos < 0 || pos >= SLMC_SEQ_LEN) return SLMC_ERR_POS;",
            "    if (token < 0 || token >= SLMC_VOCAB_SIZE) return SLMC_ERR_TOKEN;",
            "    int32_t t = token;",
            *decode, "    return SLMC_OK;", "}", "",
            "int slmc_prefill(const int32_t *tokens, int n, int pos, float *logits) {",
            f"    if (!tokens{' || ' + null if null else ''}) return SLMC_ERR_NULL;",
            "    if (n < 1) return SLMC_ERR_COUNT;",
            "    if (pos < 0 || pos >= SLMC_SEQ_LEN || n > SLMC_SEQ_LEN - pos) return SLMC_ERR_POS;",
            "    /* every token before any is processed: a bad one leaves the KV cache as it was */",
            "    for (int i = 0; i < n; i++)",
            "        if (tokens[i] < 0 || tokens[i] >= SLMC_VOCAB_SIZE) return SLMC_ERR_TOKEN;"]
    if m.prefill_chunk:
        out += ["    for (int i = 0; i < n; i += SLMC_PREFILL_CHUNK) {",
                "        int c = n - i < SLMC_PREFILL_CHUNK ? n - i : SLMC_PREFILL_CHUNK;",
                f"        slmc_graph_prefill(tokens + i, pos + i, c{lg and lg + ' + (size_t)i * SLMC_VOCAB_SIZE'});", "    }"]
    else:  # checked above: slmc_decode cannot fail here
        row = " + (size_t)i * SLMC_VOCAB_SIZE" if lg else ""  # no offset on a chip's NULL logits
        out += [f"    for (int i = 0; i < n; i++) (void)slmc_decode(tokens[i], pos + i, logits{row});"]
    return out + ["    return SLMC_OK;", "}"]


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

