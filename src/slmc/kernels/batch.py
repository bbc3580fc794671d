"""The per-row kernels of a batched step (passes/batch.py; numpy twins in reference/batch_ops.py).

An operator that reads the step's position or a KV cache (RoPE, learned positions, the KV write, attention)
gets a per-row form, `<op>_rows`, registered here for each of its kernels (`batch="of:<op>"`). Its inputs are
the operator's own, with `pos` an int32 array (one entry per row), plus `slot` (one per row) where it reads a
cache; its C is the single-sequence kernel's own C file, called once per row in model.c:

    for (int slmc_row = 0; slmc_row < n; slmc_row++)  /* row r: its position, its KV slot, in place */
        slmc_attention_f32(att + r * 64, q_rot + r * 64, w->key_cache + slot[r] * 16384, ..., 1, ..., pos[r]);

so a row computes exactly what it computes when its sequence runs alone, and the per-row form follows the
kernel wherever the kernel changes (a new argument, a new layout): it is written by the kernel's own emitter,
with row r's operands (ACRoBat's gather fusion: each row's operands read where they lie, nothing copied into a
batch). Scratch and the kernel choice are the kernel's for one row over one slot (`one_row`); the memory-sharing
contract is the kernel's over all rows, since the loop runs the rows in the kernel's own row order.
"""

from __future__ import annotations

from slmc.ir import Node, TensorType, Value, ValueKind
from slmc.kernels.registry import REGISTRY, CallContext, KernelSpec, register

# operators whose kernels read the step's position (and maybe a KV cache): they get a per-row form
PER_ROW = ("rope", "rope_i", "pos_embedding", "pos_embedding_i8", "kv_write", "attention", "attention_i")
ROW_VAR = "slmc_row"


def _bits(mask: int) -> set[int]:
    return {i for i in range(mask.bit_length()) if mask >> i & 1}


def one_row(n: Node) -> Node:
    """The single-sequence node one row of a per-row node `n` runs: one row, pos [1], one slot of each cache,
    no `slot` input (attributes from passes/batch.py: pos_input, row_inputs, cache_inputs, slot_len)."""
    a = n.attrs
    rows_in, caches = _bits(a["row_inputs"]), _bits(a["cache_inputs"])
    ins: list[Value | None] = []
    for i, v in enumerate(n.inputs[:len(n.inputs) - (1 if caches else 0)]):
        if v is None:
            ins.append(None)
            continue
        shape = v.shape
        if i in rows_in or i == a["pos_input"]:
            shape = (1, *v.shape[1:])
        elif i in caches:
            shape = (a["slot_len"], *v.shape[1:])
        ins.append(Value(v.name, TensorType(shape, v.dtype), v.kind, v.data))
    outs = []
    for o in n.outputs:  # the KV write's output is its cache (one slot of it); the others are rows
        cache = next((ins[i] for i in caches if n.inputs[i] is not None and n.inputs[i].shape == o.shape), None)  # type: ignore[union-attr]
        outs.append(Value(o.name, TensorType(cache.shape if cache is not None else (1, *o.shape[1:]), o.dtype)))
    attrs = {k: v for k, v in a.items() if k not in ("base_op", "pos_input", "row_inputs", "cache_inputs", "slot_len")}
    return Node(a["base_op"], ins, outs, attrs, n.name, n.layer, n.role)


class _RowCtx:
    """The kernel's CallContext for row `slmc_row` of a per-row node: its rows, position and slot."""

    def __init__(self, c: CallContext, n: Node) -> None:
        self.c, self.n = c, n
        self.rows_in, self.caches = _bits(n.attrs["row_inputs"]), _bits(n.attrs["cache_inputs"])

    def _at(self, expr: str, v: Value, i: int | None) -> str:
        per_row = v.type.numel // v.shape[0]
        if i is not None and i in self.caches:
            slot = self.c.ref(len(self.n.inputs) - 1)
            return f"({expr} + (size_t){slot}[{ROW_VAR}] * {per_row * self.n.attrs['slot_len']})"
        return f"({expr} + (size_t){ROW_VAR} * {per_row})"

    def ref(self, i: int) -> str:
        v = self.n.inputs[i] if i < len(self.n.inputs) else None
        if v is None or not (i in self.rows_in or i in self.caches):
            return self.c.ref(i)
        return self._at(self.c.ref(i), v, i)

    def out(self, i: int = 0) -> str:
        o = self.n.outputs[i]
        cache = next((j for j in self.caches if self.n.inputs[j] is not None and self.n.inputs[j].shape == o.shape), None)  # type: ignore[union-attr]
        return self._at(self.c.out(i), o, cache)

    def scratch(self) -> str:
        return self.c.scratch()

    @property
    def rows(self) -> str:
        return "1"

    @property
    def pos(self) -> str:
        return f"{self.c.ref(self.n.attrs['pos_input'])}[{ROW_VAR}]"

    def attr(self, key: str, wide: bool = False) -> str:
        return self.c.attr(key, wide)

    def __getattr__(self, name: str):  # anything else a kernel's emitter asks (shape tables): the real context's
        return getattr(self.c, name)


def _base(n: Node, spec: KernelSpec) -> bool:
    return spec.where(one_row(n))


def per_row(base: KernelSpec) -> KernelSpec:
    """The per-row form of one kernel: its C file, its emitter in a loop over the rows."""
    def emit(n: Node, c: CallContext) -> str:
        call = base.emit(one_row(n), _RowCtx(c, n))  # type: ignore[arg-type]
        return (f"for (int {ROW_VAR} = 0; {ROW_VAR} < {c.rows}; {ROW_VAR}++) "
                f"/* each row at its own position and KV slot */\n        {call}")

    return KernelSpec(f"{base.op}_rows", base.dtype, base.c_file, emit, isa=base.isa,
                      scratch=lambda n: base.scratch(one_row(n)),
                      macs=lambda n: base.macs(one_row(n)) * n.outputs[0].shape[0] if n.attrs["row_inputs"] else 0,
                      deps=base.deps, where=lambda n: n.attrs.get("base_op") == base.op and _base(n, base),
                      overlap=lambda n: base.overlap(_with_op(n, base.op)), batch=f"of:{base.op}")


def _with_op(n: Node, op: str) -> Node:
    """n as its kernel's own node over all rows (the overlap contracts read shapes and attributes)."""
    return Node(op, n.inputs, n.outputs, n.attrs, n.name, n.layer, n.role)


# the portable kernels, and attention_f32_x86.c (the same bits as attention_f32.c on an x86-64 host)
for _spec in [k for k in REGISTRY if k.op in PER_ROW and (k.isa == "any" or k.c_file == "attention_f32_x86.c")
              and k.engine == "cores"]:
    register(per_row(_spec))
