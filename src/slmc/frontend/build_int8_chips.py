"""DecoderModel + formats + PartitionPlan -> the integer-only decode step of one chip (-q int8 --chips N).

frontend/build_int8.py's step with the chip's share (plan/partition.py): its heads' rows of Wq, Wk, Wv
and its KV cache, its FFN slice of W1/W3; Wo and W2 over the chip's columns give int64 partial sums
(`linear_i8_partial`) that `allreduce_sum` adds over the chips before the shift (`requant_i64`).
Integer sums do not depend on their order, so every chip holds one chip's residual bit for bit: no
group alignment and no extra synchronisation, exactly two per block. The integer weights are made
from the whole matrix before slicing, so their multipliers and shift are one chip's."""

from __future__ import annotations

import numpy as np

from slmc.frontend.build import rope_tables
from slmc.frontend.build_chips import PartitionPlan
from slmc.frontend.build_int8 import I16, I32, _Builder, attention_attrs
from slmc.frontend.decoder import DecoderModel, Q8Tensor
from slmc.ir import DType, Graph, TensorType, Value
from slmc.ir.verify import verify  # every graph slmc builds is checked like an imported one
from slmc.quant import int8 as q

I64 = DType.I64


class _ChipBuilder(_Builder):
    def __init__(self, model: DecoderModel, fm: q.Formats, plan: PartitionPlan, chip: int) -> None:
        super().__init__(model, fm)
        self.plan, self.ch = plan, plan.chips[chip]
        self._full: dict[tuple[int, int, int], q.IntWeights] = {}

    def full(self, w: "np.ndarray | Q8Tensor", f_in: int, f_out: int) -> q.IntWeights:
        key = (id(w), f_in, f_out)
        if key not in self._full:
            self._full[key] = q.int_weights(w, f_in, f_out)
        return self._full[key]

    def rows(self, x: Value, w, name: str, f_in: int, f_out: int, bits: int, r0: int, r1: int) -> Value:
        """Rows [r0, r1) of the product: the chip's heads or FFN units."""
        iw = self.full(w, f_in, f_out)
        wq = self.g.add_const(name + ".q", np.ascontiguousarray(iw.q[r0:r1]))
        wm = self.g.add_const(name + ".m", np.ascontiguousarray(iw.m[r0:r1]))
        return self.g.op("linear_i8", [x, wq, wm], self.t(r1 - r0, I16 if bits == 16 else I32), name=f"{name}_out",
                         group=iw.group, shift=iw.shift, out_bits=bits)

    def summed(self, x: Value | None, w, name: str, f_in: int, f_out: int, c0: int, c1: int) -> Value:
        """The product over columns [c0, c1) on this chip, summed over the chips, then shifted: int32."""
        iw = self.full(w, f_in, f_out)
        n = w.shape[0]
        part = None
        if x is not None and c1 > c0:
            first, last = c0 // iw.group, (c1 - 1) // iw.group
            wq = self.g.add_const(name + ".q", np.ascontiguousarray(iw.q[:, c0:c1]))
            wm = self.g.add_const(name + ".m", np.ascontiguousarray(iw.m[:, first:last + 1]))
            part = self.g.op("linear_i8_partial", [x, wq, wm], TensorType((1, n), I64), name=f"{name}_part",
                             offset=c0, group=iw.group)
        total = self.g.op("allreduce_sum", [part], TensorType((1, n), I64), name=f"{name}_sum")
        return self.g.op("requant_i64", [total], self.t(n, I32), name=f"{name}_out", shift=iw.shift)

    def build(self) -> Graph:
        m, cfg, g, fm, ch = self.m, self.cfg, self.g, self.fm, self.ch
        hd = cfg.head_dim
        tokens = g.add_input("tokens", (1,), I32)
        pos = g.add_input("pos", (1,), I32)
        x: Value | None = None
        if ch.root:
            iw = q.int_weights(m.tok_emb, 0, fm.x)
            x = g.op("embedding_i8", [g.add_const("tok_embeddings.q", iw.q), g.add_const("tok_embeddings.m", iw.m),
                                      tokens], self.t(cfg.dim, I32), name="x", group=iw.group, shift=iw.shift)
        x = g.op("broadcast", [x], self.t(cfg.dim, I32), name="x_all")
        if ch.n_heads:
            cos, sin = rope_tables(cfg.seq_len, hd, cfg.rope_theta)
            rcos = g.add_const("rope.cos", np.round(cos.astype(np.float64) * 2 ** q.ROPE_FRAC).astype(np.int16))
            rsin = g.add_const("rope.sin", np.round(sin.astype(np.float64) * 2 ** q.ROPE_FRAC).astype(np.int16))
            exp2 = g.add_const("exp2_q15", q.EXP2_LUT)
        if ch.n_ffn:
            sig = g.add_const("sigmoid_q15", q.SIGMOID_LUT)
        for i, (lw, lf) in enumerate(zip(m.layers, fm.layers)):
            g.layer, p = i, f"layers.{i}"  # the nodes below are layer i's (plan/layers.py)
            att = None
            if ch.n_heads:
                r0, r1 = ch.heads[0] * hd, ch.heads[1] * hd
                k0, k1 = ch.kv_heads[0] * hd, ch.kv_heads[1] * hd
                kc = g.add_state(f"key_cache_{i}", (cfg.seq_len, k1 - k0), I16)
                vc = g.add_state(f"value_cache_{i}", (cfg.seq_len, k1 - k0), I16)
                h = self.norm(x, lw.attn_norm, f"{p}.attn_norm", lf.attn_norm)
                qq = self.rows(h, lw.wq, f"{p}.wq", lf.attn_norm, lf.qk, 16, r0, r1)
                k = self.rows(h, lw.wk, f"{p}.wk", lf.attn_norm, lf.qk, 16, k0, k1)
                v = self.rows(h, lw.wv, f"{p}.wv", lf.attn_norm, lf.v, 16, k0, k1)
                rope = dict(head_dim=hd, interleaved=int(cfg.rope_interleaved), frac=q.ROPE_FRAC)
                qq = g.op("rope_i", [qq, pos, rcos, rsin], qq.type, name=f"{p}.q_rot", **rope)
                k = g.op("rope_i", [k, pos, rcos, rsin], k.type, name=f"{p}.k_rot", **rope)
                kc2 = g.op("kv_write", [kc, k, pos], kc.type, name=f"{p}.key_cache")
                vc2 = g.op("kv_write", [vc, v, pos], vc.type, name=f"{p}.value_cache")
                att = g.op("attention_i", [qq, kc2, vc2, pos, exp2], self.t(r1 - r0, I16), name=f"{p}.att",
                           n_heads=ch.n_heads, n_kv_heads=ch.n_kv_heads, **attention_attrs(hd, lf))
            o = self.summed(att, lw.wo, f"{p}.wo", lf.v, fm.x, ch.heads[0] * hd, ch.heads[1] * hd)
            x = g.op("add_i32", [x, o], x.type, name=f"{p}.x_att")
            a = None
            if ch.n_ffn:
                f0, f1 = ch.ffn
                h = self.norm(x, lw.ffn_norm, f"{p}.ffn_norm", lf.ffn_norm)
                gate = self.rows(h, lw.w1, f"{p}.w1", lf.ffn_norm, lf.gate, 32, f0, f1)
                up = self.rows(h, lw.w3, f"{p}.w3", lf.ffn_norm, lf.gate, 32, f0, f1)
                a = g.op("swiglu_i", [gate, up, sig], self.t(f1 - f0, I16), name=f"{p}.ffn_act", f_in=lf.gate,
                         f_out=lf.hidden, step_log2=q.SIGMOID_STEP_LOG2, range=q.SIGMOID_RANGE)
            d = self.summed(a, lw.w2, f"{p}.w2", lf.hidden, fm.x, *ch.ffn)
            x = g.op("add_i32", [x, d], x.type, name=f"{p}.x_ffn")
        g.layer = None
        if ch.root:
            h = self.norm(x, m.final_norm, "final_norm", fm.final_norm)
            wcls = m.wcls if m.wcls is not None else m.tok_emb
            cls = "wcls" if m.wcls is not None else "tok_embeddings"
            g.outputs = [self.linear(h, wcls, f"{cls}_int", fm.final_norm, fm.logits, 32, out=f"{cls}_out")]
        else:
            g.outputs = []
        return g


def build_int8_chip_graph(model: DecoderModel, formats: q.Formats, plan: PartitionPlan, chip: int) -> Graph:
    model.config.validate()
    return verify(_ChipBuilder(model, formats, plan, chip).build(), after="building a chip's int8 graph")
