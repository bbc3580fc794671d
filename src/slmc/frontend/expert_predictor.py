"""The expert predictor file (SiDA-style, issue 18): which experts each later layer's router will choose,
predicted from one early hidden state, so the expert cache can start loading them layers ahead.

Two files side by side, written by `slmc.train.predictor` and read here as untrusted input:

  predictor.json         {"format": "slmc-expert-predictor", "version": 1,
                          "input": "layer_output" (the residual stream after layer `input_layer`)
                                   | "embedding" (the token's embedding row; input_layer -1),
                          "input_layer": int, "layers": [the layers it predicts, increasing, after input_layer],
                          "hidden": 0 (linear) | N (two layers, SiLU between), "normalize": "rms", "eps": float,
                          "dim", "n_layers", "n_experts", "top_k": the model's,
                          "router_sha256": sha256 of the model's routers (router_fingerprint),
                          optional "token_layers": [0 .. input_layer], the layers before the first predicted one
                          that a per-token table predicts}
  predictor.safetensors  F32 "fc0.weight" (out0, dim), "fc0.bias" (out0,), and when hidden > 0
                          "fc1.weight" (len(layers) * n_experts, hidden), "fc1.bias"; out0 = hidden or
                          len(layers) * n_experts; with token_layers, F32 "token_plan" (vocab, len(token_layers),
                          top_k): per token id, the experts (whole numbers, distinct, best first) its layers'
                          routers chose most often in the trainer's calibration text

The math (the numpy twin the C side must match): x = h / sqrt(mean(h^2) + eps); y = fc0(x); with a hidden
layer y = fc1(silu(y)); scores = y reshaped (len(layers), n_experts); a layer's predicted experts are its
highest scores. The router fingerprint ties a predictor to the model it was trained on: the same shapes
are not enough, another model's routers choose other experts.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from slmc.errors import SlmcError
from slmc.frontend.decoder import DecoderModel
from slmc.frontend.safe_io import load_json, show
from slmc.frontend.safetensors_file import Tensors, read_header

FORMAT, VERSION = "slmc-expert-predictor", 1
INPUTS = ("layer_output", "embedding")
MAX_JSON = 64 << 10
MAX_HIDDEN = 4096
_FIX = "retrain the predictor for this model (make train-moe, or python -m slmc.train.predictor)"


@dataclass(frozen=True)
class ExpertPredictor:
    input: str                     # "layer_output" | "embedding"
    input_layer: int               # -1 for "embedding"
    layers: tuple[int, ...]        # the layers whose experts it predicts
    n_experts: int
    top_k: int
    eps: float
    fc0_w: np.ndarray              # (out0, dim)
    fc0_b: np.ndarray
    fc1_w: np.ndarray | None       # (len(layers) * n_experts, hidden), None: linear
    fc1_b: np.ndarray | None
    # the trainer's figures on stories it was not trained on (predictor.json; None where absent): the share of the
    # router's top-k experts among the predicted top-k, and predicted routing's next-token top-1 agreement
    hit_rate_heldout: float | None = None
    top1_agreement_heldout: float | None = None
    # the layers before input_layer + 1, predicted from the token id alone (the step's first action), and the table
    token_layers: tuple[int, ...] = ()
    token_plan: np.ndarray | None = None    # int32 (vocab, len(token_layers), top_k)
    token_hit_rate_heldout: float | None = None

    @property
    def hidden(self) -> int:
        return 0 if self.fc1_w is None else self.fc1_w.shape[1]

    @property
    def n_bytes(self) -> int:
        """Its weights' bytes as fp32, what an MCU stores."""
        return sum(a.nbytes for a in (self.fc0_w, self.fc0_b, self.fc1_w, self.fc1_b) if a is not None)

    def scores(self, h: np.ndarray) -> np.ndarray:
        """(len(layers), n_experts) scores for one hidden state h (dim,), or (..., len(layers), n_experts)."""
        h = np.asarray(h, np.float32)
        x = h / np.sqrt(np.mean(h * h, axis=-1, keepdims=True) + np.float32(self.eps))
        y = x @ self.fc0_w.T + self.fc0_b
        if self.fc1_w is not None:
            y = y / (1.0 + np.exp(-y))
            y = y @ self.fc1_w.T + self.fc1_b
        return y.reshape(*h.shape[:-1], len(self.layers), self.n_experts)

    def predict(self, h: np.ndarray, m: int) -> np.ndarray:
        """The m highest-scoring experts of every predicted layer, best first: (..., len(layers), m)."""
        s = self.scores(h)
        return np.argsort(-s, axis=-1, kind="stable")[..., :m]


def router_fingerprint(routers: list[np.ndarray]) -> str:
    """sha256 over every layer's router matrix (n_experts, dim) as little-endian float32, in layer order."""
    h = hashlib.sha256()
    for r in routers:
        h.update(np.ascontiguousarray(r, dtype="<f4").tobytes())
    return h.hexdigest()


def find_predictor(model_path: Path) -> Path | None:
    """predictor.safetensors inside a model folder (with its predictor.json), if any."""
    folder = Path(model_path) if Path(model_path).is_dir() else Path(model_path).parent
    p = folder / "predictor.safetensors"
    return p if p.is_file() and p.with_suffix(".json").is_file() else None


def load_predictor(path: Path, model: DecoderModel) -> ExpertPredictor:
    """The predictor at `path` (predictor.safetensors; its .json beside it), checked against `model`:
    every field, shape, dtype and layer index, and the router fingerprint. Anything else: one SlmcError."""
    path = Path(path)
    meta_path = path.with_suffix(".json")
    meta = load_json(meta_path, "expert predictor description", _FIX, MAX_JSON)
    cfg = model.config
    if not cfg.n_experts:
        raise SlmcError(f"{model.source or 'the model'} has no experts, so an expert predictor ({path}) has nothing "
                        "to predict", "drop the predictor")

    def field(name: str, kind: type) -> object:
        v = meta.get(name)
        if kind is int and (not isinstance(v, int) or isinstance(v, bool)):
            raise SlmcError(f"{meta_path}: {name} is {show(v)}, not an integer", _FIX)
        if kind is float and (not isinstance(v, (int, float)) or isinstance(v, bool) or abs(v) > 1e30
                              or not math.isfinite(v)):  # abs() first: an int past float's range stays an int
            raise SlmcError(f"{meta_path}: {name} is {show(v)}, not a number", _FIX)
        if kind is str and not isinstance(v, str):
            raise SlmcError(f"{meta_path}: {name} is {show(v)}, not a string", _FIX)
        return v

    if meta.get("format") != FORMAT or type(meta.get("version")) is not int or meta["version"] != VERSION:
        raise SlmcError(f"{meta_path} is not an slmc expert predictor (format {show(meta.get('format'))}, version "
                        f"{show(meta.get('version'))}; want {FORMAT!r} {VERSION})", _FIX)
    for name, want in (("dim", cfg.dim), ("n_layers", cfg.n_layers), ("n_experts", cfg.n_experts),
                       ("top_k", cfg.top_k)):
        got = field(name, int)
        if got != want:
            raise SlmcError(f"the expert predictor {path} was trained for another model ({name} {show(got)}, "
                            f"this model has {want})", _FIX)
    kind = field("input", str)
    if kind not in INPUTS:
        raise SlmcError(f"{meta_path}: input is {show(kind)}, not one of {', '.join(INPUTS)}", _FIX)
    src = field("input_layer", int)
    lo = -1 if kind == "embedding" else 0
    if (kind == "embedding" and src != -1) or not lo <= src <= cfg.n_layers - 2:
        raise SlmcError(f"{meta_path}: input_layer {show(src)} is not a layer whose output can predict a later one "
                        f"({'-1 for the embedding' if kind == 'embedding' else f'0..{cfg.n_layers - 2}'})", _FIX)
    layers = meta.get("layers")
    if (not isinstance(layers, list) or not layers or len(layers) > cfg.n_layers
            or not all(isinstance(x, int) and not isinstance(x, bool) for x in layers)
            or not all(src < x < cfg.n_layers for x in layers) or layers != sorted(set(layers))):
        raise SlmcError(f"{meta_path}: layers {show(layers)} is not an increasing list of layers in "
                        f"{src + 1}..{cfg.n_layers - 1}", _FIX)
    hidden = field("hidden", int)
    if not 0 <= hidden <= MAX_HIDDEN:
        raise SlmcError(f"{meta_path}: hidden {show(hidden)} is not within 0..{MAX_HIDDEN}", _FIX)
    if meta.get("normalize") != "rms":
        raise SlmcError(f"{meta_path}: normalize is {show(meta.get('normalize'))}, not 'rms'", _FIX)
    eps = float(field("eps", float))
    if not 0 < eps < 1:
        raise SlmcError(f"{meta_path}: eps {eps} is not within (0, 1)", _FIX)
    want_sha = _fingerprint(model)
    sha = field("router_sha256", str)
    if want_sha is not None and sha != want_sha:
        raise SlmcError(f"the expert predictor {path} was trained for another model (its router fingerprint "
                        f"{show(sha[:16])} is not this model's {want_sha[:16]})", _FIX)

    token_layers = meta.get("token_layers", [])
    if token_layers != [] and (kind != "layer_output" or token_layers != list(range(src + 1))):
        raise SlmcError(f"{meta_path}: token_layers {show(token_layers)} is not the layers before the predicted ones "
                        f"({list(range(src + 1)) if kind == 'layer_output' else 'none, for an embedding predictor'})",
                        _FIX)
    out = len(layers) * cfg.n_experts
    shapes = {"fc0.weight": (hidden or out, cfg.dim), "fc0.bias": (hidden or out,)}
    if hidden:
        shapes |= {"fc1.weight": (out, hidden), "fc1.bias": (out,)}
    if token_layers:
        shapes["token_plan"] = (cfg.vocab_size, len(token_layers), cfg.top_k)
    entries = read_header(path)
    if set(entries) != set(shapes):
        raise SlmcError(f"{path} holds tensors {show(sorted(entries))}, not {sorted(shapes)}", _FIX)
    for name, shape in shapes.items():
        e = entries[name]
        if e.dtype != "F32" or e.shape != shape:
            raise SlmcError(f"{path}: tensor {name} is {e.dtype} {list(e.shape)}, not F32 {list(shape)} "
                            f"(hidden {hidden}, {len(layers)} layers x {cfg.n_experts} experts, dim {cfg.dim})",
                            _FIX)
    t = Tensors(entries, path)
    w = {name: t.get(name, shape) for name, shape in shapes.items()}  # get() refuses NaN/Inf
    return ExpertPredictor(kind, src, tuple(layers), cfg.n_experts, cfg.top_k, eps, w["fc0.weight"],
                           w["fc0.bias"], w.get("fc1.weight"), w.get("fc1.bias"),
                           _rate(meta, "hit_rate_heldout", f"top{cfg.top_k}", "all"),
                           _rate(meta, "predicted_routing_heldout", "top1_agreement"), tuple(token_layers),
                           _token_plan(w["token_plan"], cfg.n_experts, path) if token_layers else None,
                           _rate(meta, "token_hit_rate_heldout"))


def _token_plan(a: np.ndarray, n_experts: int, path: Path) -> np.ndarray:
    """The per-token table as int32, each entry a whole expert index, distinct within a (token, layer)."""
    plan = a.astype(np.int64)
    srt = np.sort(plan, axis=-1)
    if (plan != a).any() or plan.min() < 0 or plan.max() >= n_experts or (srt[..., 1:] == srt[..., :-1]).any():
        raise SlmcError(f"{path}: token_plan holds entries that are not distinct expert indices 0..{n_experts - 1}", _FIX)
    return plan.astype(np.int32)


def _rate(meta: dict, *keys: str) -> float | None:
    """A figure the trainer recorded (a fraction), or None where it is absent or not one."""
    v: object = meta
    for k in keys:
        v = v.get(k) if isinstance(v, dict) else None
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1 else None


def _fingerprint(model: DecoderModel) -> str | None:
    """The model's router fingerprint; None where a router is stored quantized (no float32 bytes to hash)."""
    routers = [lw.moe.router for lw in model.layers if lw.moe is not None]
    if len(routers) != len(model.layers) or not all(isinstance(r, np.ndarray) for r in routers):
        return None
    return router_fingerprint(routers)
