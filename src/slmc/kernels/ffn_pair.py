"""Row-streamed forms of the q8 and int8 matrix products in a prompt step (issue 21; passes/fuse_gate.py and
passes/stream_rows.py rewrite the graph, numpy twins in reference/llm_ops.py and reference/int_llm_ops.py):

- `linear_swiglu_q8` / `linear_swiglu_i8`, the FFN pair: the up projection (w3) with the SwiGLU gate in its
  epilogue, so the up projection's output [n, m] never exists;
- `quantize_linear_q8`: a q8 quantizer whose outputs only one product reads, and that product (wo, w2, the
  classifier), so the quantized activations and their scales never exist whole (w2's group is 4: its scales
  alone are a quarter of the FFN activation);
- `linear_q8_by_row`: a product run one row at a time (the FFN pair's gate product, w1), so the ISA kernels
  widen one row of activations into scratch instead of all of them.

The fp32 pair is a C file of its own (linear_swiglu_f32.c, columns outermost). Here each form is written by the
kernels the target binds for the unfused operators (the product: linear_q8.c, linear_q8_sse2.c,
linear_q8_dsp.c, linear_q8_rv32.c; linear_i8.c, linear_i8_dsp.c, linear_i8_rv32.c; the gate or the quantizer:
swiglu_f32.c or swiglu_f32_dsp.c, swiglu_i.c, quantize_q8.c, quantize_q8_sse2.c or quantize_q8_dsp.c; each
through its own registry emitter), called once per token row in model.c (the M33's pair):

    for (int slmc_row = 0; slmc_row < n; slmc_row++) {  /* w3's row into scratch, then the gate over it */
        slmc_linear_q8_dsp(u, xq + r * 64, xs + r * 1, wq, ws, NULL, xw, 1, 64, 172, 64);
        slmc_swiglu_f32_dsp(out + r * 172, gate + r * 172, u, 1 * 172);
    }

so every output element is computed by the same instructions as in the unfused build (those kernels compute
each element of a row on its own: exact integer sums per group, then the q8 float rescale in group order; the
quantizer's groups lie within a row), and the epilogue is the separate kernel itself: bit-identical by
construction, on every ISA. The kernels documented bit-identical to the portable ones take part (ISAS);
host-native's (kernels/native.py: reassociated sums) and the multi-row kernels of a batched step do not (the
passes leave the operators apart where the new node's kernel would wrap other kernels than the old nodes bind).
Composed forms, as batch.py's per-row kernels are: no C file of their own, the numpy twin composes the twins.

Contracts (kernels/overlap.py): the pair reads the gate and writes the output element by element in memory
order (`elementwise`: int16 over int32 may start 2 bytes above the gate); quantize_linear_q8 reads an
activation row whole (into scratch) before it writes that row's output (`by_chunks`, one chunk per row).
"""

from __future__ import annotations

from slmc.ir import DType, Node, TensorType, Value
from slmc.kernels.overlap import by_chunks, elementwise
from slmc.kernels.registry import REGISTRY, CallContext, KernelSpec, register

ROW = "slmc_row"
ISAS = ("any", "sse2", "dsp", "rv32im")   # the products documented bit-identical row by row
I8_SWIGLU = ("f_in", "f_out", "step_log2", "range")   # swiglu_i's attributes (int8); the rest are the product's
PAIR_COMMENT = "/* w3's row into scratch, then the gate over it */"


def _align16(x: int) -> int:
    return (x + 15) // 16 * 16


def _row(v: Value) -> Value:
    return Value(v.name, TensorType((1, *v.shape[1:]), v.dtype), v.kind, v.data)


def _at_row(expr: str, v: Value) -> str:
    """Row `slmc_row` of v, typed (a harness may hand the kernel untyped pointers)."""
    return f"(({v.dtype.c} *){expr} + (size_t){ROW} * {v.type.numel // v.shape[0]})"


def _group(n: Node) -> int:
    return n.attrs["group"]


def product_node(n: Node) -> Node:
    """The matrix product one row of `n` runs (inputs of one row; the output: one row)."""
    o = n.outputs[0]
    attrs = {k: v for k, v in n.attrs.items() if k not in I8_SWIGLU}
    if n.op == "quantize_linear_q8":
        x = n.inputs[0]
        assert x is not None
        k = x.shape[-1]
        xq = Value(x.name + "_q", TensorType((1, k), DType.I8))
        xs = Value(x.name + "_s", TensorType((1, k // _group(n)), o.dtype))
        ins: list[Value | None] = [xq, xs, *n.inputs[1:4]]
        ins += [None] * (5 - len(ins))
        return Node("linear_q8", ins, [_row(o)], attrs, n.name, n.layer, n.role)
    q8 = n.op != "linear_swiglu_i8"
    ins = list(n.inputs[:5] if q8 else n.inputs[:3])
    for i in (0, 1) if q8 else (0,):   # xq and xs (q8), x (int8): row inputs
        v = ins[i]
        assert v is not None
        ins[i] = _row(v)
    dt = n.inputs[3].dtype if n.op == "linear_swiglu_i8" else o.dtype  # type: ignore[union-attr]  (int8: w3's int32)
    return Node("linear_q8" if q8 else "linear_i8", ins, [Value(o.name + "_row", TensorType((1, o.shape[-1]), dt))],
                attrs, n.name, n.layer, n.role)


class _RowCtx:
    """The product kernel's CallContext for row `slmc_row`: `refs` overrides its inputs, `out` its output,
    `scratch` its scratch; anything else is the real context's."""

    def __init__(self, c: CallContext, refs: dict[int, str], out: str | list[str], scratch: str) -> None:
        self.c, self.refs, self._out, self._scratch = c, refs, [out] if isinstance(out, str) else out, scratch

    def ref(self, i: int) -> str:
        return self.refs[i] if i in self.refs else self.c.ref(i)

    def out(self, i: int = 0) -> str:
        return self._out[i]

    def scratch(self) -> str:
        return self._scratch

    @property
    def rows(self) -> str:
        return "1"

    def __getattr__(self, name: str):  # pos, attr, shape tables: the real context's
        return getattr(self.c, name)


def _scratch_at(c: CallContext, offset: int) -> str:
    return f"(void *)((char *){c.scratch()} + {offset})"


def _u_bytes(n: Node) -> int:
    return _align16(4 * n.outputs[0].shape[-1])


def gate_node(n: Node) -> Node:
    """The gate operator one row of a pair `n` runs: swiglu(gate, u) or swiglu_i(gate, u, lut), one row."""
    q8 = n.op == "linear_swiglu_q8"
    gate, o = n.inputs[5 if q8 else 3], n.outputs[0]
    assert gate is not None
    u = product_node(n).outputs[0]
    ins = [_row(gate), u] if q8 else [_row(gate), u, n.inputs[4]]
    attrs = {} if q8 else {k: n.attrs[k] for k in I8_SWIGLU}
    return Node("swiglu" if q8 else "swiglu_i", ins, [_row(o)], attrs, n.name, n.layer, n.role)


def _pair(base: KernelSpec, epi: KernelSpec, isa: str) -> KernelSpec:
    """The product `base` row by row into scratch, then the gate kernel `epi` over that row."""
    q8 = base.op == "linear_q8"
    gate = 5 if q8 else 3

    def emit(n: Node, c: CallContext) -> str:
        u = f"({'float' if q8 else 'int32_t'} *){c.scratch()}"
        refs = {i: _at_row(c.ref(i), n.inputs[i]) for i in ((0, 1) if q8 else (0,))}  # type: ignore[arg-type]
        rest = _scratch_at(c, _u_bytes(n))
        call = base.emit(product_node(n), _RowCtx(c, refs, u, rest))  # type: ignore[arg-type]
        gate_refs = {0: _at_row(c.ref(gate), n.inputs[gate]), 1: u, **({} if q8 else {2: c.ref(4)})}  # type: ignore[arg-type]
        epilogue = epi.emit(gate_node(n), _RowCtx(c, gate_refs, _at_row(c.out(), n.outputs[0]), rest))  # type: ignore[arg-type]
        return _loop(c, PAIR_COMMENT, call, epilogue)

    def scratch(n: Node) -> int:
        return _u_bytes(n) + max(base.scratch(product_node(n)), epi.scratch(gate_node(n)))

    return KernelSpec("linear_swiglu_q8" if q8 else "linear_swiglu_i8", base.dtype, base.c_file, emit, isa=isa,
                      scratch=scratch, macs=lambda n: base.macs(n), deps=(*base.deps, epi.c_file, *epi.deps),
                      where=lambda n: base.where(product_node(n)) and epi.where(gate_node(n)), overlap=elementwise(gate))


def _loop(c: CallContext, comment: str, *calls: str) -> str:
    body = "".join(f"\n        {s}" for s in calls)   # (model.c indents each line after the first once more)
    return f"for (int {ROW} = 0; {ROW} < {c.rows}; {ROW}++) {{ {comment}{body}\n    }}"


def _by_row(base: KernelSpec) -> KernelSpec:
    def emit(n: Node, c: CallContext) -> str:
        refs = {i: _at_row(c.ref(i), n.inputs[i]) for i in (0, 1)}  # type: ignore[arg-type]
        ctx = _RowCtx(c, refs, _at_row(c.out(), n.outputs[0]), c.scratch())
        call = base.emit(product_node(n), ctx)  # type: ignore[arg-type]
        return _loop(c, "/* one row at a time: one row of scratch */", call)

    return KernelSpec("linear_q8_by_row", base.dtype, base.c_file, emit, isa=base.isa,
                      scratch=lambda n: base.scratch(product_node(n)), macs=lambda n: base.macs(n), deps=base.deps,
                      where=lambda n: base.where(product_node(n)))


def _xq_bytes(n: Node) -> int:
    return _align16(n.inputs[0].shape[-1])  # type: ignore[union-attr]


def _xs_bytes(n: Node) -> int:
    return _align16(4 * (n.inputs[0].shape[-1] // _group(n)))  # type: ignore[union-attr]


def quantizer_node(n: Node) -> Node:
    """The quantize_q8 node one row of a quantize_linear_q8 node runs."""
    p = product_node(n)
    x = n.inputs[0]
    assert x is not None
    return Node("quantize_q8", [_row(x)], [p.inputs[0], p.inputs[1]], {"group": _group(n)},  # type: ignore[list-item]
                n.name, n.layer, n.role)


def _quantize_first(base: KernelSpec, quant: KernelSpec, isa: str) -> KernelSpec:
    def emit(n: Node, c: CallContext) -> str:
        x = n.inputs[0]
        assert x is not None
        xq, xs = f"(int8_t *){c.scratch()}", f"(float *){_scratch_at(c, _xq_bytes(n))}"
        rest = _scratch_at(c, _xq_bytes(n) + _xs_bytes(n))
        qctx = _RowCtx(c, {0: _at_row(c.ref(0), x)}, [xq, xs], rest)
        qcall = quant.emit(quantizer_node(n), qctx)  # type: ignore[arg-type]
        refs = {0: xq, 1: xs, 2: c.ref(1), 3: c.ref(2), 4: c.ref(3)}
        call = base.emit(product_node(n), _RowCtx(c, refs, _at_row(c.out(), n.outputs[0]), rest))  # type: ignore[arg-type]
        return _loop(c, "/* the row quantized into scratch, then its product */", qcall, call)

    def macs(n: Node) -> int:
        return n.inputs[0].shape[-1] * n.outputs[0].shape[-1] * n.outputs[0].shape[0]  # type: ignore[union-attr]

    def scratch(n: Node) -> int:
        return _xq_bytes(n) + _xs_bytes(n) + max(base.scratch(product_node(n)), quant.scratch(quantizer_node(n)))

    return KernelSpec("quantize_linear_q8", DType.F32, base.c_file, emit, isa=isa, scratch=scratch, macs=macs,
                      deps=(*base.deps, quant.c_file, *quant.deps),
                      where=lambda n: base.where(product_node(n)) and quant.where(quantizer_node(n)),
                      overlap=by_chunks(0, lambda n: n.inputs[0].shape[0],  # type: ignore[union-attr]
                                        "token rows: a row quantized into scratch before its output row is written"))


def _forms(op: str) -> list[KernelSpec]:
    """The kernels of `op` that can take part, an ISA's own first: of two forms a target could take, select()
    takes the first registered."""
    return sorted([k for k in REGISTRY if k.op == op and k.isa in ISAS and k.batch == "rows" and k.engine == "cores"],
                  key=lambda k: k.isa == "any")


def _isa(a: KernelSpec, b: KernelSpec) -> str | None:
    """The ISA two kernels of one target need together: theirs agree, or one is portable."""
    return a.isa if b.isa in ("any", a.isa) else b.isa if a.isa == "any" else None


def _register() -> None:
    """Every product with every gate kernel (and q8 quantizer) a target can bind beside it. select() takes the
    first registered of the forms with an ISA a target has, so the forms whose two kernels are both an ISA's own
    come first, then those with one, then the portable ones."""
    quants, gates = _forms("quantize_q8"), {"linear_q8": _forms("swiglu"), "linear_i8": _forms("swiglu_i")}
    forms: list[tuple[int, KernelSpec]] = []
    for base in [k for k in REGISTRY if k.op in ("linear_q8", "linear_i8") and k.isa in ISAS and not k.shared_rows
                 and k.engine == "cores" and k.batch == "rows"]:
        pairs = [(epi, _pair) for epi in gates[base.op]] + [(q, _quantize_first) for q in quants if base.op == "linear_q8"]
        for other, make in pairs:
            isa = _isa(base, other)
            if isa is not None:
                forms.append(((base.isa == "any") + (other.isa == "any"), make(base, other, isa)))  # type: ignore[operator]
        if base.op == "linear_q8":
            forms.append(((base.isa == "any") * 2, _by_row(base)))
    for _, spec in sorted(forms, key=lambda f: f[0]):   # a stable sort: otherwise the registry's order
        register(spec)


_register()
