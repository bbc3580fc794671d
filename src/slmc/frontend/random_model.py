"""Seeded random-weight decoders: shapes of real models (stories15M, TinyLlama-42M) for benchmarks
and tests, without downloading anything."""

from __future__ import annotations

import numpy as np

from slmc.frontend.decoder import DecoderConfig, DecoderModel, LayerWeights, MoeWeights

SHAPES: dict[str, DecoderConfig] = {
    "stories260K": DecoderConfig(dim=64, hidden_dim=172, n_layers=5, n_heads=8, n_kv_heads=4, vocab_size=512, seq_len=512),
    "stories15M": DecoderConfig(dim=288, hidden_dim=768, n_layers=6, n_heads=6, n_kv_heads=6, vocab_size=32000, seq_len=256),
    "tinyllama42M": DecoderConfig(dim=512, hidden_dim=1376, n_layers=8, n_heads=8, n_kv_heads=8, vocab_size=32000,
                                  seq_len=1024),
}


def random_decoder(cfg: DecoderConfig, seed: int = 0, tied: bool = True, bias: bool = False) -> DecoderModel:
    """Weights ~ N(0, 1/fan_in) so activations keep a sane scale through the layers."""
    rng = np.random.default_rng(seed)

    def mat(rows: int, cols: int) -> np.ndarray:
        return (rng.standard_normal((rows, cols)) / np.sqrt(cols)).astype(np.float32)

    def vec(n: int, around: float = 1.0, spread: float = 0.1) -> np.ndarray:
        return (around + spread * rng.standard_normal(n)).astype(np.float32)

    def b(n: int) -> np.ndarray | None:
        return vec(n, 0.0, 0.02) if bias else None

    d, h, kv = cfg.dim, cfg.hidden_dim, cfg.kv_dim

    def moe() -> MoeWeights | None:
        if not cfg.n_experts:
            return None
        e, eh = cfg.n_experts, cfg.moe_hidden
        return MoeWeights(mat(e, d), [mat(eh, d) for _ in range(e)], [mat(d, eh) for _ in range(e)],
                          [mat(eh, d) for _ in range(e)])

    layers = []
    for _ in range(cfg.n_layers):
        layers.append(LayerWeights(
            attn_norm=vec(d), wq=mat(cfg.q_dim, d), wk=mat(kv, d), wv=mat(kv, d), wo=mat(d, cfg.q_dim),
            ffn_norm=vec(d), w1=None if cfg.n_experts else mat(h, d), w2=None if cfg.n_experts else mat(d, h),
            w3=mat(h, d) if cfg.gated and not cfg.n_experts else None, moe=moe(),
            attn_norm_b=b(d) if cfg.norm == "layer" else None, ffn_norm_b=b(d) if cfg.norm == "layer" else None,
            bq=b(cfg.q_dim), bk=b(kv), bv=b(kv), bo=b(d), b1=b(h), b2=b(d)))
        lw = layers[-1]  # the structural features' weights, drawn after the rest (older shapes keep their draws)
        if cfg.qk_norm != "none":
            per_head = cfg.qk_norm == "head"
            lw.q_norm, lw.k_norm = vec(cfg.head_dim if per_head else cfg.q_dim), vec(cfg.head_dim if per_head else kv)
        if cfg.norm_place != "pre":
            lw.post_attn_norm, lw.post_ffn_norm = vec(d), vec(d)
    tok = (rng.standard_normal((cfg.vocab_size, d)) * 0.5).astype(np.float32)
    pos = (rng.standard_normal((cfg.seq_len, d)) * 0.1).astype(np.float32) if cfg.pos == "learned" else None
    return DecoderModel(cfg, tok, layers, vec(d), None if tied else mat(cfg.vocab_size, d),
                        final_norm_b=b(d) if cfg.norm == "layer" else None, bcls=None, pos_emb=pos,
                        source=f"random (seed {seed})")
