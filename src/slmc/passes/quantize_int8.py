"""int8 quantization of a decoder's float decode graph (frontend/build.py): integer-only inference.

Every value gets the fixed-point format calibration chose for its part of the block (quant/int8.py's
Formats, frontend/calibrate.py), found by the role of the node computing it (ir/roles.py): the
residual stream int32 in one format `x`; norm outputs, q/k/v, the KV cache and the attention output
int16; gate/up products int32; logits int32. Rules (each operator's integer form is quant/int8.py's):
- embedding -> embedding_i8, pos_embedding -> pos_embedding_i8 (learned positions, into `x`);
- rmsnorm -> rmsnorm_i (Q-format weights, eps in the input's format; per head for qk-norm, whose input,
  q or k, is then int32 in `qk_raw`; int32 in `x` for a post-norm); layernorm -> layernorm_i (int32 bias);
- linear -> linear_i8 (int8 weights, per-group integer multipliers and a shift from the input's and
  the output's formats; `layout` where the kernel takes it, groups of 4k); a matrix read at two pairs
  of formats (a tied table: embedding and classifier) is stored once per pair; a bias -> the product in
  int32, then bias_i (the bias int32 in the output's format);
- rope -> rope_i (Q14 tables; partial rotary: rot_dim); attention -> attention_i (exp2 table, softmax
  constants from q's and the output's formats, with q's attention scale folded in; the window);
  swiglu -> swiglu_i (sigmoid table); geglu -> swiglu_i over GELU's Phi table (g * Phi(g) * u);
  gelu / silu -> gelu_i (Phi's or the sigmoid's table); relu -> relu_i; add -> add_i32;
  scale (embedding, residual and logit multipliers) -> scale_i; softcap (logits) -> softcap_i, and
  attention_i caps its scores itself (a tanh table); the KV cache is int16.
a projection of the residual with no norm before it (OLMo 2) reads it narrowed to int16 (narrow_i, `x16`).
Anything else has no integer form: SlmcError.
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


def attention_attrs(head_dim: int, f_qk: int, f_v: int, scale: float = 1.0, window: int = 0,
                    softcap: float = 0.0, seq_len: int = 0) -> dict:
    """attention_i's constants (kernels/c/attention_i.c says why each bound holds): q narrowed by q_shift
    bits and clamped to q_max, so a score sum(q * k) over head_dim int16 products fits int32, with
    fs = 2 * f_qk - q_shift fractional bits; u = ((t << t_shift) * c) >> 32 is t * log2(e) * scale /
    sqrt(head_dim) in Q16 for t = max - s (scale: q's attention scale, folded here), c < 2^32; from t_cap on
    (where u reaches 16, or 2^32 - 1) 2^-u is taken as 0. softcap: each score becomes cap * tanh(s * scale /
    (sqrt(head_dim) * cap)), in the real scores' units at fs fractional bits, so c keeps log2(e) only."""
    q_max = (2 ** 31 - 1) // (head_dim * 2 ** 15)
    q_shift = max(0, 15 - int(np.floor(np.log2(q_max + 1))))
    if head_dim * min(q_max, 2 ** (15 - q_shift)) * 2 ** 15 > 2 ** 31 - 1 or q_max < 1:  # the int32 score bound
        raise SlmcError(f"-q int8 attention has no int32 scores for head_dim {head_dim}", "use -q q8 for this model")
    if seq_len > 65534:  # sum(e) < 2^31 and |sum(p * v)| < 2^31 need at most 65534 positions
        raise SlmcError(f"-q int8 attention takes at most 65534 positions (this model: {seq_len})",
                        "compile with fewer positions or use -q q8")
    fs = 2 * f_qk - q_shift
    real = scale / np.sqrt(head_dim)
    factor = np.log2(np.e) * (1.0 if softcap else real) * 2.0 ** (16 - fs)
    t_shift = 0 if factor * 2.0 ** 32 < 2 ** 32 - 1 else int(np.ceil(np.log2(factor))) + 1
    c = int(round(factor * 2.0 ** (32 - t_shift)))
    if c < 1 << 8:
        raise SlmcError("attention scores are too large for integer-only form", "use -q q8 for this model")
    t_cap = min(-(-(16 << 48) // (c << t_shift)), 2 ** 32 - 1)  # u(t_cap) >= 16 in Q16: e = 0 from there
    if t_cap << t_shift >= 2 ** 32:
        raise SlmcError("attention scores are too coarse for integer-only form", "use -q q8 for this model")
    attrs = dict(head_dim=head_dim, c=c, t_shift=t_shift, t_cap=t_cap, q_shift=q_shift, q_max=q_max, f_out=f_v,
                 f_v=f_v, window=window)
    if softcap:
        m, shift = _multiplier(real / softcap * 2.0 ** (q.CAP_FRAC - fs), q.CAP_MULT_BITS)
        capq = int(round(softcap * 2.0 ** fs))
        if capq >= 2 ** 31:
            raise SlmcError("the attention soft-cap is too large for integer-only form", "use -q q8 for this model")
        attrs.update(cap_m=m, cap_shift=shift, capq=capq, step_log2=q.SIGMOID_STEP_LOG2, range=q.SIGMOID_RANGE)
    return attrs


def _feeds_qk_norm(n: Node) -> bool:
    return any(u.role is Role.QK_NORM and u.op == "rmsnorm" for u in n.outputs[0].users)


def output_format(fm: q.Formats, n: Node, f_in: int) -> tuple[int, DType]:
    """Fractional bits and integer type of n's output, by its role (ROPE and KV_WRITE keep the input's)."""
    lf = fm.layers[n.layer] if n.layer is not None else None
    r = n.role
    if r in (Role.EMBED, Role.O, Role.DOWN, Role.RESIDUAL, Role.POST_NORM):
        return fm.x, I32
    if r is Role.FINAL_NORM:
        return fm.final_norm, I16
    if r is Role.CLASSIFIER:
        return fm.logits, I32
    if r in (Role.ROPE, Role.KV_WRITE):
        return f_in, I16
    assert lf is not None, n
    if r in (Role.Q, Role.K) and _feeds_qk_norm(n):
        return lf.qk_raw, I32
    fmt = {Role.ATTN_NORM: (lf.attn_norm, I16), Role.Q: (lf.qk, I16), Role.K: (lf.qk, I16), Role.V: (lf.v, I16),
           Role.QK_NORM: (lf.qk, I16), Role.ATTENTION: (lf.v, I16), Role.FFN_NORM: (lf.ffn_norm, I16),
           Role.GATE: (lf.gate, I32), Role.UP: (lf.gate, I32), Role.FFN_ACT: (lf.hidden, I16)}.get(r)  # type: ignore[arg-type]
    if fmt is None:  # the router and experts of a mixture of experts
        raise _unsupported(n)
    return fmt


def _source(w: Value) -> "np.ndarray | Q8Tensor":
    return w.source if isinstance(w.source, Q8Tensor) else w.data  # type: ignore[return-value]


def _multiplier(factor: float, bits: int = q.MULT_BITS) -> tuple[int, int]:
    """factor as m / 2^shift with m below 2^bits (and shift at least 1)."""
    if not 0 < factor < 2 ** (bits - 2):
        raise SlmcError(f"a multiplier of {factor} has no integer form", "use -q q8 for this model")
    shift = min(62, int(np.floor(np.log2((2 ** bits - 1) / factor))))
    return int(round(factor * 2.0 ** shift)), shift


def _q_scale(v: Value) -> float:
    """q's attention scale (frontend/build.py writes it as a `scale` of role QK_NORM before attention)."""
    p = v.producer
    return float(p.attrs["factor"]) if p is not None and p.op == "scale" and p.role is Role.QK_NORM else 1.0


def _unsupported(n: Node) -> SlmcError:
    what = "soft-capping" if n.op == "softcap" or n.attrs.get("softcap") else n.op
    return SlmcError(f"-q int8 has no integer form of {what} (in the model's {n.role.value if n.role else 'graph'})",
                     "use -q q8 or -q fp32 for this model")


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

    def norm_weight(w: Value) -> tuple[Value, int]:
        wf = w.data.astype(np.float64)  # type: ignore[union-attr]
        f_w = q.frac_bits(float(np.abs(wf).max()), 16, cap=14)
        return const(w.name, np.round(wf * 2.0 ** f_w).astype(np.int16)), f_w

    def int_bias(b: Value, f_out: int) -> Value:
        bf = b.data.astype(np.float64) * 2.0 ** f_out  # type: ignore[union-attr]
        if np.abs(bf).max(initial=0) >= 2 ** 31:
            raise SlmcError(f"the bias {b.name} is too large for its integer format", "use -q q8 for this model")
        return const(b.name, np.round(bf).astype(np.int32))

    def fn_table(n: Node) -> Value:  # x * table(x): SiLU (sigmoid), GELU (Phi, erf or tanh form)
        if n.op == "silu":
            return table("sigmoid_q15", lambda: q.SIGMOID_LUT)
        if n.attrs.get("approximate"):
            return table("gelu_tanh_q15", lambda: q.GELU_TANH_LUT)
        return table("gelu_q15", lambda: q.GELU_LUT)

    def narrow(x: Value, n: Node) -> Value:
        """The int32 residual as int16, once per value, in the slot of the sublayer's norm (its role, so a
        partition keeps it whole on every chip that runs the sublayer)."""
        def make() -> Value:
            role, rb.g.role = rb.g.role, Role.ATTN_NORM if n.role in (Role.Q, Role.K, Role.V) else Role.FFN_NORM
            v = rb.g.op("narrow_i", [x], TensorType(x.shape, I16), name=f"{n.inputs[0].name}_i16",  # type: ignore[union-attr]
                        f_in=frac[id(x)], f_out=fm.x16)
            rb.g.role = role
            return v
        return once(("narrow", id(x)), make)

    def step(n: Node) -> None:
        act = [rb[v] for v in n.inputs if v is not None and v.kind in (ValueKind.TEMP, ValueKind.INPUT)]
        f_in = frac.get(id(act[0]), 0)
        if n.op == "scale" and n.role is Role.QK_NORM:  # q's attention scale: attention_i's constant takes it
            rb.map[id(n.outputs[0])] = act[0]
            return
        f_out, dtype = output_format(fm, n, f_in)
        out_t = [TensorType(n.outputs[0].shape, dtype)]
        x, w = act[0], n.inputs[1] if len(n.inputs) > 1 else None
        lut = dict(step_log2=q.SIGMOID_STEP_LOG2, range=q.SIGMOID_RANGE)
        if n.op == "embedding":
            wq, wm, iw, _ = int_weights(n.inputs[0], 0, f_out, "")  # type: ignore[arg-type]
            node = rb.copy(n, "embedding_i8", [wq, wm, x], out_t, dict(group=iw.group, shift=iw.shift))
        elif n.op == "pos_embedding":
            wq, wm, iw, _ = int_weights(n.inputs[0], 0, f_out, "")  # type: ignore[arg-type]
            node = rb.copy(n, "pos_embedding_i8", [wq, wm, x], out_t, dict(group=iw.group, shift=iw.shift))
        elif n.op in ("rmsnorm", "layernorm"):
            wi, f_w = norm_weight(w)  # type: ignore[arg-type]
            eps = max(int(round(n.attrs["eps"] * 2.0 ** (2 * f_in))), 1)
            if x.dtype is not I32:  # type: ignore[union-attr]
                raise SlmcError(f"-q int8 has no integer form of {n.name} (a norm of an int16 value)",
                                "use -q q8 or -q fp32 for this model")
            attrs = dict(eps=eps, f_w=f_w, f_out=f_out)
            if n.op == "rmsnorm":
                node = rb.copy(n, "rmsnorm_i", [x, wi], out_t, dict(attrs, group=n.attrs.get("head_dim", 0),
                               up=0 if dtype is I16 else max(0, f_out - 16), out_bits=16 if dtype is I16 else 32))
            else:
                node = rb.copy(n, "layernorm_i", [x, wi, int_bias(n.inputs[2], f_out)], out_t, attrs)  # type: ignore[arg-type]
        elif n.op == "linear":
            if x.dtype is not I16:  # type: ignore[union-attr]  # the residual itself (OLMo 2): once as int16
                x, f_in = narrow(x, n), fm.x16  # type: ignore[arg-type]
            wq, wm, iw, order = int_weights(w, f_in, f_out, layout)  # type: ignore[arg-type]
            bias = n.inputs[2] if len(n.inputs) > 2 else None
            lay = {"layout": order} if order else {}
            if bias is None:
                node = rb.copy(n, "linear_i8", [x, wq, wm], out_t, dict(group=iw.group, shift=iw.shift,
                               out_bits=16 if dtype is I16 else 32, **lay))
            else:  # the product in int32 (before the bias it may lie outside int16), then the bias
                y = rb.g.op("linear_i8", [x, wq, wm], TensorType(out_t[0].shape, I32), name=f"{n.name}_nobias",
                            group=iw.group, shift=iw.shift, out_bits=32, **lay)
                node = rb.copy(n, "bias_i", [y, int_bias(bias, f_out)], out_t,
                               dict(out_bits=16 if dtype is I16 else 32))
        elif n.op == "rope":
            node = rb.copy(n, "rope_i", [x, act[1], rope_table(n.inputs[2]), rope_table(n.inputs[3])], out_t,
                           dict(n.attrs, rot_dim=n.attrs.get("rot_dim", n.attrs["head_dim"]),  # type: ignore[arg-type]
                                frac=q.ROPE_FRAC))
        elif n.op == "kv_write":  # the cache holds int16 in k's (or v's) format
            cache = n.inputs[0]
            assert cache is not None
            if id(cache) not in rb.map:
                rb.map[id(cache)] = rb.g.add_state(cache.name, cache.shape, I16)
            node = rb.copy(n, inputs=[rb[cache], *act], types=out_t)
        elif n.op == "attention":
            cap = float(n.attrs.get("softcap", 0.0))
            attrs = dict(n_heads=n.attrs["n_heads"], n_kv_heads=n.attrs["n_kv_heads"],
                         **attention_attrs(n.attrs["head_dim"], f_in, f_out, _q_scale(n.inputs[0]),  # type: ignore[arg-type]
                                           int(n.attrs.get("window", 0)), cap,
                                           n.inputs[1].shape[0]))  # type: ignore[union-attr]
            tanh = [table("tanh_q15", lambda: q.TANH_LUT)] if cap else []
            node = rb.copy(n, "attention_i", [*act, table("exp2_q15", lambda: q.EXP2_LUT), *tanh], out_t, attrs)
        elif n.op == "add":
            node = rb.copy(n, "add_i32", act, out_t)
        elif n.op in ("swiglu", "geglu"):
            if 2 * f_in - f_out < 1 or f_in < 1:
                raise SlmcError("the FFN's activations are too large for integer-only form", "use -q q8")
            lt = table("sigmoid_q15", lambda: q.SIGMOID_LUT) if n.op == "swiglu" else fn_table(n)
            node = rb.copy(n, "swiglu_i", [*act, lt], out_t, dict(f_in=f_in, f_out=f_out, **lut))
        elif n.op in ("gelu", "silu"):
            if 15 + f_in - f_out < 1 or f_in < 1:
                raise SlmcError("the FFN's activations are too large for integer-only form", "use -q q8")
            node = rb.copy(n, "gelu_i", [x, fn_table(n)], out_t, dict(f_in=f_in, f_out=f_out, **lut))
        elif n.op == "relu":
            node = rb.copy(n, "relu_i", [x], out_t, dict(f_in=f_in, f_out=f_out))
        elif n.op == "scale" and dtype is I32 and f_in == f_out:
            m, shift = _multiplier(float(n.attrs["factor"]))
            node = rb.copy(n, "scale_i", [x], out_t, dict(m=m, shift=shift))
        elif n.op == "softcap" and dtype is I32 and f_in == f_out:  # the logits' (Gemma 2)
            cap = float(n.attrs["cap"])
            m, shift = _multiplier(2.0 ** (q.CAP_FRAC - f_in) / cap, q.CAP_MULT_BITS)
            node = rb.copy(n, "softcap_i", [x, table("tanh_q15", lambda: q.TANH_LUT)], out_t,
                           dict(m=m, shift=shift, capq=int(round(cap * 2.0 ** f_out)), **lut))
        else:
            raise _unsupported(n)
        frac[id(node.outputs[0])] = f_out

    return verify(rb.run(step), after="the int8 quantization pass")
