"""DecoderModel + PartitionPlan -> the step graph of one chip (plan/partition.py says who owns what).

A chip's graph is frontend/build.py's step with the chip's slices of the weights and link
operators: `broadcast` of chip 0's embedded tokens, then per block the sum over the chips of Wo's
partial output and of W2's: `allreduce_sum` in fp32, the exact `fold_q8` in q8 (preceded, where a
q8 group of Wo's input spans chips, by `allreduce_max` of the group maxima; plan/partition.py).
Every chip keeps the whole residual stream and normalises it itself; only chip 0 embeds and
classifies, so only chip 0's graph has the `logits` output. The graphs of all chips
reach the same collectives in the same order (reference/multichip.py checks it).
"""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np

from slmc.frontend.build import _Builder, rope_tables
from slmc.frontend.decoder import DecoderModel, Q8Tensor
from slmc.ir import DType, Graph, Value
from slmc.ir.verify import verify  # every graph slmc builds is checked like an imported one
from slmc.quant.q8 import ensure_q8


# What the chip builders read of a partition. plan/partition.py's ChipPlan and PartitionPlan have these
# fields; they are named here rather than imported because plan/ sits above frontend/ (it slices a
# DecoderModel), so frontend/ may not import it.
class ChipShare(Protocol):
    @property
    def chip(self) -> int: ...
    @property
    def heads(self) -> tuple[int, int]: ...
    @property
    def kv_heads(self) -> tuple[int, int]: ...
    @property
    def ffn(self) -> tuple[int, int]: ...
    @property
    def root(self) -> bool: ...
    @property
    def n_heads(self) -> int: ...
    @property
    def n_kv_heads(self) -> int: ...
    @property
    def n_ffn(self) -> int: ...


class PartitionPlan(Protocol):
    @property
    def numerics(self) -> str: ...
    @property
    def chips(self) -> Sequence[ChipShare]: ...
    @property
    def wo_group(self) -> int: ...
    @property
    def w2_group(self) -> int: ...
    @property
    def q8_max_sync(self) -> bool: ...
    @property
    def wo_bias_chip(self) -> int: ...
    @property
    def w2_bias_chip(self) -> int: ...


class _ChipBuilder(_Builder):
    def __init__(self, model: DecoderModel, plan: PartitionPlan, chip: int, seq: int, kv_cache: str) -> None:
        super().__init__(model, seq, plan.numerics, kv_cache)
        self.plan, self.ch = plan, plan.chips[chip]
        self._keep: list[object] = []   # slices stay alive: the builder caches constants by id()
        self._q8: dict[int, Q8Tensor] = {}

    def _full(self, w: "np.ndarray | Q8Tensor") -> "np.ndarray | Q8Tensor":
        """The matrix as one chip would use it: quantized whole in q8, so slices keep its groups."""
        if self.numerics == "fp32":
            return w.dequantize() if isinstance(w, Q8Tensor) else np.asarray(w, np.float32)
        if id(w) not in self._q8:
            self._q8[id(w)] = ensure_q8(w)
        return self._q8[id(w)]

    def rows(self, w: "np.ndarray | Q8Tensor", r0: int, r1: int) -> "np.ndarray | Q8Tensor":
        f = self._full(w)
        out = Q8Tensor(f.q[r0:r1], f.s[r0:r1], f.group) if isinstance(f, Q8Tensor) else f[r0:r1]
        self._keep.append(out)
        return out

    def cols(self, w: "np.ndarray | Q8Tensor", c0: int, c1: int) -> np.ndarray:
        out = self._full(w)[:, c0:c1]  # type: ignore[index]
        self._keep.append(out)
        return out

    def vec(self, b: np.ndarray | None, r0: int, r1: int) -> np.ndarray | None:
        if b is None:
            return None
        out = b[r0:r1]
        self._keep.append(out)
        return out

    def collective(self, op: str, x: Value | None, width: int, name: str) -> Value:
        return self.g.op(op, [x], self.t(self.seq, width), name=name)

    def wo_partial(self, att: Value | None, lw, p: str) -> Value:
        """Wo over the chips' heads, summed over the chips (fp32: all-reduce; q8: the exact fold)."""
        ch, P, g, hd = self.ch, self.plan, self.g, self.cfg.head_dim
        c0, c1 = ch.heads[0] * hd, ch.heads[1] * hd
        if self.numerics == "fp32":
            bo = lw.bo if ch.chip == P.wo_bias_chip else None
            o = None if att is None else self.linear(att, self.cols(lw.wo, c0, c1), bo, f"{p}.wo")
            return self.collective("allreduce_sum", o, self.cfg.dim, f"{p}.wo_sum")
        amax = None
        if P.q8_max_sync:  # a group of Wo's input spans chips: agree on its maximum first
            n_groups = self.cfg.q_dim // P.wo_group
            amax = None if att is None else g.op("q8_absmax", [att], self.t(self.seq, n_groups), name=f"{p}.att_absmax",
                                                  offset=c0, group=P.wo_group)
            amax = self.collective("allreduce_max", amax, n_groups, f"{p}.att_absmax_all")
        return self.fold_q8(att, amax, lw.wo, c0, c1, P.wo_group, lw.bo, int(P.q8_max_sync), f"{p}.wo")

    def fold_q8(self, x: Value | None, amax: Value | None, w, c0: int, c1: int, group: int, b: np.ndarray | None,
                carry: int, name: str) -> Value:
        """q8 `x @ w[:, c0:c1].T` summed over the chips, exactly as one chip's linear_q8 sums it:
        int32 dots per group here (linear_q8_dots), the floats added in column order (fold_q8)."""
        g, S, m = self.g, self.seq, w.shape[0]
        ins: list[Value | None] = [None, None, None, None]
        if x is not None:
            f = self._full(w)
            assert isinstance(f, Q8Tensor) and f.group == group
            k, first, last = c1 - c0, c0 // group, (c1 - 1) // group
            if amax is None:
                node = g.add_node("quantize_q8", [x], [self.t(S, k, dtype=DType.I8), self.t(S, k // group)],
                                  {"group": group}, out_names=[f"{x.name}_q", f"{x.name}_s"])
            else:
                node = g.add_node("quantize_q8_scaled", [x, amax], [self.t(S, k, dtype=DType.I8),
                                                                     self.t(S, last - first + 1)],
                                  {"offset": c0, "group": group}, out_names=[f"{x.name}_q", f"{x.name}_s"])
            wq = g.add_const(f"{name}.q", np.ascontiguousarray(f.q[:, c0:c1]))
            ws = g.add_const(f"{name}.s", np.ascontiguousarray(f.s[:, first:last + 1]))
            dots = g.op("linear_q8_dots", [node.outputs[0], wq], self.t(S, m, last - first + 1, dtype=DType.I32),
                        name=f"{name}_dots", offset=c0, group=group)
            ins[:3] = [dots, ws, node.outputs[1]]
        if b is not None and self.ch.root:  # one chip adds the bias after the sum: so does the fold's root
            ins[3] = self.const(f"{name}.b", b)
        return g.op("fold_q8", ins, self.t(S, m), name=f"{name}_sum", k=c1 - c0, offset=c0, group=group, carry=carry)

    def build(self) -> Graph:
        m, cfg, g, S, ch = self.m, self.cfg, self.g, self.seq, self.ch
        hd = cfg.head_dim
        tokens = g.add_input("tokens", (S,), DType.I32)
        pos = g.add_input("pos", (1,), DType.I32)
        x: Value | None = None
        if ch.root:
            if self.numerics == "q8":
                tq, ts, group = self.q8const("tok_embeddings", m.tok_emb)
                x = g.op("embedding_q8", [tq, ts, tokens], self.t(S, cfg.dim), name="x", group=group)
            else:
                x = g.op("embedding", [self.const("tok_embeddings", m.tok_emb), tokens], self.t(S, cfg.dim), name="x")
            if cfg.pos == "learned":
                assert m.pos_emb is not None
                pe = g.op("pos_embedding", [self.const("pos_embeddings", m.pos_emb), pos], self.t(S, cfg.dim), name="xpos")
                x = g.op("add", [x, pe], x.type, name="x_in")
        x = self.collective("broadcast", x, cfg.dim, "x_all")
        if cfg.pos == "rope" and ch.n_heads:
            cos, sin = rope_tables(cfg.seq_len, hd, cfg.rope_theta)
            rcos, rsin = g.add_const("rope.cos", cos), g.add_const("rope.sin", sin)
        for i, lw in enumerate(m.layers):
            g.layer, p = i, f"layers.{i}"  # the nodes below are layer i's (plan/layers.py)
            att = self._attention(x, lw, p, i, pos, rcos if cfg.pos == "rope" and ch.n_heads else None,
                                  rsin if cfg.pos == "rope" and ch.n_heads else None)
            o = self.wo_partial(att, lw, p)
            x = g.op("add", [x, o], x.type, name=f"{p}.x_att")
            a = None
            if ch.n_ffn:
                f0, f1 = ch.ffn
                h = self.norm(x, lw.ffn_norm, lw.ffn_norm_b, f"{p}.ffn_norm")
                a = self.linear(h, self.rows(lw.w1, f0, f1), self.vec(lw.b1, f0, f1), f"{p}.w1")
                if cfg.ffn == "swiglu":
                    assert lw.w3 is not None
                    u = self.linear(h, self.rows(lw.w3, f0, f1), self.vec(lw.b3, f0, f1), f"{p}.w3")
                    a = g.op("swiglu", [a, u], a.type, name=f"{p}.ffn_act")
                else:
                    a = g.op("gelu", [a], a.type, name=f"{p}.ffn_act", approximate=int(cfg.ffn == "gelu_tanh"))
            if self.numerics == "q8":
                d = self.fold_q8(a, None, lw.w2, *ch.ffn, self.plan.w2_group, lw.b2, 0, f"{p}.w2")
            else:
                b2 = lw.b2 if ch.chip == self.plan.w2_bias_chip else None
                d = None if a is None else self.linear(a, self.cols(lw.w2, *ch.ffn), b2, f"{p}.w2")
                d = self.collective("allreduce_sum", d, cfg.dim, f"{p}.w2_sum")
            x = g.op("add", [x, d], x.type, name=f"{p}.x_ffn")
        g.layer = None
        if ch.root:
            x = self.norm(x, m.final_norm, m.final_norm_b, "final_norm")
            wcls = m.wcls if m.wcls is not None else m.tok_emb
            g.outputs = [self.linear(x, wcls, m.bcls, "wcls" if m.wcls is not None else "tok_embeddings")]
        else:
            g.outputs = []
        return g

    def _attention(self, x: Value, lw, p: str, i: int, pos: Value, rcos: Value | None, rsin: Value | None) -> Value | None:
        ch, cfg, g, S = self.ch, self.cfg, self.g, self.seq
        if not ch.n_heads:
            return None
        hd = cfg.head_dim
        r0, r1 = ch.heads[0] * hd, ch.heads[1] * hd
        k0, k1 = ch.kv_heads[0] * hd, ch.kv_heads[1] * hd
        kc = g.add_state(f"key_cache_{i}", (cfg.seq_len, k1 - k0), self.kv)
        vc = g.add_state(f"value_cache_{i}", (cfg.seq_len, k1 - k0), self.kv)
        h = self.norm(x, lw.attn_norm, lw.attn_norm_b, f"{p}.attn_norm")
        q = self.linear(h, self.rows(lw.wq, r0, r1), self.vec(lw.bq, r0, r1), f"{p}.wq")
        k = self.linear(h, self.rows(lw.wk, k0, k1), self.vec(lw.bk, k0, k1), f"{p}.wk")
        v = self.linear(h, self.rows(lw.wv, k0, k1), self.vec(lw.bv, k0, k1), f"{p}.wv")
        if rcos is not None:
            rope = dict(head_dim=hd, interleaved=int(cfg.rope_interleaved))
            q = g.op("rope", [q, pos, rcos, rsin], q.type, name=f"{p}.q_rot", **rope)
            k = g.op("rope", [k, pos, rcos, rsin], k.type, name=f"{p}.k_rot", **rope)
        kc2 = g.op("kv_write", [kc, k, pos], kc.type, name=f"{p}.key_cache")
        vc2 = g.op("kv_write", [vc, v, pos], vc.type, name=f"{p}.value_cache")
        return g.op("attention", [q, kc2, vc2, pos], self.t(S, r1 - r0), name=f"{p}.att",
                    n_heads=ch.n_heads, n_kv_heads=ch.n_kv_heads, head_dim=hd)


def build_chip_graph(model: DecoderModel, plan: PartitionPlan, chip: int, seq: int = 1, kv_cache: str = "fp32") -> Graph:
    model.config.validate()
    return verify(_ChipBuilder(model, plan, chip, seq, kv_cache).build(), after="building a chip's graph")
