"""The inputs of an exported decoder beside its token ids, and the values they are bound to at import.

slmc's decoder runs one unpadded sequence with its own static KV cache (frontend/build.py), so every
input a decoder graph takes beside the token ids [batch, seq] is bound to a constant when the graph is
imported at a probe length, and the decoder is read from what is left (onnx_decoder.py):

- attention_mask [batch, seq] (or [batch, past + seq]): ones;
- logits_to_keep: a scalar index the TorchScript exporter traces, -1 (the last position's logits);
- position_ids [batch, seq]: 0, 1, ... (past 0);
- past_key_values.N.key / .value [batch, kv_heads, past, head_dim] (the layout of Optimum and of most
  published ONNX decoders; `torch.onnx.export` of a transformers model with use_cache=True gives it too):
  empty (past 0). Their present.N.key / .value outputs are dropped: the KV cache they carry becomes slmc's
  static cache, and the graph without past is the decoder's prompt pass, which is what is read.

Plain data in, plain data out: onnx_import.py reads the file's input signatures and asks here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import numpy as np

PAST = re.compile(r"past_key_values\.(\d+)\.(key|value)$")
PRESENT = re.compile(r"present\.(\d+)\.(key|value)$")

SEQ_INPUTS: dict[str, Callable[[tuple[int, ...]], np.ndarray]] = {
    "attention_mask": lambda shape: np.ones(shape),
    "logits_to_keep": lambda shape: np.full(shape, -1),
    "position_ids": lambda shape: np.broadcast_to(np.arange(shape[-1]), shape) if shape else np.zeros(shape),
}


@dataclass(frozen=True)
class InputSig:
    name: str
    integer: bool
    dims: tuple[object, ...]      # an int, or the symbol (a string) of a dynamic axis


def bound(name: str) -> bool:
    """Whether graph input `name` is bound to a constant in a decoder."""
    return name in SEQ_INPUTS or PAST.match(name) is not None


def bound_value(name: str, shape: tuple[int, ...]) -> np.ndarray:
    return np.zeros(shape) if PAST.match(name) else SEQ_INPUTS[name](shape)


def decoder_dims(ins: list[InputSig], seq: int) -> dict[str, int]:
    """The dynamic axes of a decoder's inputs bound for `seq` tokens and no past; {} where the inputs are not
    a decoder's (one integer token input [batch, seq] and the inputs above, on the axes above)."""
    ids = [s for s in ins if not bound(s.name)]
    if len(ids) != 1 or not ids[0].integer or len(ids[0].dims) != 2 or isinstance(ids[0].dims[1], int):
        return {}
    batch, tok = ids[0].dims
    dims: dict[str, object] = {str(tok): seq}
    if not isinstance(batch, int):
        dims[str(batch)] = 1
    past = [s for s in ins if PAST.match(s.name)]
    for s in past:
        if len(s.dims) != 4 or s.dims[0] != batch or isinstance(s.dims[2], int):
            return {}
        if dims.setdefault(str(s.dims[2]), 0) != 0:
            return {}
    for s in ins:
        if s.name == "logits_to_keep" and s.dims:
            return {}
        if s.name == "position_ids" and s.dims != ids[0].dims:
            return {}
        if s.name == "attention_mask":
            if len(s.dims) != 2 or s.dims[0] != batch:
                return {}
            if s.dims[1] != tok and (not past or isinstance(s.dims[1], int) or dims.setdefault(str(s.dims[1]), seq) != seq):
                return {}
    return {k: int(v) for k, v in dims.items()}  # type: ignore[call-overload]


def logits_output(names: list[str]) -> int | None:
    """The index of the logits among a decoder graph's outputs: the only one, or the one beside present.*."""
    if len(names) == 1:
        return 0
    rest = [i for i, n in enumerate(names) if not PRESENT.match(n)]
    return rest[0] if len(rest) == 1 and len(names) > 1 else None
