"""Recognise a language-model decoder in an imported ONNX graph and read it into a `DecoderModel`.

torch.onnx exports a decoder as one full-sequence graph (token ids [1, S] -> logits [1, S, V]) with a
dynamic S (an attention mask beside the ids is bound to ones, a traced logits_to_keep to the last position:
onnx_import.SEQ_INPUTS; the classifier then reads that row, and verify compares it). slmc wants the model itself (weights and configuration), so that it can build its own
decode and prompt steps over a KV cache. The graph is imported at a probe length, folded (shape
arithmetic, masks and RoPE tables become constants), and then read along the residual stream:

  embedding (+ learned positions) -> per layer: norm, q/k/v projections (separate, or one fused
  projection split in three, through views: GPT-2's Conv1D as a 2-D Gemm), attention (the Softmax between
  two MatMuls, SDPA's Where(IsNaN(p), 0, p) guard looked through), output projection,
  residual add, norm, feed-forward (gate/up with SiLU, or up with GELU; down), residual add -> final
  norm -> classifier (tied when its weight is the embedding's).

What the structure does not say (RoPE pairing and base, the GELU form) is read from the constants. The
reading is then VERIFIED: the graph itself runs on the numpy twins for a probe sequence and must give
the logits of the reconstructed model (slmc.frontend.logits). Anything else is a clear error.
"""

from __future__ import annotations

import numpy as np

from slmc.errors import SlmcError
from slmc.frontend.decoder import DecoderConfig, DecoderModel, LayerWeights
from slmc.frontend.onnx_blocks import (NotADecoder, attention, const, data_dependent, ffn, first_linear_after,
                                       linears_reading, norm_of, picked_rows, position_tables, residual, rope_of,
                                       row_pick, views_of)
from slmc.ir import Graph

DEFAULT_SEQ_LEN = 2048   # RoPE models do not say how long they may run; --context caps the KV cache


def read_decoder(g: Graph, tables: list[np.ndarray], source: str) -> DecoderModel:
    """The DecoderModel of a folded decoder graph (raises NotADecoder where the structure departs)."""
    ins = [v for v in g.inputs if v.dtype.np.kind in "iu"]
    if len(g.inputs) != 1 or len(ins) != 1 or len(g.outputs) != 1:
        raise NotADecoder("a decoder takes one integer input (token ids) and gives one output (logits)")
    ids = ins[0]
    seq = ids.shape[-1]
    emb = next((n for n in g.nodes if n.op == "Gather" and const(n.inputs[0]) is not None
                and n.inputs[0].data.ndim == 2 and data_dependent(n.inputs[1])), None)  # type: ignore
    if emb is None:
        raise NotADecoder("no embedding table is gathered at the token ids")
    tok = emb.inputs[0].data.astype(np.float32)  # type: ignore[union-attr]
    vocab, dim = tok.shape
    x, pos_emb = emb.outputs[0], None
    for n in list(x.users):
        c = next((const(i) for i in n.inputs if const(i) is not None), None) if n.op == "Add" else None
        if c is not None and c.size == seq * dim:
            pos_emb = next((t for t in tables if t.shape[1] == dim and t.shape[0] >= seq
                            and np.array_equal(t[:seq], c.reshape(seq, dim))), None)
            if pos_emb is not None:
                x = n.outputs[0]
    layers, kinds = [], set()
    rope: tuple[float, bool] | None = None
    hd = 0
    while True:
        norm = norm_of(x)
        if norm is None:
            raise NotADecoder(f"no RMSNorm or LayerNorm reads the residual stream '{x.name}'")
        heads = linears_reading(norm.out)
        pick = None if heads else row_pick(norm.out)   # the classifier reads only some positions
        heads = linears_reading(pick) if pick is not None else heads
        if len(heads) == 1 and heads[0].w.shape[0] == vocab:
            break
        q, k, v, scores, av = attention(norm.out)
        hd = scores.inputs[0].shape[-1]  # type: ignore[union-attr]
        if q.w.shape[0] % hd or k.w.shape[0] % hd or k.w.shape != v.w.shape:
            raise NotADecoder(f"projections {q.w.shape}, {k.w.shape}, {v.w.shape} do not split into heads of {hd}")
        r = rope_of(q.out, scores.inputs[0], seq, hd)  # type: ignore[arg-type]
        rope = r if not layers else rope
        o = first_linear_after(av.outputs[0], set())
        x1 = residual(x, o.out)
        norm2 = norm_of(x1)
        if norm2 is None:
            raise NotADecoder(f"no norm reads the residual stream '{x1.name}' before the feed-forward block")
        act, w1, w3, w2 = ffn(norm2.out)
        x = residual(x1, w2.out)
        kinds.add((norm.kind, norm.eps, norm2.kind, norm2.eps, act, hd))
        layers.append(LayerWeights(
            attn_norm=norm.w, wq=q.w, wk=k.w, wv=v.w, wo=o.w, ffn_norm=norm2.w, w1=w1.w, w2=w2.w,
            w3=None if w3 is None else w3.w, attn_norm_b=norm.b, ffn_norm_b=norm2.b, bq=q.b, bk=k.b, bv=v.b,
            bo=o.b, b1=w1.b, b2=w2.b, b3=None if w3 is None else w3.b))
    if not layers:
        raise NotADecoder("no transformer layer before the classifier")
    if len(kinds) != 1 or {(norm.kind, norm.eps)} != {k[:2] for k in kinds} | {k[2:4] for k in kinds}:
        raise NotADecoder("the layers differ in their norms, activation or head size")
    head = heads[0]
    if g.outputs[0] not in views_of(head.out):
        raise NotADecoder("the graph output is not the classifier's logits")
    if pos_emb is None and rope is None:
        raise NotADecoder("neither learned positions nor RoPE found")
    first = layers[0]
    assert first.wq is not None
    nh, nkv = first.wq.shape[0] // hd, first.wk.shape[0] // hd  # type: ignore[union-attr]
    cfg = DecoderConfig(
        dim=dim, hidden_dim=first.w1.shape[0], n_layers=len(layers), n_heads=nh, n_kv_heads=nkv,  # type: ignore
        vocab_size=vocab, seq_len=pos_emb.shape[0] if pos_emb is not None else DEFAULT_SEQ_LEN,
        norm=norm.kind, norm_eps=norm.eps, ffn=act, pos="rope" if rope else "learned",
        rope_theta=rope[0] if rope else 10000.0, rope_interleaved=rope[1] if rope else True,
        head_dim_=0 if nh * hd == dim else hd)
    tied = head.w.shape == tok.shape and np.array_equal(head.w, tok)
    notes = [f"read from ONNX: {len(layers)} layers, {'RoPE (theta %g)' % cfg.rope_theta if rope else 'learned positions'}, "
             f"{cfg.ffn}, {norm.kind} norm (eps {norm.eps:g}), {'tied' if tied else 'separate'} classifier"]
    if pos_emb is None:
        notes.append(f"the ONNX graph does not bound the sequence: context set to {DEFAULT_SEQ_LEN} (--context changes it)")
    return DecoderModel(cfg, tok, layers, norm.w, wcls=None if tied else head.w, final_norm_b=norm.b, bcls=head.b,
                        pos_emb=None if pos_emb is None else pos_emb.astype(np.float32), source=f"onnx:{source}",
                        notes=notes)


def verify(g: Graph, model: DecoderModel, source: str) -> float:
    """Run the graph on the numpy twins for a probe sequence and compare with the model read from it;
    returns the largest logit difference."""
    from slmc.frontend.logits import reference_logits
    from slmc.reference.interp import run

    ids_v = g.inputs[0]
    seq = ids_v.shape[-1]
    ids = np.random.default_rng(1234).integers(0, model.config.vocab_size, seq)
    rows = picked_rows(g.outputs[0], seq)
    want = run(g, {ids_v.name: ids.reshape(ids_v.shape).astype(ids_v.dtype.np)})[g.outputs[0].name].reshape(len(rows), -1)
    got = reference_logits(model, [int(i) for i in ids])[rows]
    err = float(np.abs(got - want).max())
    if not err <= 1e-3 * max(1.0, float(np.abs(want).max())):
        raise SlmcError(f"'{source}' looks like a decoder, but the model slmc read from it does not reproduce it "
                        f"(logits differ by up to {err:.3g} on a probe sequence)",
                        "its attention or blocks depart from Llama/GPT-2 style; export a static-shape graph instead")
    return err


def recognise(graph: Graph, source: str) -> DecoderModel:
    """The DecoderModel of an imported (not yet folded) decoder graph, verified against the graph."""
    from slmc.passes import run_pipeline

    tables = position_tables(graph)
    graph = run_pipeline(graph)
    try:
        model = read_decoder(graph, tables, source)
    except NotADecoder as e:
        raise SlmcError(f"'{source}' has a dynamic sequence axis but is not a decoder slmc recognises: {e}",
                        "export a Llama- or GPT-2-style decoder, or a graph with static shapes") from None
    model.config.validate()
    _check_finite(model, source)
    verify(graph, model, source)
    return model


def _check_finite(model: DecoderModel, source: str) -> None:
    """NaN or Inf in a decoder's weights is an error (the generated C would give garbage ids). Only the
    weights read into the model: the graph's folded constants may hold -inf legitimately (causal masks)."""
    from pathlib import Path

    from slmc.frontend.safe_io import check_finite

    named = [("tok_embeddings", model.tok_emb), ("final_norm", model.final_norm), ("final_norm_bias", model.final_norm_b),
             ("classifier", model.wcls), ("classifier_bias", model.bcls), ("pos_embeddings", model.pos_emb)]
    named += [(f"layers.{i}.{k}", v) for i, lw in enumerate(model.layers) for k, v in vars(lw).items()]
    for name, a in named:
        if isinstance(a, np.ndarray):
            check_finite(a, name, Path(source))
