"""DecoderModel -> the float IR of one step over `seq` tokens (decode: seq = 1; prompt: seq > 1).

The one graph builder for decoders: every numerics and partition starts from this graph. q8 and int8
are passes over it (passes/quantize_q8.py, passes/quantize_int8.py), a chip's share of a partitioned
model is another (passes/partition.py); they find each node's part in the block by its role
(ir/roles.py), stamped here with its layer.

Inputs: `tokens` i32[seq] and `pos` i32[1] (position of the first token); output: the logits
f32[seq, vocab]. The KV cache is state, [seq_len, n_kv_heads * head_dim] per layer like llama2.c, written
in place by `kv_write` (its output aliases the cache); with kv_cache="fp16" the cache holds IEEE binary16
bit patterns (u16, storage only: kv_write rounds to nearest even, attention converts back to float); with
kv_cache="int8" it holds per position and KV head a record of head_dim int8 values and their float32 scale
(i8 [seq_len, n_kv_heads * (head_dim + 2)], reference/kv_int8.py), read by integer attention.
Activations are [seq, features]: at run time the C kernels take the number of valid rows `n <= seq`, so
one prompt graph serves shorter chunks. A weight the checkpoint stored quantized (Q8Tensor) becomes a
float constant that keeps the original as its `source`, which the q8 pass uses as it is.
"""

from __future__ import annotations

import numpy as np

from slmc.errors import SlmcError
from slmc.frontend.decoder import DecoderModel, LayerWeights, MoeWeights, Q8Tensor, RopeScaling
from slmc.frontend.rope import rope_tables
from slmc.ir import DType, Graph, TensorType, Value
from slmc.ir.roles import Role
from slmc.ir.verify import verify  # every graph slmc builds is checked like an imported one

F32 = DType.F32
KV_CACHE = {"fp32": F32, "fp16": DType.U16, "int8": DType.I8}   # --kv-cache: the cache state's element type


class _Builder:
    def __init__(self, model: DecoderModel, seq: int, kv_cache: str = "fp32") -> None:
        if kv_cache not in KV_CACHE:
            raise SlmcError(f"unknown KV cache type '{kv_cache}'", f"use --kv-cache one of {', '.join(KV_CACHE)}")
        self.kv = KV_CACHE[kv_cache]
        self.m, self.cfg, self.seq = model, model.config, seq
        self.g = Graph(f"{'decode' if seq == 1 else 'prefill'}")
        self.g.dynamic_rows = True
        self._consts: dict[int, Value] = {}
        self._tables: dict[str, tuple[Value, Value]] = {}

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

    def norm(self, x: Value, w: np.ndarray | None, b: np.ndarray | None, name: str, role: Role) -> Value:
        if w is None:
            raise SlmcError(f"the model has no {name} weights", "this is a bug in the model's loader")
        if self.cfg.norm == "rms":
            return self.op(role, "rmsnorm", [x, self.const(name, w)], x.type, f"{name}_out", eps=self.cfg.norm_eps)
        bias = self.const(name + ".b", b if b is not None else np.zeros_like(w))
        return self.op(role, "layernorm", [x, self.const(name, w), bias], x.type, f"{name}_out", eps=self.cfg.norm_eps)

    def moe(self, h: Value, moe: MoeWeights, p: str) -> Value:
        """The mixture of experts: the router's logits, its top-k choice per row (ids and weights), then the
        chosen experts' SwiGLU FFNs over their stacked weights [n_experts, ...] (kernels/moe.py)."""
        cfg, S = self.cfg, self.seq
        logits = self.linear(h, moe.router, None, f"{p}.router", Role.ROUTER)
        k = cfg.top_k
        node = self.g.add_node("moe_topk", [logits], [TensorType((S, k), DType.I32), TensorType((S, k), F32)],
                               {"k": k, "renorm": int(cfg.moe_renorm)},
                               out_names=[f"{p}.expert_ids", f"{p}.expert_weights"])
        experts = [self.stacked(f"{p}.experts.{w}", getattr(moe, w)) for w in ("w1", "w3", "w2")]
        out = self.op(Role.EXPERTS, "moe_experts", [h, *node.outputs, *experts], h.type, f"{p}.w2_out",
                      k=k, n_experts=cfg.n_experts)
        if moe.shared_w1 is None:
            return out
        # the shared expert: a SwiGLU FFN every token uses, scaled by sigmoid(shared_gate @ h)
        a = self.linear(h, moe.shared_w1, None, f"{p}.shared.w1", Role.GATE)
        u = self.linear(h, moe.shared_w3, None, f"{p}.shared.w3", Role.UP)
        a = self.op(Role.FFN_ACT, "swiglu", [a, u], a.type, f"{p}.shared.act")
        d = self.linear(a, moe.shared_w2, None, f"{p}.shared.w2", Role.DOWN)
        g = self.linear(h, moe.shared_gate, None, f"{p}.shared_gate", Role.ROUTER)
        d = self.op(Role.EXPERTS, "sigmoid_mul", [d, g], d.type, f"{p}.shared_out")
        return self.op(Role.EXPERTS, "add", [out, d], out.type, f"{p}.moe_out")

    def stacked(self, name: str, ws: list) -> Value:
        """Every expert's matrix as one constant [n_experts, rows, cols]; checkpoint-quantized experts keep
        their Q8Tensors stacked as its source (passes/quantize_q8.py)."""
        if all(isinstance(w, Q8Tensor) for w in ws):
            src = Q8Tensor(np.stack([w.q for w in ws]), np.stack([w.s for w in ws]), ws[0].group)
            return self.g.add_const(name, np.stack([w.dequantize() for w in ws]), source=src)
        return self.g.add_const(name, np.stack([w.dequantize() if isinstance(w, Q8Tensor) else
                                                np.asarray(w, np.float32) for w in ws]).astype(np.float32))

    def pre_norm(self, x: Value, w: np.ndarray | None, b: np.ndarray | None, name: str, role: Role) -> Value:
        """The norm before a sublayer; none where norm_place is "post" (OLMo 2)."""
        return x if self.cfg.norm_place == "post" else self.norm(x, w, b, name, role)

    def sublayer_out(self, y: Value, w: np.ndarray | None, name: str) -> Value:
        """A sublayer's output on its way to the residual add: normed where norm_place says (OLMo 2, Gemma 2/3),
        times residual_scale (Granite). Full width on every chip (after the partition's sum)."""
        cfg = self.cfg
        if cfg.norm_place != "pre":
            y = self.norm(y, w, None, name, Role.POST_NORM)
        if cfg.residual_scale != 1.0:
            y = self.op(Role.RESIDUAL, "scale", [y], y.type, f"{y.name}_scaled", factor=cfg.residual_scale)
        return y

    def rope_tables(self, layer: int) -> tuple[Value, Value] | None:
        """The cos/sin tables layer `layer` rotates q and k by (None: no RoPE there), one pair per RoPE base."""
        cfg = self.cfg
        if not cfg.has_rope(layer):
            return None
        local = cfg.rope_local_theta and cfg.window(layer)
        key = "local" if local else "global"
        if key not in self._tables:
            from dataclasses import replace

            c = replace(cfg, rope_theta=cfg.rope_local_theta, rope_scaling_=RopeScaling()) if local else cfg
            cos, sin = rope_tables(c)  # with the model's RoPE scaling, if any; rot_dim/2 columns
            name = "rope_local" if local else "rope"
            self._tables[key] = (self.g.add_const(f"{name}.cos", cos), self.g.add_const(f"{name}.sin", sin))
        return self._tables[key]

    def attention(self, x: Value, lw: LayerWeights, i: int, p: str, pos: Value) -> Value:
        """The attention sublayer of layer i, up to (not including) its residual add."""
        cfg, g, S = self.cfg, self.g, self.seq
        width = cfg.n_kv_heads * (cfg.head_dim + 2) if self.kv is DType.I8 else cfg.kv_dim  # int8: + a binary16 scale per head
        kc = g.add_state(f"key_cache_{i}", (cfg.seq_len, width), self.kv)
        vc = g.add_state(f"value_cache_{i}", (cfg.seq_len, width), self.kv)
        h = self.pre_norm(x, lw.attn_norm, lw.attn_norm_b, f"{p}.attn_norm", Role.ATTN_NORM)
        q = self.linear(h, lw.wq, lw.bq, f"{p}.wq", Role.Q)
        k = self.linear(h, lw.wk, lw.bk, f"{p}.wk", Role.K)
        v = self.linear(h, lw.wv, lw.bv, f"{p}.wv", Role.V)
        if cfg.qk_norm != "none":  # rmsnorm per head (head_dim) or over the whole projection (OLMo 2)
            per_head = dict(head_dim=cfg.head_dim) if cfg.qk_norm == "head" else {}
            for w, name in ((lw.q_norm, "q_norm"), (lw.k_norm, "k_norm")):
                if w is None:
                    raise SlmcError(f"the model has no {p}.{name} weights", "this is a bug in the model's loader")
            q = self.op(Role.QK_NORM, "rmsnorm", [q, self.const(f"{p}.q_norm", lw.q_norm)], q.type, f"{p}.q_norm_out",
                        eps=cfg.norm_eps, **per_head)
            k = self.op(Role.QK_NORM, "rmsnorm", [k, self.const(f"{p}.k_norm", lw.k_norm)], k.type, f"{p}.k_norm_out",
                        eps=cfg.norm_eps, **per_head)
        tables = self.rope_tables(i)
        if tables is not None:
            rope = dict(head_dim=cfg.head_dim, interleaved=int(cfg.rope_interleaved),
                        **({"rot_dim": cfg.rot_dim} if cfg.rot_dim != cfg.head_dim else {}))
            q = self.op(Role.ROPE, "rope", [q, pos, *tables], q.type, f"{p}.q_rot", **rope)
            k = self.op(Role.ROPE, "rope", [k, pos, *tables], k.type, f"{p}.k_rot", **rope)
        if cfg.attn_scale:  # the kernel divides q.k by sqrt(head_dim): q carries the rest of the factor
            q = self.op(Role.QK_NORM, "scale", [q], q.type, f"{p}.q_scaled",
                        factor=float(np.float32(cfg.attn_scale) * np.sqrt(np.float32(cfg.head_dim))))
        kc2 = self.op(Role.KV_WRITE, "kv_write", [kc, k, pos], kc.type, f"{p}.key_cache")
        vc2 = self.op(Role.KV_WRITE, "kv_write", [vc, v, pos], vc.type, f"{p}.value_cache")
        extra = {**({"window": cfg.window(i)} if cfg.window(i) else {}),
                 **({"softcap": cfg.attn_softcap} if cfg.attn_softcap else {})}
        att = self.op(Role.ATTENTION, "attention", [q, kc2, vc2, pos], self.t(S, cfg.q_dim), f"{p}.att",
                      n_heads=cfg.n_heads, n_kv_heads=cfg.n_kv_heads, head_dim=cfg.head_dim, **extra)
        o = self.linear(att, lw.wo, lw.bo, f"{p}.wo", Role.O)
        return self.sublayer_out(o, lw.post_attn_norm, f"{p}.post_attn_norm")

    def ffn(self, h: Value, lw: LayerWeights, p: str) -> Value:
        """The FFN sublayer over its (normed) input h, up to its residual add."""
        cfg = self.cfg
        if lw.w1 is None or lw.w2 is None or (cfg.gated and lw.w3 is None):
            raise SlmcError(f"the model has no {p} FFN weights for its {cfg.ffn} FFN", "this is a bug in the model's loader")
        a = self.linear(h, lw.w1, lw.b1, f"{p}.w1", Role.GATE)
        if cfg.gated:
            u = self.linear(h, lw.w3, lw.b3, f"{p}.w3", Role.UP)
            if cfg.ffn == "swiglu":
                a = self.op(Role.FFN_ACT, "swiglu", [a, u], a.type, f"{p}.ffn_act")
            else:
                a = self.op(Role.FFN_ACT, "geglu", [a, u], a.type, f"{p}.ffn_act", approximate=int(cfg.ffn == "geglu_tanh"))
        elif cfg.ffn in ("relu", "silu"):
            a = self.op(Role.FFN_ACT, cfg.ffn, [a], a.type, f"{p}.ffn_act")
        else:
            a = self.op(Role.FFN_ACT, "gelu", [a], a.type, f"{p}.ffn_act", approximate=int(cfg.ffn == "gelu_tanh"))
        d = self.linear(a, lw.w2, lw.b2, f"{p}.w2", Role.DOWN)
        return self.sublayer_out(d, lw.post_ffn_norm, f"{p}.post_ffn_norm")

    def build(self) -> Graph:
        m, cfg, g, S = self.m, self.cfg, self.g, self.seq
        tokens = g.add_input("tokens", (S,), DType.I32)
        pos = g.add_input("pos", (1,), DType.I32)
        x = self.op(Role.EMBED, "embedding", [self.const("tok_embeddings", m.tok_emb), tokens], self.t(S, cfg.dim), "x")
        if cfg.embed_scale != 1.0:  # Gemma's sqrt(dim) normaliser, Granite's multiplier (a tied table stays shared)
            x = self.op(Role.EMBED, "scale", [x], x.type, "x_scaled", factor=cfg.embed_scale)
        if cfg.pos == "learned":
            assert m.pos_emb is not None
            p = self.op(Role.EMBED, "pos_embedding", [self.const("pos_embeddings", m.pos_emb), pos], x.type, "xpos")
            x = self.op(Role.EMBED, "add", [x, p], x.type, "x_in")
        for i in range(cfg.n_layers):  # the tables first, as constants of no layer
            self.rope_tables(i)
        for i, lw in enumerate(m.layers):
            g.layer, p = i, f"layers.{i}"  # the nodes below are layer i's (plan/layers.py)
            o = self.attention(x, lw, i, p, pos)
            if cfg.parallel_residual:  # GPT-J, GPT-NeoX, Phi: the FFN reads the block's input too
                h = self.norm(x, lw.ffn_norm, lw.ffn_norm_b, f"{p}.ffn_norm", Role.FFN_NORM)
                x = self.op(Role.RESIDUAL, "add", [x, o], x.type, f"{p}.x_att")
                x = self.op(Role.RESIDUAL, "add", [x, self.ffn(h, lw, p)], x.type, f"{p}.x_ffn")
                continue
            x = self.op(Role.RESIDUAL, "add", [x, o], x.type, f"{p}.x_att")
            h = self.pre_norm(x, lw.ffn_norm, lw.ffn_norm_b, f"{p}.ffn_norm", Role.FFN_NORM)
            if lw.moe is not None:
                x = self.op(Role.RESIDUAL, "add", [x, self.moe(h, lw.moe, p)], x.type, f"{p}.x_ffn")
                continue
            x = self.op(Role.RESIDUAL, "add", [x, self.ffn(h, lw, p)], x.type, f"{p}.x_ffn")
        g.layer = None
        x = self.norm(x, m.final_norm, m.final_norm_b, "final_norm", Role.FINAL_NORM)
        wcls = m.wcls if m.wcls is not None else m.tok_emb
        logits = self.linear(x, wcls, m.bcls, "wcls" if m.wcls is not None else "tok_embeddings", Role.CLASSIFIER)
        if cfg.logit_scale != 1.0:  # Granite: 1 / logits_scaling
            logits = self.op(Role.CLASSIFIER, "scale", [logits], logits.type, "logits_scaled", factor=cfg.logit_scale)
        if cfg.logit_softcap:  # Gemma 2
            logits = self.op(Role.CLASSIFIER, "softcap", [logits], logits.type, "logits_capped", cap=cfg.logit_softcap)
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
