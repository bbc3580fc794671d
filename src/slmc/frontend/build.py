"""DecoderModel -> IR of one step over `seq` tokens (decode: seq = 1; prompt: seq > 1).

Inputs: `tokens` i32[seq] and `pos` i32[1] (position of the first token); output: `logits`
f32[seq, vocab]. The KV cache is state, [seq_len, n_kv_heads * head_dim] per layer like llama2.c, written
in place by `kv_write` (its output aliases the cache); with kv_cache="fp16" the cache holds IEEE binary16
bit patterns (u16, storage only: kv_write rounds to nearest even, attention converts back to float).
Activations are [seq, features]: at run time the C kernels take the number of valid rows `n <= seq`, so
one prompt graph serves shorter chunks. q8_layout="rows4" writes the q8 matrices in the blob order of
linear_q8_dsp.c (quant/q8.py pack_rows4) and marks their nodes with that layout.
"""

from __future__ import annotations

import numpy as np

from slmc.errors import SlmcError
from slmc.frontend.decoder import DecoderModel, Q8Tensor
from slmc.ir import DType, Graph, TensorType, Value
from slmc.ir.verify import verify  # every graph slmc builds is checked like an imported one
from slmc.quant.q8 import ensure_q8, group_for, pack_rows4

F32 = DType.F32
KV_CACHE = {"fp32": F32, "fp16": DType.U16}   # --kv-cache: the cache state's element type


def rope_tables(seq_len: int, head_dim: int, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """cos/sin [seq_len, head_dim/2], computed in float32 the way llama2.c's run.c does at run time."""
    j = np.arange(0, head_dim, 2, dtype=np.float32) / np.float32(head_dim)
    freq = (np.float32(1.0) / np.power(np.float64(theta), j.astype(np.float64)).astype(np.float32)).astype(np.float32)
    val = (np.arange(seq_len, dtype=np.float32)[:, None] * freq[None, :]).astype(np.float32)
    return np.cos(val.astype(np.float64)).astype(np.float32), np.sin(val.astype(np.float64)).astype(np.float32)


class _Builder:
    def __init__(self, model: DecoderModel, seq: int, numerics: str, kv_cache: str = "fp32",
                 q8_layout: str = "") -> None:
        if numerics not in ("fp32", "q8"):
            raise SlmcError(f"numerics '{numerics}' is not available for language models yet", "use -q fp32 or -q q8")
        if kv_cache not in KV_CACHE:
            raise SlmcError(f"unknown KV cache type '{kv_cache}'", f"use --kv-cache one of {', '.join(KV_CACHE)}")
        self.kv = KV_CACHE[kv_cache]
        self.q8_layout = q8_layout   # "rows4": linear_q8's weights in the blob order of linear_q8_dsp.c
        self.m, self.cfg, self.seq, self.numerics = model, model.config, seq, numerics
        self.g = Graph(f"{'decode' if seq == 1 else 'prefill'}")
        self.g.dynamic_rows = True
        self._quantized: dict[tuple[int, int], tuple[Value, Value]] = {}
        self._consts: dict[int, object] = {}

    def t(self, *shape: int, dtype: DType = F32) -> TensorType:
        return TensorType(tuple(shape), dtype)

    def const(self, name: str, arr: "np.ndarray | Q8Tensor") -> Value:
        """One IR constant per weight object, so a tied classifier shares the embedding's storage."""
        key = id(arr)
        if key not in self._consts:
            data = arr.dequantize() if isinstance(arr, Q8Tensor) else np.ascontiguousarray(arr, dtype=np.float32)
            self._consts[key] = self.g.add_const(name, data)
        return self._consts[key]  # type: ignore[return-value]

    def q8const(self, name: str, w: "np.ndarray | Q8Tensor", layout: str = "") -> tuple[Value, Value, int]:
        """One pair of constants per matrix and blob order (a matrix read in two orders is stored twice)."""
        key = (id(w), layout)
        if key not in self._consts:
            q = ensure_q8(w)
            qq, qs = pack_rows4(q.q, q.s) if layout == "rows4" else (q.q, q.s)
            self._consts[key] = (self.g.add_const(name + ".q", qq), self.g.add_const(name + ".s", qs), q.group)
        return self._consts[key]  # type: ignore[return-value]

    def _layout(self, w: "np.ndarray | Q8Tensor") -> str:
        """The q8 weight order of this matrix: the rows4 kernel takes groups of whole 4-byte words."""
        group = w.group if isinstance(w, Q8Tensor) else group_for(w.shape[1])
        return self.q8_layout if group % 4 == 0 else ""

    def linear(self, x: Value, w: "np.ndarray | Q8Tensor", b: np.ndarray | None, name: str) -> Value:
        n_out, k = w.shape
        bias = [self.const(name + ".b", b)] if b is not None else []
        if self.numerics == "fp32":
            return self.g.op("linear", [x, self.const(name, w), *bias], self.t(self.seq, n_out), name=f"{name}_out")
        layout = self._layout(w)
        wq, ws, group = self.q8const(name, w, layout)
        key = (id(x), group)
        if key not in self._quantized:
            node = self.g.add_node("quantize_q8", [x], [self.t(self.seq, k, dtype=DType.I8),
                                                        self.t(self.seq, k // group)],
                                   {"group": group}, out_names=[f"{x.name}_q", f"{x.name}_s"])
            self._quantized[key] = (node.outputs[0], node.outputs[1])
        xq, xs = self._quantized[key]
        return self.g.op("linear_q8", [xq, xs, wq, ws, *bias], self.t(self.seq, n_out), name=f"{name}_out",
                         group=group, **({"layout": layout} if layout else {}))

    def norm(self, x: Value, w: np.ndarray, b: np.ndarray | None, name: str) -> Value:
        if self.cfg.norm == "rms":
            return self.g.op("rmsnorm", [x, self.const(name, w)], x.type, name=f"{name}_out", eps=self.cfg.norm_eps)
        bias = self.const(name + ".b", b if b is not None else np.zeros_like(w))
        return self.g.op("layernorm", [x, self.const(name, w), bias], x.type, name=f"{name}_out",
                         eps=self.cfg.norm_eps)

    def build(self) -> Graph:
        m, cfg, g, S = self.m, self.cfg, self.g, self.seq
        tokens = g.add_input("tokens", (S,), DType.I32)
        pos = g.add_input("pos", (1,), DType.I32)
        if self.numerics == "q8":
            # a table that is also the classifier is stored once, in the order the classifier's kernel reads
            layout = self._layout(m.tok_emb) if m.wcls is None else ""
            tq, ts, group = self.q8const("tok_embeddings", m.tok_emb, layout)
            x = g.op("embedding_q8", [tq, ts, tokens], self.t(S, cfg.dim), name="x", group=group,
                     **({"layout": layout} if layout else {}))
        else:
            x = g.op("embedding", [self.const("tok_embeddings", m.tok_emb), tokens], self.t(S, cfg.dim), name="x")
        if cfg.pos == "learned":
            assert m.pos_emb is not None
            p = g.op("pos_embedding", [self.const("pos_embeddings", m.pos_emb), pos], self.t(S, cfg.dim), name="xpos")
            x = g.op("add", [x, p], x.type, name="x_in")
        else:
            cos, sin = rope_tables(cfg.seq_len, cfg.head_dim, cfg.rope_theta)
            rcos, rsin = g.add_const("rope.cos", cos), g.add_const("rope.sin", sin)
        for i, lw in enumerate(m.layers):
            g.layer, p = i, f"layers.{i}"  # the nodes below are layer i's (plan/layers.py)
            kc = g.add_state(f"key_cache_{i}", (cfg.seq_len, cfg.kv_dim), self.kv)
            vc = g.add_state(f"value_cache_{i}", (cfg.seq_len, cfg.kv_dim), self.kv)
            h = self.norm(x, lw.attn_norm, lw.attn_norm_b, f"{p}.attn_norm")
            q = self.linear(h, lw.wq, lw.bq, f"{p}.wq")
            k = self.linear(h, lw.wk, lw.bk, f"{p}.wk")
            v = self.linear(h, lw.wv, lw.bv, f"{p}.wv")
            if cfg.pos == "rope":
                rope = dict(head_dim=cfg.head_dim, interleaved=int(cfg.rope_interleaved))
                q = g.op("rope", [q, pos, rcos, rsin], q.type, name=f"{p}.q_rot", **rope)
                k = g.op("rope", [k, pos, rcos, rsin], k.type, name=f"{p}.k_rot", **rope)
            kc2 = g.op("kv_write", [kc, k, pos], kc.type, name=f"{p}.key_cache")
            vc2 = g.op("kv_write", [vc, v, pos], vc.type, name=f"{p}.value_cache")
            att = g.op("attention", [q, kc2, vc2, pos], self.t(S, cfg.q_dim), name=f"{p}.att",
                       n_heads=cfg.n_heads, n_kv_heads=cfg.n_kv_heads, head_dim=cfg.head_dim)
            o = self.linear(att, lw.wo, lw.bo, f"{p}.wo")
            x = g.op("add", [x, o], x.type, name=f"{p}.x_att")
            h = self.norm(x, lw.ffn_norm, lw.ffn_norm_b, f"{p}.ffn_norm")
            a = self.linear(h, lw.w1, lw.b1, f"{p}.w1")
            if cfg.ffn == "swiglu":
                assert lw.w3 is not None
                u = self.linear(h, lw.w3, lw.b3, f"{p}.w3")
                a = g.op("swiglu", [a, u], a.type, name=f"{p}.ffn_act")
            else:
                a = g.op("gelu", [a], a.type, name=f"{p}.ffn_act", approximate=int(cfg.ffn == "gelu_tanh"))
            d = self.linear(a, lw.w2, lw.b2, f"{p}.w2")
            x = g.op("add", [x, d], x.type, name=f"{p}.x_ffn")
        g.layer = None
        x = self.norm(x, m.final_norm, m.final_norm_b, "final_norm")
        wcls = m.wcls if m.wcls is not None else m.tok_emb
        logits = self.linear(x, wcls, m.bcls, "wcls" if m.wcls is not None else "tok_embeddings")
        g.outputs = [logits]
        return g


def build_step_graph(model: DecoderModel, seq: int = 1, numerics: str = "fp32", kv_cache: str = "fp32",
                     q8_layout: str = "") -> Graph:
    """q8_layout: the weight order the target's linear_q8 kernel reads ("" row-major; kernels.llm.q8_layout)."""
    model.config.validate()
    return verify(_Builder(model, seq, numerics, kv_cache, q8_layout).build(), after="building the step graph")
