"""onnxruntime baseline: a Llama decoder as a torch module with an explicit KV cache, exported to ONNX, and a
greedy decode loop driven from Python with one intra-op and one inter-op thread.

The module computes what slmc's fp32 graph computes (RMSNorm eps from the config, llama2.c's interleaved RoPE,
SwiGLU, grouped-query attention, tied or separate classifier), so its greedy ids can be checked against slmc's.
Two cache layouts:
  concat  past keys/values (n_kv, pos, head_dim) per layer in, (n_kv, pos + 1, head_dim) out;
  static  the whole (n_kv, seq_len, head_dim) cache in and out, written at `pos` (ScatterND), masked attention.
"""

from __future__ import annotations

import contextlib
import io
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from slmc.frontend.decoder import DecoderModel, Q8Tensor


def _dense(w: "np.ndarray | Q8Tensor") -> np.ndarray:
    return (w.dequantize() if isinstance(w, Q8Tensor) else np.asarray(w)).astype(np.float32)


def torch_decoder(model: DecoderModel, layout: str):
    import torch
    from torch import nn

    c = model.config
    assert c.norm == "rms" and c.ffn == "swiglu" and c.pos == "rope" and c.rope_interleaved
    hd, nh, nkv, L = c.head_dim, c.n_heads, c.n_kv_heads, c.n_layers
    half = hd // 2
    freqs = 1.0 / (c.rope_theta ** (np.arange(0, hd, 2)[:half] / hd))
    ang = np.outer(np.arange(c.seq_len), freqs)

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))

    class Decoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tok = nn.Parameter(t(_dense(model.tok_emb)), requires_grad=False)
            self.wcls = None if model.wcls is None else nn.Parameter(t(_dense(model.wcls)), requires_grad=False)
            self.cos = nn.Parameter(t(np.cos(ang)), requires_grad=False)
            self.sin = nn.Parameter(t(np.sin(ang)), requires_grad=False)
            self.final_norm = nn.Parameter(t(model.final_norm), requires_grad=False)
            names = ("attn_norm", "wq", "wk", "wv", "wo", "ffn_norm", "w1", "w2", "w3")
            self.w = nn.ParameterList([nn.Parameter(t(_dense(getattr(lw, n))), requires_grad=False)
                                       for lw in model.layers for n in names])

        def norm(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + c.norm_eps) * w

        def rope(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
            # x (heads, hd) with pairs (2i, 2i+1), llama2.c's convention
            x = x.reshape(-1, half, 2)
            x0, x1 = x[..., 0], x[..., 1]
            return torch.stack([x0 * cos - x1 * sin, x0 * sin + x1 * cos], dim=-1).reshape(-1, hd)

        def forward(self, token: torch.Tensor, pos: torch.Tensor, *caches: torch.Tensor):
            x = self.tok[token.reshape(1)]                       # (1, dim)
            cos = self.cos[pos].reshape(1, half)
            sin = self.sin[pos].reshape(1, half)
            out = []
            for i in range(L):
                an, wq, wk, wv, wo, fn, w1, w2, w3 = self.w[9 * i: 9 * i + 9]
                kc, vc = caches[2 * i], caches[2 * i + 1]        # (nkv, P, hd)
                h = self.norm(x, an)
                q = self.rope((h @ wq.T).reshape(nh, hd), cos, sin)
                k = self.rope((h @ wk.T).reshape(nkv, hd), cos, sin)
                v = (h @ wv.T).reshape(nkv, hd)
                if layout == "concat":
                    kc = torch.cat([kc, k.unsqueeze(1)], dim=1)
                    vc = torch.cat([vc, v.unsqueeze(1)], dim=1)
                else:
                    kc = kc.index_copy(1, pos.reshape(1), k.unsqueeze(1))
                    vc = vc.index_copy(1, pos.reshape(1), v.unsqueeze(1))
                out += [kc, vc]
                kk = kc.repeat_interleave(nh // nkv, dim=0) if nh != nkv else kc
                vv = vc.repeat_interleave(nh // nkv, dim=0) if nh != nkv else vc
                s = (q.unsqueeze(1) @ kk.transpose(1, 2)) * (1.0 / float(np.sqrt(hd)))   # (nh, 1, P)
                if layout == "static":
                    idx = torch.arange(c.seq_len).reshape(1, 1, -1)
                    s = s.masked_fill(idx > pos.reshape(1, 1, 1), float("-inf"))
                a = (torch.softmax(s, dim=-1) @ vv).reshape(1, nh * hd)
                x = x + a @ wo.T
                h = self.norm(x, fn)
                g = h @ w1.T
                x = x + ((g * torch.sigmoid(g)) * (h @ w3.T)) @ w2.T
            x = self.norm(x, self.final_norm)
            logits = x @ (self.tok if self.wcls is None else self.wcls).T
            return (logits, *out)

    return Decoder().eval()


def _cache_shape(model: DecoderModel, layout: str, p: int) -> tuple[int, int, int]:
    c = model.config
    return (c.n_kv_heads, c.seq_len if layout == "static" else p, c.head_dim)


def export(model: DecoderModel, path: Path, layout: str) -> Path:
    """Export the decoder step to ONNX (dynamo exporter; the past length is dynamic for `concat`)."""
    import torch

    m = torch_decoder(model, layout)
    L = model.config.n_layers
    p0 = 3
    caches = tuple(torch.zeros(_cache_shape(model, layout, p0)) for _ in range(2 * L))
    names = [f"{kv}_{i}" for i in range(L) for kv in ("past_key", "past_value")]
    outs = ["logits"] + [f"{kv}_{i}" for i in range(L) for kv in ("present_key", "present_value")]
    args = (torch.zeros(1, 1, dtype=torch.int64), torch.tensor(p0, dtype=torch.int64), *caches)
    dyn = None
    if layout == "concat":
        P = torch.export.Dim("past", min=0, max=model.config.seq_len)
        dyn = (None, None, tuple({1: P} for _ in caches))  # *caches is one tuple in the signature
    path = Path(path)
    # the exporter reports its progress on stdout and warns freely; the benchmark has its own progress
    with warnings.catch_warnings(), torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(m, args, str(path), input_names=["token", "pos", *names], output_names=outs,
                          dynamic_shapes=dyn, dynamo=True, external_data=False, optimize=True)
    return path


def session(path: Path):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


@dataclass
class Decode:
    ids: list[int]
    positions: int
    seconds: float
    logits: np.ndarray | None = None  # (positions, vocab) when asked for


def greedy(sess, model: DecoderModel, layout: str, steps: int, keep_logits: bool = False) -> Decode:
    """Greedy decode from BOS for `steps` positions, stopping at BOS as llama2.c and slmc's main do.
    Caches stay OrtValues between steps (no numpy round trip); the clock covers every position."""
    import onnxruntime as ort

    L = model.config.n_layers
    in_names = [i.name for i in sess.get_inputs()]
    out_names = [o.name for o in sess.get_outputs()]
    caches = [ort.OrtValue.ortvalue_from_numpy(np.zeros(_cache_shape(model, layout, 0), np.float32))
              for _ in range(2 * L)]
    token, ids, rows = 1, [], []
    pos = 0
    t0 = time.perf_counter()
    while pos < steps:
        feeds = {"token": ort.OrtValue.ortvalue_from_numpy(np.array([[token]], np.int64)),
                 "pos": ort.OrtValue.ortvalue_from_numpy(np.array(pos, np.int64))}
        feeds.update(zip(in_names[2:], caches))
        res = sess.run_with_ort_values(out_names, feeds)
        logits = res[0].numpy()
        caches = list(res[1:])
        if keep_logits:
            rows.append(logits.reshape(-1).copy())
        nxt = int(np.argmax(logits))
        pos += 1
        if nxt == 1:
            break
        ids.append(nxt)
        token = nxt
    dt = time.perf_counter() - t0
    return Decode(ids, pos, dt, np.stack(rows) if keep_logits else None)


def compare_layouts(model: DecoderModel, work: Path, steps: int = 256, runs: int = 3) -> dict[str, float]:
    """Median tokens/s of each cache layout; the benchmark uses the faster (concat, when last checked)."""
    import statistics

    out = {}
    for layout in ("concat", "static"):
        sess = session(export(model, work / f"decoder_{layout}.onnx", layout))
        greedy(sess, model, layout, steps)
        out[layout] = statistics.median(d.positions / d.seconds for d in (greedy(sess, model, layout, steps)
                                                                          for _ in range(runs)))
    return out


if __name__ == "__main__":  # `python benchmarks/ort_decode.py`: re-check the choice of layout
    import logging
    import os
    import sys

    import torch  # noqa: F401  (before quietening its loggers, which it configures on import)

    from slmc.frontend.random_model import SHAPES, random_decoder

    logging.getLogger("torch").setLevel(logging.ERROR)
    work = Path(__file__).resolve().parent / "work" / "ort_layouts"
    work.mkdir(parents=True, exist_ok=True)
    name = sys.argv[1] if len(sys.argv) > 1 else "stories15M"
    print(name, {k: round(v, 1) for k, v in compare_layouts(random_decoder(SHAPES[name], seed=0), work).items()},
          "tokens/s", f"(OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')})")
