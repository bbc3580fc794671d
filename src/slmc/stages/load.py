"""Stage 1: the model file -> Source, with the checks of options that depend on what the model is."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from slmc.config import CompileConfig
from slmc.errors import SlmcError
from slmc.frontend.decoder import DecoderModel
from slmc.frontend.load import load_model
from slmc.ir import Graph


@dataclass(frozen=True)
class Source:
    model: DecoderModel | Graph     # a language model (with --context applied), or a graph that runs as it is
    tokenizer: Path | None          # copied beside the project
    seq_len: int | None             # a language model's own context: the fit stage may keep fewer positions

    @property
    def decoder(self) -> DecoderModel | None:
        return self.model if isinstance(self.model, DecoderModel) else None


def load_source(config: CompileConfig, tokenizer: Path | None, model: DecoderModel | Graph | None = None,
                on_pass: Callable[[str, Graph], None] | None = None) -> Source:
    """`model` when the caller loaded it already (benchmarks, tests), else the file `config.model_path`;
    `on_pass` sees an imported ONNX graph after each pass."""
    if model is None:
        model = load_model(config.model_path, on_pass, config.onnx_convention)
    if config.partitioned and not isinstance(model, DecoderModel):
        raise SlmcError("--chips partitions language models only", "omit --chips for ONNX graphs")
    if not isinstance(model, DecoderModel):
        _check_graph_options(model, config)
        return Source(model, None, None)
    from slmc.frontend.tokenizer import check_vocab, find_tokenizer, load_tokenizer

    path = config.model_path
    tok = Path(tokenizer) if tokenizer else (find_tokenizer(path) if path.exists() else None)
    if tok is not None:
        check_vocab(load_tokenizer(tok), model.config.vocab_size)
    if config.numerics == "int8" and config.kv_cache is not None:
        raise SlmcError("--kv-cache chooses fp32, fp16 or int8 storage; -q int8 keeps its KV cache in int16",
                        "omit --kv-cache with -q int8")
    seq_len = model.config.seq_len
    return Source(with_context(model, config.context) if config.context is not None else model, tok, seq_len)


def _check_graph_options(graph: Graph, config: CompileConfig) -> None:
    if config.numerics not in ("fp32", "int8"):
        raise SlmcError(f"-q {config.numerics} applies to language models only", "omit -q for ONNX graphs")
    floats = [v.name for v in graph.values.values() if v.dtype.np.kind == "f"]
    if config.numerics == "int8" and floats:  # an integer graph (Deeploy's) compiles as it is; no PTQ here
        raise SlmcError(f"-q int8 quantizes language models only; this graph computes in float ('{floats[0]}')",
                        "omit -q (float graphs run in fp32), or give an integer network")
    if config.kv_cache is not None:
        raise SlmcError("--kv-cache applies to language models only", "omit --kv-cache for ONNX graphs")


def with_context(model: DecoderModel, positions: int) -> DecoderModel:
    """The model with a KV cache (and RoPE/position tables) for `positions` positions."""
    if not 1 <= positions <= model.config.seq_len:
        raise SlmcError(f"--context {positions} is outside 1..{model.config.seq_len} (the model's context)",
                        f"choose at most {model.config.seq_len}")
    pos_emb = model.pos_emb[:positions] if model.pos_emb is not None else None
    return replace(model, config=replace(model.config, seq_len=positions), pos_emb=pos_emb)
