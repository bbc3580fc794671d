"""Recognise a language-model decoder in an imported ONNX graph and read it into a `DecoderModel`.

torch.onnx exports a decoder as one full-sequence graph (token ids [1, S] -> logits [1, S, V]) with a
dynamic S; the inputs beside the ids (attention mask, logits_to_keep, position ids, past keys and values)
are bound to one unpadded sequence without past, and present.N.* outputs dropped (onnx_past.py). slmc wants
the model itself (weights and configuration), so that it builds its own decode and prompt steps over its
own static KV cache. The graph is imported at a probe length, folded (shape arithmetic, masks and RoPE
tables become constants), and then read along the residual stream:

  embedding (times a multiplier; + learned positions, from an offset) -> per layer: norm, q/k/v
  projections (separate, or one fused projection cut in three by a Split or Slices, whole or per head,
  through views: GPT-2's Conv1D as a 2-D Gemm), qk-norm, attention (the Softmax between two MatMuls, SDPA's
  Where(IsNaN(p), 0, p) guard looked through, the score scale read from the scalars on the way), output
  projection, residual add (times a multiplier), norm, feed-forward (gated by SiLU or GELU, or one
  activation: GELU, ReLU, SiLU; fused gate_up cut likewise), residual add; or the FFN beside the attention
  on the block's input (parallel residual, one or two norms) -> final norm -> classifier (tied when its
  weight is the embedding's; logits times a multiplier).

What the structure does not say (RoPE pairing, base and rotated part, the GELU form) is read from the
constants (a RoPE whose tables are not the standard ones for any base, as llama3, YaRN, LongRoPE or linear
scaling bake them, keeps the tables' own frequencies and attention factor: frontend/onnx_positions.py), and the sliding windows from the attention masks of the graph imported at the model's context
(onnx_mask.py). The reading is then VERIFIED: the graph itself runs on the numpy twins for a probe sequence
(and past a short window) and must give the logits of the reconstructed model (slmc.frontend.logits). What
is not read is a one-line error naming it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np

from slmc.errors import SlmcError
from slmc.frontend.decoder import DecoderConfig, DecoderModel, LayerWeights, RopeScaling
from slmc.frontend.onnx_blocks import (NotADecoder, attention, const, ffn, first_linear_after, linears_reading,
                                       norm_of, norms_of, picked_rows, residual, row_pick, stream_norm, views_of)
from slmc.frontend.onnx_features import embed_scale, learned_positions, qk_norm, scaled, score_scale, softcap
from slmc.frontend.onnx_mask import MASK_PROBE, MIN_MASK_PROBE, VERIFY_WINDOW, recipes, windows
from slmc.frontend.onnx_past import logits_output
from slmc.frontend.onnx_positions import data_dependent, position_tables, rope_of
from slmc.ir import Graph, Node, Value, ValueKind
from slmc.passes import run_pipeline

DEFAULT_SEQ_LEN = 2048   # RoPE models do not say how long they may run; --context caps the KV cache


def read_decoder(g: Graph, tables: list[np.ndarray], source: str, wins: list[int] | None = None) -> DecoderModel:
    """The DecoderModel of a folded decoder graph (raises NotADecoder where the structure departs); `wins`:
    each layer's window as the masks at the context show it (onnx_mask.py), which tells Gemma 3's local
    RoPE base from its global one."""
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
    escale, x = embed_scale(emb.outputs[0])
    learned = learned_positions(x, tables, seq, dim)
    pos_emb, x = learned if learned is not None else (None, x)
    layers, kinds, feats, ropes, rscales, normk = [], set(), set(), [], set(), set()
    hd = 0
    while True:
        norm = stream_norm(x)
        if norm is not None:
            heads = linears_reading(norm.out)
            pick = None if heads else row_pick(norm.out)   # the classifier reads only some positions
            heads = linears_reading(pick) if pick is not None else heads
            if len(heads) == 1 and heads[0].w.shape[0] == vocab:
                break
        elif len(linears_reading(x)) < 3:
            raise NotADecoder(f"no RMSNorm or LayerNorm reads the residual stream '{x.name}'")
        q, k, v, scores, av = attention(norm.out if norm is not None else x)  # no norm: post-norm blocks (OLMo 2)
        hd = scores.inputs[0].shape[-1]  # type: ignore[union-attr]
        if q.w.shape[0] % hd or k.w.shape[0] % hd or k.w.shape != v.w.shape:
            raise NotADecoder(f"projections {q.w.shape}, {k.w.shape}, {v.w.shape} do not split into heads of {hd}")
        qn, kn = qk_norm(q.out, hd), qk_norm(k.out, hd)
        if (qn is None) != (kn is None) or (qn and kn and qn[0] != kn[0]):
            raise NotADecoder("q and k are normed differently")
        ropes.append(rope_of(q.out, scores.inputs[0], seq, hd))  # type: ignore[arg-type]
        o = first_linear_after(av.outputs[0], set())
        scale, cap = score_scale(scores, _softmax_before(av))
        post1 = norm_of(o.out)  # the attention's output normed before its add (OLMo 2, Gemma 2/3)
        post2 = None
        try:
            ra, ya = scaled(post1.out if post1 is not None else o.out)
            x1, parallel = residual(x, ya), False
            norm2 = stream_norm(x1)
            if norm2 is None and norm is not None:
                raise NotADecoder(f"no norm reads the residual stream '{x1.name}' before the feed-forward block")
            act, w1, w3, w2 = ffn(norm2.out if norm2 is not None else x1)
            post2 = norm_of(w2.out)
            rf, yf = scaled(post2.out if post2 is not None else w2.out)
            x_next = residual(x1, yf)
            rscales.update((ra, rf))
        except NotADecoder as e:  # GPT-NeoX, Phi: the FFN reads the block's input beside the attention
            if post1 is not None or norm is None:
                raise
            try:
                norm2 = next((n for n in norms_of(x) if n.out is not norm.out), norm)
                act, w1, w3, w2 = ffn(norm2.out, frozenset(id(lin.node) for lin in (q, k, v)))
                x_next, parallel = residual(x, _sum_of(o.out, w2.out)), True
                rscales.add(1.0)
            except NotADecoder:
                raise e from None
        if (post1 is None) != (post2 is None) or (norm is None) != (norm2 is None) or (norm is None and post1 is None):
            raise NotADecoder(f"the attention and the feed-forward block after '{x.name}' are normed differently")
        place = "pre" if post1 is None else "post" if norm is None else "sandwich"
        x = x_next
        normk.update((n.kind, n.eps, n.b is not None) for n in (norm, norm2, post1, post2) if n is not None)
        kinds.add((act, hd, parallel, qn[0] if qn else "none", f"{scale:.6g}", cap, place))
        feats.add(qn[1].eps if qn else None)
        layers.append(LayerWeights(
            attn_norm=norm.w if norm else None, wq=q.w, wk=k.w, wv=v.w, wo=o.w, ffn_norm=norm2.w if norm2 else None,
            w1=w1.w, w2=w2.w, w3=None if w3 is None else w3.w, attn_norm_b=norm.b if norm else None,
            ffn_norm_b=norm2.b if norm2 else None, bq=q.b, bk=k.b, bv=v.b, bo=o.b, b1=w1.b, b2=w2.b,
            b3=None if w3 is None else w3.b, q_norm=qn[1].w if qn else None, k_norm=kn[1].w if kn else None,
            post_attn_norm=post1.w if post1 else None, post_ffn_norm=post2.w if post2 else None))
    if not layers:
        raise NotADecoder("no transformer layer before the classifier")
    if len(kinds) != 1 or normk - {(norm.kind, norm.eps, norm.b is not None)}:
        raise NotADecoder("the layers differ in their norms, activation, head size, rotary part or score scale")
    if feats - {None, norm.eps}:
        raise NotADecoder(f"the qk-norm's eps {sorted(feats - {None})} differs from the other norms' ({norm.eps:g})")
    act, hd, parallel, qkn, scale_s, cap, place = kinds.pop()
    rope, local = _ropes(ropes, wins)
    if len(rscales) != 1:
        raise NotADecoder(f"the sublayers' outputs are scaled by different factors {sorted(rscales)} before their adds")
    rot = rope[2] if rope else 0
    head = heads[0]
    lcap, logits = softcap(head.out)
    lscale, logits = scaled(logits) if not lcap else (1.0, logits)
    if g.outputs[0] not in views_of(logits):
        raise NotADecoder("the graph output is not the classifier's logits")
    if pos_emb is None and rope is None:
        raise NotADecoder("neither learned positions nor RoPE found")
    first = layers[0]
    assert first.wq is not None
    nh, nkv = first.wq.shape[0] // hd, first.wk.shape[0] // hd  # type: ignore[union-attr]
    scale = float(scale_s)
    cfg = DecoderConfig(
        dim=dim, hidden_dim=first.w1.shape[0], n_layers=len(layers), n_heads=nh, n_kv_heads=nkv,  # type: ignore
        vocab_size=vocab, seq_len=pos_emb.shape[0] if pos_emb is not None else DEFAULT_SEQ_LEN,
        norm=norm.kind, norm_eps=norm.eps, ffn=act, pos="rope" if rope else "learned",
        rope_theta=rope[0] if rope else 10000.0, rope_interleaved=rope[1] if rope else True,
        rope_scaling_=rope[3] if rope else RopeScaling(),
        head_dim_=0 if nh * hd == dim else hd, qk_norm=qkn, parallel_residual=parallel,
        rotary_dim=rot if rope and rot != hd else 0, embed_scale=escale, residual_scale=rscales.pop(),
        logit_scale=lscale, rope_layers=() if len({r is None for r in ropes}) == 1 else tuple(r is not None for r in ropes),
        norm_place=place, attn_softcap=cap, logit_softcap=lcap, rope_local_theta=local,
        attn_scale=0.0 if abs(scale * np.sqrt(hd) - 1.0) < 1e-5 else scale)
    tied = head.w.shape == tok.shape and np.array_equal(head.w, tok)
    pos_note = ("RoPE at the frequencies of the graph's own tables (a scaled RoPE)" if rope and rope[3].kind == "explicit"
                else f"RoPE (theta {cfg.rope_theta:g})" if rope else "learned positions")
    notes = [f"read from ONNX: {len(layers)} layers, {pos_note}, "
             f"{cfg.ffn}, {norm.kind} norm (eps {norm.eps:g}), {'tied' if tied else 'separate'} classifier"
             + "".join(f", {f}" for f in cfg.features())]
    if pos_emb is None:
        notes.append(f"the ONNX graph does not bound the sequence: context set to {DEFAULT_SEQ_LEN} (--context changes it)")
    return DecoderModel(cfg, tok, layers, norm.w, wcls=None if tied else head.w, final_norm_b=norm.b, bcls=head.b,
                        pos_emb=None if pos_emb is None else pos_emb.astype(np.float32), source=f"onnx:{source}",
                        notes=notes)


def _ropes(ropes: list, wins: list[int] | None) -> tuple[tuple[float, bool, int, RopeScaling] | None, float]:
    """The RoPE of the layers that have one, and the base of the windowed layers where it differs (0: none)."""
    on = {r for r in ropes if r is not None}
    if len(on) <= 1:
        return (next(iter(on)) if on else None), 0.0
    local = {r for r, w in zip(ropes, wins or []) if r is not None and w}
    rest = {r for r, w in zip(ropes, wins or []) if r is not None and not w}
    if len(local) != 1 or len(rest) != 1 or next(iter(local))[1:] != next(iter(rest))[1:]:
        raise NotADecoder(f"the layers' RoPE differs ({sorted(on)}) other than by a base of the windowed layers")
    return next(iter(rest)), next(iter(local))[0]


def _softmax_before(av: Node) -> Node:
    """The Softmax whose probabilities av weights the values by (through SDPA's NaN guard)."""
    u = av.inputs[0]
    while u is not None and u.producer is not None and u.producer.op != "Softmax":
        u = next((i for i in u.producer.inputs if i is not None and i.kind != ValueKind.CONST), None)
    if u is None or u.producer is None:
        raise NotADecoder(f"no Softmax before '{av.name}'")
    return u.producer


def _sum_of(a: Value, b: Value) -> Value:
    """The Add of the attention's and the FFN's outputs (a parallel block adds them before the residual)."""
    for u in views_of(a):
        for n in u.users:
            if n.op == "Add" and any(i in views_of(b) for i in n.inputs if i is not u):
                return n.outputs[0]
    raise NotADecoder(f"'{a.name}' and '{b.name}' are not added together (neither a sequential nor a parallel block)")


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


def recognise(at: "Callable[..., Graph]", source: str) -> DecoderModel:
    """The DecoderModel of a decoder graph; `at(seq)` imports it (not yet folded) at `seq` tokens (`at(seq,
    names)`: only what computes those values, as its outputs). Read at
    PROBE_SEQ tokens, its windows read from the masks at the model's context (onnx_mask.py), verified
    against the graph at the probe length and, for a short window, past the window."""
    from slmc.frontend.onnx_import import PROBE_SEQ

    at = _logits_only(at, source)
    graph = at(PROBE_SEQ)
    tables = position_tables(graph)
    graph = run_pipeline(graph)
    seq = min([MASK_PROBE] + [t.shape[0] for t in tables])  # positions the masks are read at: the context
    try:
        seq, wins = _masks_at(at, recipes(graph, PROBE_SEQ), seq)
        model = read_decoder(graph, tables, source, wins)
        model = _with_windows(model, wins, seq)
    except NotADecoder as e:
        raise SlmcError(f"'{source}' has a dynamic sequence axis but is not a decoder slmc recognises: {e}",
                        "export a decoder of a family slmc reads (README: families and routes), or a graph "
                        "with static shapes") from None
    model.config.validate()
    _check_finite(model, source)
    verify(graph, model, source)
    w = model.config.sliding_window
    if w and w + 3 <= VERIFY_WINDOW:  # run the graph past the window: the windowed rows must agree too
        verify(run_pipeline(at(w + 3)), model, source)
    return model


def _masks_at(at: "Callable[..., Graph]", recs: list, seq: int) -> tuple[int, list[int]]:
    """(positions, each attention's window) from the masks `recs` names, computed by the part of the graph
    that computes them at `seq` positions, or at fewer where even that is beyond slmc's size limits (the
    context is then capped at what was read)."""
    from slmc.reference.interp import run

    names = sorted({m.name for _, masks in recs for m in masks})
    while True:
        try:
            g = at(seq, names)
            values = run(g, {v.name: np.zeros(v.shape, v.dtype.np) for v in g.inputs})
            break
        except SlmcError:
            if seq <= MIN_MASK_PROBE:
                raise
            seq //= 2
    got = {v.name.removesuffix(".out"): values[v.name] for v in g.outputs}
    if set(names) - set(got):
        raise NotADecoder(f"the attention masks {sorted(set(names) - set(got))[:3]} cannot be traced in the file")
    return seq, windows(recs, got)


def _logits_only(at: "Callable[..., Graph]", source: str) -> "Callable[..., Graph]":
    """`at` with the graph's present.N.key/value outputs dropped (a decoder exported with past keys and
    values: slmc keeps its own KV cache; onnx_past.py)."""
    def only(seq: int, keep: "list[str] | None" = None) -> Graph:
        if keep is not None:  # a part of the graph with its own outputs (onnx_mask.py)
            return at(seq, keep)
        g = at(seq)
        k = logits_output([v.name.removesuffix(".out") for v in g.outputs])
        if k is None:
            raise SlmcError(f"'{source}' has a dynamic sequence axis but outputs {[v.name for v in g.outputs]}: a decoder "
                            "gives logits (and present.N.key/value beside them)", "export the logits alone, or with past "
                            "keys and values named as Optimum names them")
        g.outputs = [g.outputs[k]]
        return g
    return only


def _with_windows(model: DecoderModel, wins: list[int], seq: int) -> DecoderModel:
    """The model with the sliding windows its masks hold at `seq` positions, its context capped there."""
    cfg = model.config
    if len(wins) != cfg.n_layers:
        raise NotADecoder(f"{len(wins)} attention Softmax nodes at {seq} tokens for {cfg.n_layers} layers")
    on = sorted({w for w in wins if w})
    if len(on) > 1:
        raise NotADecoder(f"the layers have different sliding windows {on}")
    notes = list(model.notes)
    if seq < cfg.seq_len:
        notes.append(f"context capped at {seq} positions, the length its attention masks were read at")
    if on:
        notes.append(f"sliding window of {on[0]} positions read from the attention masks"
                     + ("" if all(wins) else f" (layers {[i for i, w in enumerate(wins) if w]})"))
    new = replace(cfg, seq_len=min(seq, cfg.seq_len), sliding_window=on[0] if on else 0,
                  window_layers=() if not on or all(wins) else tuple(bool(w) for w in wins))
    pos = model.pos_emb[:new.seq_len] if model.pos_emb is not None else None
    return replace(model, config=new, pos_emb=pos, notes=notes)


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
