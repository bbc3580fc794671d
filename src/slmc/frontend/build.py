"""DecoderModel -> the float IR of one step over `seq` tokens (decode: seq = 1; prompt: seq > 1).

The one graph builder for decoders: every numerics and partition starts from this graph. q8 and int8
are passes over it (passes/quantize_q8.py, passes/quantize_int8.py), a chip's share of a partitioned
model is another (passes/partition.py); they find each node's part in the block by its role
(ir/roles.py), stamped here with its layer.

Inputs: `tokens` i32[seq] and `pos` i32[1] (position of the first token); output: the logits
f32[seq, vocab]. The KV cache is state, [seq_len, n_kv_heads * head_dim] per layer like llama2.c, written
in place by `kv_write` (its output aliases the cache); with kv_cache="fp16" the cache holds IEEE binary16
bit patterns (u16, storage only: kv_write rounds to nearest even, attention converts back to float).
Activations are [seq, features]: at run time the C kernels take the number of valid rows `n <= seq`, so
one prompt graph serves shorter chunks. A weight the checkpoint stored quantized (Q8Tensor) becomes a
float constant that keeps the original as its `source`, which the q8 pass uses as it is.
"""

from __future__ import annotations

import numpy as np

from slmc.errors import SlmcError
from slmc.frontend.decoder import DecoderModel, Q8Tensor
from slmc.frontend.rope import rope_tables
from slmc.ir import DType, Graph, TensorType, Value
from slmc.ir.roles import Role
from slmc.ir.verify import verify  # every graph slmc builds is checked like an imported one

F32 = DType.F32
KV_CACHE = {"fp32": F32, "fp16": DType.U16}   # --kv-cache: the cache state's element type


class _Builder:
    def __init__(self, model: DecoderModel, seq: int, kv_cache: str = "fp32") -> None:
        if kv_cache not in KV_CACHE:
            raise SlmcError(f"unknown KV cache type '{kv_cache}'", f"use --kv-cache one of {', '.join(KV_CACHE)}")
        self.kv = KV_CACHE[kv_cache]
        self.m, self.cfg, self.seq = model, model.config, seq
        self.g = Graph(f"{'decode' if seq == 1 else 'prefill'}")
        self.g.dynamic_rows = True
        self._consts: dict[int, Value] = {}

    def t(self, *shape: int) -> TensorType:
        return TensorType(tuple(shape), F32)

    def const(self, name: str, arr: "np.ndarray | Q8Tensor") -> Value:
        """One IR constant per weight object, so a tied classifier shares the embedding's storage."""
        if id(arr) not in self._consts:
            if isinstance(arr, Q8Tensor):
                self._consts[id(arr)] = self.g.add_const(name, arr.dequantize(), source=arr)
            else:
                self._consts[id(arr)] = self.g.add_const(name, np.ascontiguousarray(arr, dtype=np.float32))
        return self._consts[id(arr)]

    def op(self, role: Role, op: str, inputs: list[Value | None], out: TensorType, name: str, **attrs) -> Value:
        self.g.role = role
        return self.g.op(op, inputs, out, name=name, **attrs)

    def linear(self, x: Value, w: "np.ndarray | Q8Tensor", b: np.ndarray | None, name: str, role: Role) -> Value:
        bias = [self.const(name + ".b", b)] if b is not None else []
        return self.op(role, "linear", [x, self.const(name, w), *bias], self.t(self.seq, w.shape[0]), f"{name}_out")

    def norm(self, x: Value, w: np.ndarray, b: np.ndarray | None, name: str, role: Role) -> Value:
        if self.cfg.norm == "rms":
            return self.op(role, "rmsnorm", [x, self.const(name, w)], x.type, f"{name}_out", eps=self.cfg.norm_eps)
        bias = self.const(name + ".b", b if b is not None else np.zeros_like(w))
        return self.op(role, "layernorm", [x, self.const(name, w), bias], x.type, f"{name}_out", eps=self.cfg.norm_eps)

    def build(self) -> Graph:
        m, cfg, g, S = self.m, self.cfg, self.g, self.seq
        tokens = g.add_input("tokens", (S,), DType.I32)
        pos = g.add_input("pos", (1,), DType.I32)
        x = self.op(Role.EMBED, "embedding", [self.const("tok_embeddings", m.tok_emb), tokens], self.t(S, cfg.dim), "x")
        if cfg.pos == "learned":
            assert m.pos_emb is not None
            p = self.op(Role.EMBED, "pos_embedding", [self.const("pos_embeddings", m.pos_emb), pos], x.type, "xpos")
            x = self.op(Role.EMBED, "add", [x, p], x.type, "x_in")
        else:
            cos, sin = rope_tables(cfg)  # with the model's RoPE scaling, if any
            rcos, rsin = g.add_const("rope.cos", cos), g.add_const("rope.sin", sin)
        for i, lw in enumerate(m.layers):
            g.layer, p = i, f"layers.{i}"  # the nodes below are layer i's (plan/layers.py)
            kc = g.add_state(f"key_cache_{i}", (cfg.seq_len, cfg.kv_dim), self.kv)
            vc = g.add_state(f"value_cache_{i}", (cfg.seq_len, cfg.kv_dim), self.kv)
            h = self.norm(x, lw.attn_norm, lw.attn_norm_b, f"{p}.attn_norm", Role.ATTN_NORM)
            q = self.linear(h, lw.wq, lw.bq, f"{p}.wq", Role.Q)
            k = self.linear(h, lw.wk, lw.bk, f"{p}.wk", Role.K)
            v = self.linear(h, lw.wv, lw.bv, f"{p}.wv", Role.V)
            if cfg.pos == "rope":
                rope = dict(head_dim=cfg.head_dim, interleaved=int(cfg.rope_interleaved))
                q = self.op(Role.ROPE, "rope", [q, pos, rcos, rsin], q.type, f"{p}.q_rot", **rope)
                k = self.op(Role.ROPE, "rope", [k, pos, rcos, rsin], k.type, f"{p}.k_rot", **rope)
            kc2 = self.op(Role.KV_WRITE, "kv_write", [kc, k, pos], kc.type, f"{p}.key_cache")
            vc2 = self.op(Role.KV_WRITE, "kv_write", [vc, v, pos], vc.type, f"{p}.value_cache")
            att = self.op(Role.ATTENTION, "attention", [q, kc2, vc2, pos], self.t(S, cfg.q_dim), f"{p}.att",
                          n_heads=cfg.n_heads, n_kv_heads=cfg.n_kv_heads, head_dim=cfg.head_dim)
            o = self.linear(att, lw.wo, lw.bo, f"{p}.wo", Role.O)
            x = self.op(Role.RESIDUAL, "add", [x, o], x.type, f"{p}.x_att")
            h = self.norm(x, lw.ffn_norm, lw.ffn_norm_b, f"{p}.ffn_norm", Role.FFN_NORM)
            a = self.linear(h, lw.w1, lw.b1, f"{p}.w1", Role.GATE)
            if cfg.ffn == "swiglu":
                assert lw.w3 is not None
                u = self.linear(h, lw.w3, lw.b3, f"{p}.w3", Role.UP)
                a = self.op(Role.FFN_ACT, "swiglu", [a, u], a.type, f"{p}.ffn_act")
            else:
                a = self.op(Role.FFN_ACT, "gelu", [a], a.type, f"{p}.ffn_act", approximate=int(cfg.ffn == "gelu_tanh"))
            d = self.linear(a, lw.w2, lw.b2, f"{p}.w2", Role.DOWN)
            x = self.op(Role.RESIDUAL, "add", [x, d], x.type, f"{p}.x_ffn")
        g.layer = None
        x = self.norm(x, m.final_norm, m.final_norm_b, "final_norm", Role.FINAL_NORM)
        wcls = m.wcls if m.wcls is not None else m.tok_emb
        logits = self.linear(x, wcls, m.bcls, "wcls" if m.wcls is not None else "tok_embeddings", Role.CLASSIFIER)
        g.role, g.outputs = None, [logits]
        return g


def build_float_graph(model: DecoderModel, seq: int = 1, kv_cache: str = "fp32") -> Graph:
    """The float step graph: what every build of a decoder starts from."""
    model.config.validate()
    return verify(_Builder(model, seq, kv_cache).build(), after="building the step graph")


def build_step_graph(model: DecoderModel, seq: int = 1, numerics: str = "fp32", kv_cache: str = "fp32",
                     q8_layout: str = "") -> Graph:
    """The float graph, quantized to q8 where asked: q8_layout is the weight order the target's linear_q8
    kernel reads ("" row-major; kernels.llm.q8_layout). -q int8 calibrates first (passes/quantize_int8.py)."""
    if numerics not in ("fp32", "q8"):
        raise SlmcError(f"numerics '{numerics}' is not available for language models yet", "use -q fp32 or -q q8")
    g = build_float_graph(model, seq, kv_cache)
    if numerics == "q8":
        from slmc.passes import quantize_q8

        g = quantize_q8.run(g, q8_layout)
    return g
