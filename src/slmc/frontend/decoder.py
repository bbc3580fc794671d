"""A decoder-only Transformer as data: the meeting point of every language-model frontend.

llama2.c checkpoints, HuggingFace Llama folders and PyTorch-exported ONNX decoders all load into a
`DecoderModel` (configuration + numpy weights, matrices as (out, in) row-major like llama2.c and
torch.nn.Linear). `slmc.frontend.build.build_step_graph` turns one into the IR of a decode or prompt step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from slmc.frontend.safe_io import show as _show
from slmc.quant.q8 import Q8Tensor  # the decoder's quantized weights, defined beside q8's numerics


Weight = "np.ndarray | Q8Tensor"


@dataclass(frozen=True)
class RopeScaling:
    """RoPE frequency scaling as transformers' modeling_rope_utils defines it; frontend/rope.py computes the
    cos/sin tables from it. Only the kinds that are static tables at a fixed context are here (see rope.py)."""
    kind: str = "none"                    # none | linear | dynamic | llama3 | yarn | longrope | explicit
    factor: float = 1.0
    original_max_positions: int = 0       # the pretraining context (dynamic: max_position_embeddings)
    low_freq_factor: float = 1.0          # llama3
    high_freq_factor: float = 4.0         # llama3
    beta_fast: float = 32.0               # yarn
    beta_slow: float = 1.0                # yarn
    truncate: bool = True                 # yarn
    attention_factor: float = 1.0         # yarn, longrope: multiplies cos and sin
    short_factor: tuple[float, ...] = ()  # longrope: one divisor per frequency
    frequencies: tuple[float, ...] = ()   # explicit: the inverse frequencies themselves (an ONNX graph's tables)

    def validate(self, seq_len: int, head_dim: int) -> None:
        from slmc.errors import SlmcError

        fix = "the model configuration's rope_scaling is corrupt"
        if self.kind not in ROPE_SCALINGS:
            raise SlmcError(f"rope scaling {_show(self.kind)} is not one of {', '.join(ROPE_SCALINGS)}", fix)
        for name in ("factor", "low_freq_factor", "high_freq_factor", "beta_fast", "beta_slow", "attention_factor"):
            v = getattr(self, name)
            if not _is_real(v) or not (0 < float(v) < math.inf):
                raise SlmcError(f"rope scaling {name} is {_show(v)}, expected a positive finite number", fix)
        if not isinstance(self.truncate, (bool, np.bool_)):
            raise SlmcError(f"rope scaling truncate is {_show(self.truncate)}, not a boolean", fix)
        if self.kind == "llama3" and not self.high_freq_factor > self.low_freq_factor:
            raise SlmcError(f"llama3 rope scaling needs high_freq_factor > low_freq_factor, got "
                            f"{self.high_freq_factor} and {self.low_freq_factor}", fix)
        orig = self.original_max_positions
        low = 1 if self.kind in ("dynamic", "llama3", "yarn", "longrope") else 0
        if not _is_int(orig) or not low <= orig <= CAPS["seq_len"]:
            raise SlmcError(f"rope scaling original_max_positions is {_show(orig)} (expected {low}..{CAPS['seq_len']})",
                            fix)
        want = head_dim // 2 if self.kind == "longrope" else 0
        if not isinstance(self.short_factor, tuple) or len(self.short_factor) != want or not all(
                _is_real(v) and 0 < float(v) < math.inf for v in self.short_factor):
            raise SlmcError(f"rope scaling short_factor is {_show(self.short_factor)}, expected {want} positive "
                            "numbers (one per frequency)", fix)
        want = head_dim // 2 if self.kind == "explicit" else 0
        if not isinstance(self.frequencies, tuple) or len(self.frequencies) != want or not all(
                _is_real(v) and 0 < float(v) < math.inf for v in self.frequencies):
            raise SlmcError(f"rope scaling frequencies are {_show(self.frequencies)}, expected {want} positive "
                            "numbers", fix)
        if self.kind in ("dynamic", "longrope") and seq_len > orig:
            # beyond that length transformers switches the frequencies with the sequence's length, so one
            # static table would be wrong for some prefix of every longer sequence
            raise SlmcError(f"{self.kind} rope scaling is static only up to {orig} positions, the context is {seq_len}",
                            f"compile with --context {orig} or less")


@dataclass(frozen=True)
class DecoderConfig:
    dim: int
    hidden_dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    vocab_size: int
    seq_len: int
    norm: str = "rms"            # "rms" (Llama) | "layer" (GPT-2)
    norm_eps: float = 1e-5
    ffn: str = "swiglu"          # "swiglu" | "gelu" (erf) | "gelu_tanh"
    pos: str = "rope"            # "rope" | "learned"
    rope_theta: float = 10000.0
    rope_interleaved: bool = True  # llama2.c pairs (2i, 2i+1); HF's rotate_half pairs (i, i + hd/2)
    head_dim_: int = 0           # 0: dim // n_heads
    # a dataclass, so kept out of report.json's config (which takes the fields without a trailing _);
    # loaders that set it say so in the model's notes
    rope_scaling_: RopeScaling = RopeScaling()
    sliding_window: int = 0      # 0: none; else a position attends to the last this many (itself included)
    n_experts: int = 0           # > 0: every layer's FFN is a mixture of this many SwiGLU experts (LayerWeights.moe)
    top_k: int = 0               # experts each token uses
    moe_renorm: bool = True      # the top-k routing weights renormalised to sum 1 (Mixtral; OLMoE, Qwen2-MoE: config)
    expert_hidden_dim: int = 0   # an expert's hidden width; 0: hidden_dim
    shared_expert_hidden: int = 0  # > 0: a shared expert of this width besides the routed ones (Qwen2-MoE)

    # structural features of the families beyond Llama (issue 17); the defaults are the Llama block
    qk_norm: str = "none"            # none | head: RMSNorm over each head of q and k (Qwen3, Gemma 3) | full: over
    #                                  the whole q and k projections (OLMo 2); weights LayerWeights.q_norm/k_norm
    norm_place: str = "pre"          # pre | post: each sublayer's output normed before its residual add, nothing
    #                                  before it (OLMo 2) | sandwich: both (Gemma 2/3); post_attn_norm/post_ffn_norm
    parallel_residual: bool = False  # x + attn(attn_norm(x)) + ffn(ffn_norm(x)) (GPT-J, GPT-NeoX, Phi)
    rotary_dim: int = 0              # 0: RoPE rotates whole heads; else the first rotary_dim features of each head
    embed_scale: float = 1.0         # the token embedding times this (Gemma: sqrt(dim); Granite)
    residual_scale: float = 1.0      # each sublayer's output times this before its add (Granite)
    attn_scale: float = 0.0          # 0: scores q.k / sqrt(head_dim); else q.k times this (GPT-Neo, Gemma, Granite)
    logit_scale: float = 1.0         # the logits times this (Granite: 1 / logits_scaling)
    attn_softcap: float = 0.0        # 0: none; else scores -> cap * tanh(scores / cap) (Gemma 2)
    logit_softcap: float = 0.0       # the same on the logits (Gemma 2)
    window_layers: tuple[bool, ...] = ()  # the layers sliding_window applies to; (): every layer
    rope_layers: tuple[bool, ...] = ()    # the layers RoPE applies to (SmolLM3's NoPE layers: False); (): every layer
    rope_local_theta: float = 0.0    # the RoPE base of the windowed layers (Gemma 3); 0: rope_theta

    @property
    def rope_scaling(self) -> RopeScaling:
        return self.rope_scaling_

    def _validate_moe(self, fix: str) -> None:
        _moe_checks(self, fix)

    @property
    def moe_hidden(self) -> int:
        return self.expert_hidden_dim or self.hidden_dim

    @property
    def rot_dim(self) -> int:
        """The features of each head RoPE rotates."""
        return self.rotary_dim or self.head_dim

    @property
    def gated(self) -> bool:
        """The FFN has a gate and an up projection (w1, w3)."""
        return self.ffn in GATED

    def features(self) -> list[str]:
        """The structural features this block has beyond the Llama/GPT-2 blocks, named as a user knows them."""
        named = [(self.qk_norm != "none", "qk-norm"), (self.norm_place != "pre", f"{self.norm_place} norms"),
                 (self.parallel_residual, "a parallel attention+FFN residual"),
                 (bool(self.rotary_dim) and self.rotary_dim != self.head_dim, "partial rotary"),
                 (self.ffn not in ("swiglu", "gelu", "gelu_tanh"), f"the {self.ffn} FFN"),
                 (self.embed_scale != 1.0 or self.residual_scale != 1.0 or self.logit_scale != 1.0, "multipliers"),
                 (bool(self.attn_scale), "a custom attention scale"),
                 (bool(self.attn_softcap or self.logit_softcap), "soft-capping"),
                 (0 < self.sliding_window < self.seq_len, "sliding-window attention"),
                 (not all(self.rope_layers), "NoPE layers"), (bool(self.rope_local_theta), "a second RoPE base")]
        return [name for on, name in named if on]

    def window(self, layer: int) -> int:
        """Layer `layer`'s attention window: the positions a token sees, itself included (0: all before it)."""
        on = self.sliding_window < self.seq_len and (not self.window_layers or self.window_layers[layer])
        return self.sliding_window if on else 0  # a window as long as the context is full attention

    def has_rope(self, layer: int) -> bool:
        return self.pos == "rope" and (not self.rope_layers or bool(self.rope_layers[layer]))

    @property
    def head_dim(self) -> int:
        return self.head_dim_ or self.dim // self.n_heads

    @property
    def kv_dim(self) -> int:
        return self.n_kv_heads * self.head_dim

    @property
    def q_dim(self) -> int:
        return self.n_heads * self.head_dim

    def param_count(self, tied: bool = True) -> int:
        """Parameters a model of this shape holds (Python ints: exact however large a corrupt header is)."""
        d, h, q, kv, v, n = self.dim, self.hidden_dim, self.q_dim, self.kv_dim, self.vocab_size, self.n_layers
        ffn = (3 if self.gated else 2) * h * d
        if self.n_experts:
            ffn = self.n_experts * (3 * (self.expert_hidden_dim or h) * d + d) + 3 * self.shared_expert_hidden * d + d
        per_layer = 2 * d + 2 * d * q + 2 * kv * d + ffn
        return v * d * (1 if tied else 2) + n * per_layer + d

    def validate(self) -> None:
        """Refuse a shape no real model has before anything is sized from it: each field a positive int
        under its cap (2**31 from a corrupt header must not reach an allocation), heads that divide the
        width, and at most MAX_PARAMS parameters."""
        from slmc.errors import SlmcError

        fix = "the file is not a model checkpoint, or its header/configuration is corrupt"
        for name, cap in CAPS.items():
            v = getattr(self, name)
            if not _is_int(v):
                raise SlmcError(f"{name} is {_show(v)}, not an integer", fix)
            if not 1 <= v <= cap:
                raise SlmcError(f"implausible {name} {v} (expected 1..{cap})", fix)
        if not _is_int(self.head_dim_) or not 0 <= self.head_dim_ <= MAX_HEAD_DIM:
            raise SlmcError(f"implausible head_dim {_show(self.head_dim_)} (expected 1..{MAX_HEAD_DIM})", fix)
        if not self.head_dim_ and self.dim % self.n_heads:
            # dim // n_heads would silently drop columns, or be 0 when n_heads > dim
            raise SlmcError(f"dim {self.dim} is not a multiple of n_heads {self.n_heads}", fix)
        if self.n_heads % self.n_kv_heads:
            raise SlmcError(f"n_heads {self.n_heads} is not a multiple of n_kv_heads {self.n_kv_heads}", fix)
        for name, allowed in (("norm", NORMS), ("ffn", FFNS), ("pos", POSITIONS)):
            if getattr(self, name) not in allowed:
                raise SlmcError(f"{name} {_show(getattr(self, name))} is not one of {', '.join(allowed)}", fix)
        if not isinstance(self.rope_interleaved, (bool, np.bool_)):
            raise SlmcError(f"rope_interleaved is {_show(self.rope_interleaved)}, not a boolean", fix)
        for name, low in (("norm_eps", 0.0), ("rope_theta", 1e-30)):
            v = getattr(self, name)
            if not _is_real(v) or not (low <= float(v) < math.inf):
                raise SlmcError(f"{name} is {_show(v)}, expected a finite number >= {low:g}", fix)
        if self.pos == "rope" and self.head_dim % 2:
            raise SlmcError(f"head size {self.head_dim} is odd, RoPE needs pairs", "check the model configuration")
        if not isinstance(self.rope_scaling_, RopeScaling):
            raise SlmcError(f"rope_scaling is {_show(self.rope_scaling_)}, not a RopeScaling", fix)
        self.rope_scaling_.validate(self.seq_len, self.head_dim)
        if self.rope_scaling_.kind != "none" and self.pos != "rope":
            raise SlmcError(f"rope scaling {self.rope_scaling_.kind} is set on a model without RoPE", fix)
        if not _is_int(self.sliding_window) or not 0 <= self.sliding_window <= CAPS["seq_len"]:
            raise SlmcError(f"implausible sliding_window {_show(self.sliding_window)} (expected 0..{CAPS['seq_len']})",
                            fix)
        self._validate_moe(fix)
        _feature_checks(self, fix)
        n = self.param_count(tied=False)
        if n > MAX_PARAMS:
            raise SlmcError(f"the configuration implies {n} parameters, more than the {MAX_PARAMS} slmc reads", fix)


# Caps that admit every real small LM (Llama 3.2 1B/3B: dim 2048/3072, hidden 8192, vocab 128256, 131072
# positions) with room to spare, and refuse the values a corrupt header produces (2**31, -1 read unsigned).
CAPS: dict[str, int] = {"dim": 1 << 16, "hidden_dim": 1 << 18, "n_layers": 1 << 10, "n_heads": 1 << 10,
                        "n_kv_heads": 1 << 10, "vocab_size": 1 << 20, "seq_len": 1 << 18}
MAX_HEAD_DIM = 1 << 12
MAX_PARAMS = 4 * 10**9
def _moe_checks(cfg: "DecoderConfig", fix: str) -> None:
    from slmc.errors import SlmcError

    for name in ("n_experts", "top_k", "expert_hidden_dim", "shared_expert_hidden"):
        v = getattr(cfg, name)
        if not _is_int(v) or not 0 <= v <= CAPS.get(name, MAX_EXPERTS):
            raise SlmcError(f"implausible {name} {_show(v)}", fix)
    if cfg.n_experts and not 1 <= cfg.top_k <= cfg.n_experts:
        raise SlmcError(f"top_k {cfg.top_k} is not within 1..{cfg.n_experts} experts", fix)
    if cfg.n_experts and cfg.ffn != "swiglu":
        raise SlmcError(f"experts with the {cfg.ffn} activation are not supported (SwiGLU experts are)", fix)
    if not isinstance(cfg.moe_renorm, (bool, np.bool_)):
        raise SlmcError(f"moe_renorm is {_show(cfg.moe_renorm)}, not a boolean", fix)


MAX_EXPERTS = 256
NORMS = ("rms", "layer")
GATED = ("swiglu", "geglu", "geglu_tanh")     # act(gate) * up: SiLU (Llama), GELU (erf), GELU (tanh: Gemma)
FFNS = (*GATED, "gelu", "gelu_tanh", "relu", "silu")
QK_NORMS = ("none", "head", "full")
NORM_PLACES = ("pre", "post", "sandwich")


def _feature_checks(cfg: "DecoderConfig", fix: str) -> None:
    """The structural features' fields: known names, finite positive factors, per-layer lists of n_layers."""
    from slmc.errors import SlmcError

    for name, allowed in (("qk_norm", QK_NORMS), ("norm_place", NORM_PLACES)):
        if getattr(cfg, name) not in allowed:
            raise SlmcError(f"{name} {_show(getattr(cfg, name))} is not one of {', '.join(allowed)}", fix)
    if not isinstance(cfg.parallel_residual, (bool, np.bool_)):
        raise SlmcError(f"parallel_residual is {_show(cfg.parallel_residual)}, not a boolean", fix)
    for name, low in (("embed_scale", 1e-30), ("residual_scale", 1e-30), ("logit_scale", 1e-30),
                      ("attn_scale", 0.0), ("attn_softcap", 0.0), ("logit_softcap", 0.0), ("rope_local_theta", 0.0)):
        v = getattr(cfg, name)
        if not _is_real(v) or not (low <= float(v) < math.inf):
            raise SlmcError(f"{name} is {_show(v)}, expected a finite number >= {low:g}", fix)
    rd = cfg.rotary_dim
    if not _is_int(rd) or not 0 <= rd <= cfg.head_dim or rd % 2:
        raise SlmcError(f"rotary_dim is {_show(rd)}, expected an even number of features up to the head size "
                        f"{cfg.head_dim} (0: all)", fix)
    for name in ("window_layers", "rope_layers"):
        v = getattr(cfg, name)
        if not isinstance(v, tuple) or len(v) not in (0, cfg.n_layers) or not all(
                isinstance(b, (bool, np.bool_)) for b in v):
            raise SlmcError(f"{name} is {_show(v)}, expected one true/false per layer ({cfg.n_layers})", fix)
POSITIONS = ("rope", "learned")
ROPE_SCALINGS = ("none", "linear", "dynamic", "llama3", "yarn", "longrope", "explicit")


def _is_int(v: object) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_real(v: object) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


@dataclass
class LayerWeights:
    attn_norm: np.ndarray | None           # None only where norm_place is "post" (no norm before a sublayer)
    wq: "np.ndarray | Q8Tensor"
    wk: "np.ndarray | Q8Tensor"
    wv: "np.ndarray | Q8Tensor"
    wo: "np.ndarray | Q8Tensor"
    ffn_norm: np.ndarray | None
    w1: "np.ndarray | Q8Tensor | None"     # gate (SwiGLU) or up-projection (GELU); None in an MoE layer
    w2: "np.ndarray | Q8Tensor | None"     # down-projection; None in an MoE layer
    w3: "np.ndarray | Q8Tensor | None" = None  # up (SwiGLU only)
    attn_norm_b: np.ndarray | None = None
    ffn_norm_b: np.ndarray | None = None
    bq: np.ndarray | None = None
    bk: np.ndarray | None = None
    bv: np.ndarray | None = None
    bo: np.ndarray | None = None
    b1: np.ndarray | None = None
    b2: np.ndarray | None = None
    b3: np.ndarray | None = None
    q_norm: np.ndarray | None = None       # qk-norm weights: [head_dim] (qk_norm "head") or [q_dim] ("full")
    k_norm: np.ndarray | None = None       # [head_dim] or [kv_dim]
    post_attn_norm: np.ndarray | None = None  # norm_place post/sandwich: the norm of attention's output
    post_ffn_norm: np.ndarray | None = None   # ... and of the FFN's
    moe: "MoeWeights | None" = None        # a mixture-of-experts FFN in place of w1/w2/w3


@dataclass
class MoeWeights:
    """A mixture-of-experts FFN (Mixtral's block_sparse_moe): router logits = h @ router.T, softmax over
    the experts, the top_k kept (renormalised where the config says), out = sum of weight * expert(h)
    with expert(h) = w2 @ (silu(w1 @ h) * (w3 @ h))."""
    router: "np.ndarray | Q8Tensor"        # (n_experts, dim)
    w1: list                               # per expert (expert_hidden, dim): gate
    w2: list                               # per expert (dim, expert_hidden): down
    w3: list                               # per expert (expert_hidden, dim): up
    # a shared expert every token uses, scaled by sigmoid(shared_gate @ h) (Qwen2-MoE); None: none
    shared_w1: "np.ndarray | Q8Tensor | None" = None   # (shared_hidden, dim)
    shared_w2: "np.ndarray | Q8Tensor | None" = None   # (dim, shared_hidden)
    shared_w3: "np.ndarray | Q8Tensor | None" = None   # (shared_hidden, dim)
    shared_gate: "np.ndarray | Q8Tensor | None" = None  # (1, dim)


@dataclass
class DecoderModel:
    config: DecoderConfig
    tok_emb: "np.ndarray | Q8Tensor"        # (vocab, dim)
    layers: list[LayerWeights]
    final_norm: np.ndarray
    wcls: "np.ndarray | Q8Tensor | None" = None  # None: tied to tok_emb
    final_norm_b: np.ndarray | None = None
    bcls: np.ndarray | None = None
    pos_emb: np.ndarray | None = None      # (seq_len, dim) for learned positions
    source: str = ""
    notes: list[str] = field(default_factory=list)

    def n_params(self) -> int:
        total = 0
        for v in self.__dict__.values():
            total += _count(v)
        for layer in self.layers:
            for v in layer.__dict__.values():
                total += _count(v)
        return total


def _count(v: object) -> int:
    if isinstance(v, np.ndarray):
        return int(v.size)
    if isinstance(v, Q8Tensor):
        return int(v.q.size)
    if isinstance(v, list):
        return sum(_count(x) for x in v)
    if isinstance(v, MoeWeights):
        return sum(_count(x) for x in v.__dict__.values())
    return 0
