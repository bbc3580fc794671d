"""int8 quantization of a decoder's float decode graph (frontend/build.py): integer-only inference.

Every value gets the fixed-point format calibration chose for its part of the block (quant/int8.py's
Formats, frontend/calibrate.py), found by the role of the node computing it (ir/roles.py): the
residual stream int32 in one format `x`; norm outputs, q/k/v, the KV cache and the attention output
int16; gate/up products int32; logits int32. Rules (each operator's integer form is quant/int8.py's):
- embedding -> embedding_i8; rmsnorm -> rmsnorm_i (Q-format weights, eps in the input's format);
- linear -> linear_i8 (int8 weights, per-group integer multipliers and a shift from the input's and
  the output's formats; `layout` where the kernel takes it, groups of 4k); a matrix read at two pairs
  of formats (a tied table: embedding and classifier) is stored once per pair;
- rope -> rope_i (Q14 tables); attention -> attention_i (exp2 table, softmax constants from q's and
  the output's formats); swiglu -> swiglu_i (sigmoid table); add -> add_i32; the KV cache is int16.
Anything else (LayerNorm, GELU, learned positions, biases) has no integer form: SlmcError.
The output is the int32 logits with `formats.logits` fractional bits; model.c turns them into floats.
"""

from __future__ import annotations

import numpy as np

from slmc.errors import SlmcError
from slmc.ir import DType, Graph, Node, TensorType, Value, ValueKind
from slmc.ir.rewrite import Rebuild
from slmc.ir.roles import Role
from slmc.ir.verify import verify
from slmc.quant import int8 as q
from slmc.quant.q8 import Q8Tensor

I16, I32 = DType.I16, DType.I32
C_SHIFT = 30


def attention_attrs(head_dim: int, f_qk: int, f_v: int) -> dict:
    """attention_i's softmax constants: u = ((max - s) * c) >> C_SHIFT is (max - s) * log2(e) / sqrt(head_dim)
    in Q16, s having 2 * f_qk fractional bits; beyond t_cap 2^-u is 0 (and t * c stays below 2^62)."""
    factor = np.log2(np.e) / np.sqrt(head_dim) * 2.0 ** (16 - 2 * f_qk)
    c = int(round(factor * 2.0 ** C_SHIFT))
    if c < 1 << 8:
        raise SlmcError("attention scores are too large for integer-only form", "use -q q8 for this model")
    t_cap = ((31 << 16) + (1 << 16)) * (1 << C_SHIFT) // c + 1
    return dict(head_dim=head_dim, c=c, c_shift=C_SHIFT, t_cap=t_cap, f_out=f_v, f_v=f_v)


def output_format(fm: q.Formats, n: Node, f_in: int) -> tuple[int, DType]:
    """Fractional bits and integer type of n's output, by its role (ROPE and KV_WRITE keep the input's)."""
    lf = fm.layers[n.layer] if n.layer is not None else None
    r = n.role
    if r in (Role.EMBED, Role.O, Role.DOWN, Role.RESIDUAL):
        return fm.x, I32
    if r is Role.FINAL_NORM:
        return fm.final_norm, I16
    if r is Role.CLASSIFIER:
        return fm.logits, I32
    if r in (Role.ROPE, Role.KV_WRITE):
        return f_in, I16
    assert lf is not None, n
    return {Role.ATTN_NORM: (lf.attn_norm, I16), Role.Q: (lf.qk, I16), Role.K: (lf.qk, I16), Role.V: (lf.v, I16),
            Role.ATTENTION: (lf.v, I16), Role.FFN_NORM: (lf.ffn_norm, I16), Role.GATE: (lf.gate, I32),
            Role.UP: (lf.gate, I32), Role.FFN_ACT: (lf.hidden, I16)}[r]  # type: ignore[index]


def _source(w: Value) -> "np.ndarray | Q8Tensor":
    return w.source if isinstance(w.source, Q8Tensor) else w.data  # type: ignore[return-value]


def run(graph: Graph, fm: q.Formats, layout: str = "") -> Graph:
    """layout: the weight order of the target's linear_i8 kernel ("" row-major; kernels.int_llm.int8_layout)."""
    rb = Rebuild(graph)
    frac: dict[int, int] = {}                   # id(new value) -> its fractional bits
    made: dict[tuple, tuple] = {}
    names: set[str] = set()

    def once(key: tuple, make):
        if key not in made:
            made[key] = make()
        return made[key]

    def const(name: str, arr: np.ndarray) -> Value:
        return rb.g.add_const(name, arr)

    def int_weights(w: Value, f_in: int, f_out: int, lay: str) -> tuple[Value, Value, q.IntWeights, str]:
        def make():
            iw = q.int_weights(_source(w), f_in, f_out)
            order = lay if iw.group % 4 == 0 else ""
            wq, wm = q.pack_rows4(iw.q, iw.m) if order == "rows4" else (iw.q, iw.m)
            # a second pair of formats of one matrix (the tied classifier) is a table of its own
            name = w.name if w.name not in names else f"{w.name}_{rb.g.role.value if rb.g.role else 'int'}"
            names.add(name)
            return const(name + ".q", wq), const(name + ".m", wm), iw, order
        return once(("w", id(w), f_in, f_out, lay), make)

    def table(key: str, make) -> Value:
        return once((key,), lambda: const(key, make()))

    def rope_table(v: Value) -> Value:
        return once(("rope", id(v)), lambda: const(v.name, np.round(v.data.astype(np.float64) * 2 ** q.ROPE_FRAC)
                                                   .astype(np.int16)))

    def step(n: Node) -> None:
        act = [rb[v] for v in n.inputs if v is not None and v.kind in (ValueKind.TEMP, ValueKind.INPUT)]
        f_in = frac.get(id(act[0]), 0)
        f_out, dtype = output_format(fm, n, f_in)
        out_t = [TensorType(n.outputs[0].shape, dtype)]
        x, w = act[0], n.inputs[1] if len(n.inputs) > 1 else None
        if n.op == "embedding":
            wq, wm, iw, _ = int_weights(n.inputs[0], 0, f_out, "")  # type: ignore[arg-type]
            node = rb.copy(n, "embedding_i8", [wq, wm, x], out_t, dict(group=iw.group, shift=iw.shift))
        elif n.op == "rmsnorm":
            wf = w.data.astype(np.float64)  # type: ignore[union-attr]
            f_w = q.frac_bits(float(np.abs(wf).max()), 16, cap=14)
            wi = const(w.name, np.round(wf * 2.0 ** f_w).astype(np.int16))  # type: ignore[union-attr]
            eps = max(int(round(n.attrs["eps"] * 2.0 ** (2 * f_in))), 1)
            node = rb.copy(n, "rmsnorm_i", [x, wi], out_t, dict(eps=eps, f_w=f_w, f_out=f_out))
        elif n.op == "linear":
            if len(n.inputs) > 2:
                raise SlmcError("-q int8 does not support biases in the projections yet", "use -q q8 or -q fp32")
            wq, wm, iw, order = int_weights(w, f_in, f_out, layout)  # type: ignore[arg-type]
            node = rb.copy(n, "linear_i8", [x, wq, wm], out_t, dict(group=iw.group, shift=iw.shift,
                           out_bits=16 if dtype is I16 else 32, **({"layout": order} if order else {})))
        elif n.op == "rope":
            node = rb.copy(n, "rope_i", [x, act[1], rope_table(n.inputs[2]), rope_table(n.inputs[3])], out_t,
                           dict(n.attrs, frac=q.ROPE_FRAC))  # type: ignore[arg-type]
        elif n.op == "kv_write":  # the cache holds int16 in k's (or v's) format
            cache = n.inputs[0]
            assert cache is not None
            if id(cache) not in rb.map:
                rb.map[id(cache)] = rb.g.add_state(cache.name, cache.shape, I16)
            node = rb.copy(n, inputs=[rb[cache], *act], types=out_t)
        elif n.op == "attention":
            attrs = dict(n_heads=n.attrs["n_heads"], n_kv_heads=n.attrs["n_kv_heads"],
                         **attention_attrs(n.attrs["head_dim"], f_in, f_out))
            node = rb.copy(n, "attention_i", [*act, table("exp2_q15", lambda: q.EXP2_LUT)], out_t, attrs)
        elif n.op == "add":
            node = rb.copy(n, "add_i32", act, out_t)
        elif n.op == "swiglu":
            if 2 * f_in - f_out < 1 or f_in < 1:
                raise SlmcError("the FFN's activations are too large for integer-only form", "use -q q8")
            node = rb.copy(n, "swiglu_i", [*act, table("sigmoid_q15", lambda: q.SIGMOID_LUT)], out_t,
                           dict(f_in=f_in, f_out=f_out, step_log2=q.SIGMOID_STEP_LOG2, range=q.SIGMOID_RANGE))
        else:
            raise SlmcError(f"-q int8 has no integer form of {n.op} (in the model's {n.role.value if n.role else 'graph'})",
                            "use -q q8 or -q fp32 for this model")
        frac[id(node.outputs[0])] = f_out

    return verify(rb.run(step), after="the int8 quantization pass")
