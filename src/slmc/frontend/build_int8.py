"""DecoderModel + calibrated formats -> the integer-only decode step (-q int8; quant/int8.py).

Same interface as frontend/build.py's graphs (inputs `tokens` i32[1], `pos` i32[1]; KV cache state
per layer, int16 here), but every value is an integer: the output is `logits` i32[1, vocab] with
`formats.logits` fractional bits, which model.c's slmc_decode turns into floats for the sampler."""

from __future__ import annotations

import numpy as np

from slmc.errors import SlmcError
from slmc.frontend.build import rope_tables
from slmc.frontend.decoder import DecoderModel, Q8Tensor
from slmc.ir import DType, Graph, TensorType, Value
from slmc.ir.verify import verify  # every graph slmc builds is checked like an imported one
from slmc.quant import int8 as q

I8, I16, I32 = DType.I8, DType.I16, DType.I32
C_SHIFT = 30


def attention_attrs(head_dim: int, lf: q.LayerFormats) -> dict:
    """attention_i's softmax constants: u = ((max - s) * c) >> C_SHIFT is (max - s) * log2(e) / sqrt(head_dim)
    in Q16, s having 2 * qk fractional bits; beyond t_cap 2^-u is 0 (and t * c stays below 2^62)."""
    factor = np.log2(np.e) / np.sqrt(head_dim) * 2.0 ** (16 - 2 * lf.qk)
    c = int(round(factor * 2.0 ** C_SHIFT))
    if c < 1 << 8:
        raise SlmcError("attention scores are too large for integer-only form", "use -q q8 for this model")
    t_cap = ((31 << 16) + (1 << 16)) * (1 << C_SHIFT) // c + 1
    return dict(head_dim=head_dim, c=c, c_shift=C_SHIFT, t_cap=t_cap, f_out=lf.v, f_v=lf.v)


class _Builder:
    def __init__(self, model: DecoderModel, fm: q.Formats, layout: str = "") -> None:
        self.m, self.cfg, self.fm, self.layout = model, model.config, fm, layout
        self.g = Graph("decode")
        self.g.dynamic_rows = True
        self._weights: dict[tuple, tuple[Value, Value, int, int, str]] = {}

    def t(self, n: int, dtype: DType) -> TensorType:
        return TensorType((1, n), dtype)

    def weights(self, name: str, w: "np.ndarray | Q8Tensor", f_in: int, f_out: int,
                layout: str) -> tuple[Value, Value, int, int, str]:
        """Constants of a matrix product; `layout` is kept only where the ISA kernel can take it (groups of 4k)."""
        key = (id(w), f_in, f_out, layout)
        if key not in self._weights:
            iw = q.int_weights(w, f_in, f_out)
            layout = layout if iw.group % 4 == 0 else ""
            wq, wm = q.pack_rows4(iw.q, iw.m) if layout == "rows4" else (iw.q, iw.m)
            self._weights[key] = (self.g.add_const(name + ".q", wq), self.g.add_const(name + ".m", wm),
                                  iw.group, iw.shift, layout)
        return self._weights[key]

    def linear(self, x: Value, w: "np.ndarray | Q8Tensor", name: str, f_in: int, f_out: int, bits: int,
               out: str = "") -> Value:
        wq, wm, group, shift, lay = self.weights(name, w, f_in, f_out, self.layout)
        return self.g.op("linear_i8", [x, wq, wm], self.t(w.shape[0], I16 if bits == 16 else I32),
                         name=out or f"{name}_out", group=group, shift=shift, out_bits=bits,
                         **({"layout": lay} if lay else {}))

    def norm(self, x: Value, w: np.ndarray, name: str, f_out: int) -> Value:
        f_w = q.frac_bits(float(np.abs(w).max()), 16, cap=14)
        wi = self.g.add_const(name, np.round(np.asarray(w, np.float64) * 2.0 ** f_w).astype(np.int16))
        eps = int(round(self.cfg.norm_eps * 2.0 ** (2 * self.fm.x)))
        return self.g.op("rmsnorm_i", [x, wi], self.t(self.cfg.dim, I16), name=f"{name}_out", eps=max(eps, 1),
                         f_w=f_w, f_out=f_out)

    def build(self) -> Graph:
        m, cfg, g, fm = self.m, self.cfg, self.g, self.fm
        tokens = g.add_input("tokens", (1,), I32)
        pos = g.add_input("pos", (1,), I32)
        iw = q.int_weights(m.tok_emb, 0, fm.x)
        x = g.op("embedding_i8", [g.add_const("tok_embeddings.q", iw.q), g.add_const("tok_embeddings.m", iw.m), tokens],
                 self.t(cfg.dim, I32), name="x", group=iw.group, shift=iw.shift)
        cos, sin = rope_tables(cfg.seq_len, cfg.head_dim, cfg.rope_theta)
        rcos = g.add_const("rope.cos", np.round(cos.astype(np.float64) * 2 ** q.ROPE_FRAC).astype(np.int16))
        rsin = g.add_const("rope.sin", np.round(sin.astype(np.float64) * 2 ** q.ROPE_FRAC).astype(np.int16))
        exp2 = g.add_const("exp2_q15", q.EXP2_LUT)
        sig = g.add_const("sigmoid_q15", q.SIGMOID_LUT)
        rope = dict(head_dim=cfg.head_dim, interleaved=int(cfg.rope_interleaved), frac=q.ROPE_FRAC)
        for i, (lw, lf) in enumerate(zip(m.layers, fm.layers)):
            g.layer, p = i, f"layers.{i}"  # the nodes below are layer i's (plan/layers.py)
            kc = g.add_state(f"key_cache_{i}", (cfg.seq_len, cfg.kv_dim), I16)
            vc = g.add_state(f"value_cache_{i}", (cfg.seq_len, cfg.kv_dim), I16)
            h = self.norm(x, lw.attn_norm, f"{p}.attn_norm", lf.attn_norm)
            qq = self.linear(h, lw.wq, f"{p}.wq", lf.attn_norm, lf.qk, 16)
            k = self.linear(h, lw.wk, f"{p}.wk", lf.attn_norm, lf.qk, 16)
            v = self.linear(h, lw.wv, f"{p}.wv", lf.attn_norm, lf.v, 16)
            qq = g.op("rope_i", [qq, pos, rcos, rsin], qq.type, name=f"{p}.q_rot", **rope)
            k = g.op("rope_i", [k, pos, rcos, rsin], k.type, name=f"{p}.k_rot", **rope)
            kc2 = g.op("kv_write", [kc, k, pos], kc.type, name=f"{p}.key_cache")
            vc2 = g.op("kv_write", [vc, v, pos], vc.type, name=f"{p}.value_cache")
            att = g.op("attention_i", [qq, kc2, vc2, pos, exp2], self.t(cfg.q_dim, I16), name=f"{p}.att",
                       n_heads=cfg.n_heads, n_kv_heads=cfg.n_kv_heads, **attention_attrs(cfg.head_dim, lf))
            o = self.linear(att, lw.wo, f"{p}.wo", lf.v, fm.x, 32)
            x = g.op("add_i32", [x, o], x.type, name=f"{p}.x_att")
            h = self.norm(x, lw.ffn_norm, f"{p}.ffn_norm", lf.ffn_norm)
            a = self.linear(h, lw.w1, f"{p}.w1", lf.ffn_norm, lf.gate, 32)
            u = self.linear(h, lw.w3, f"{p}.w3", lf.ffn_norm, lf.gate, 32)  # type: ignore[arg-type]
            if 2 * lf.gate - lf.hidden < 1 or lf.gate < 1:
                raise SlmcError("the FFN's activations are too large for integer-only form", "use -q q8")
            a = g.op("swiglu_i", [a, u, sig], self.t(cfg.hidden_dim, I16), name=f"{p}.ffn_act", f_in=lf.gate,
                     f_out=lf.hidden, step_log2=q.SIGMOID_STEP_LOG2, range=q.SIGMOID_RANGE)
            d = self.linear(a, lw.w2, f"{p}.w2", lf.hidden, fm.x, 32)
            x = g.op("add_i32", [x, d], x.type, name=f"{p}.x_ffn")
        g.layer = None
        h = self.norm(x, m.final_norm, "final_norm", fm.final_norm)
        wcls = m.wcls if m.wcls is not None else m.tok_emb
        # named like the other numerics' classifier (sim/dvfs.py groups operators by these names)
        cls = "wcls" if m.wcls is not None else "tok_embeddings"
        # a tied table in the kernel's order is a copy of its own: the embedding reads rows in row order
        g.outputs = [self.linear(h, wcls, f"{cls}_int", fm.final_norm, fm.logits, 32, out=f"{cls}_out")]
        return g


def build_int8_graph(model: DecoderModel, formats: q.Formats, layout: str = "") -> Graph:
    """layout: the weight order of the target's linear_i8 kernel ("" row-major; kernels.int_llm.int8_layout)."""
    model.config.validate()
    return verify(_Builder(model, formats, layout).build(), after="building the int8 graph")
