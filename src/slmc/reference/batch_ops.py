"""numpy twins of the per-row operators of a batched step (kernels/batch.py): the single-sequence operator's
own twin run once per row, at the row's position, on the row's KV slot (a view of the cache, so a KV write
lands in place), as model.c calls the single-sequence kernel once per row. Attributes from passes/batch.py."""

from __future__ import annotations

from typing import Any

import numpy as np

from slmc.reference.registry import REFERENCE, reference_op

PER_ROW = ("rope", "rope_i", "pos_embedding", "pos_embedding_i8", "kv_write", "attention", "attention_i")  # as kernels/batch.py


def _bits(mask: int) -> set[int]:
    return {i for i in range(mask.bit_length()) if mask >> i & 1}


def per_row(ins: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    rows_in, caches, p = _bits(a["row_inputs"]), _bits(a["cache_inputs"]), a["pos_input"]
    base = REFERENCE[a["base_op"]]
    slot = ins[-1] if caches else None
    args = ins[:-1] if caches else list(ins)
    n = args[p].shape[0]
    attrs = {k: v for k, v in a.items() if k not in ("base_op", "pos_input", "row_inputs", "cache_inputs", "slot_len")}
    shapes = a["_out_shapes"]
    outs: list[list[np.ndarray]] = [[] for _ in shapes]
    for r in range(n):
        one = list(args)
        for i in rows_in:
            one[i] = args[i][r:r + 1]
        one[p] = args[p][r:r + 1]
        for i in caches:
            s = int(slot[r])  # type: ignore[index]
            one[i] = args[i][s * a["slot_len"]:(s + 1) * a["slot_len"]]
        cache_shapes = {args[i].shape for i in caches}
        res = base(one, dict(attrs, _out_shapes=[(1, *s[1:]) if s not in cache_shapes else (a["slot_len"], *s[1:])
                                                  for s in shapes]))
        for k, o in enumerate(res):
            outs[k].append(o)
    result = []
    for k, s in enumerate(shapes):
        cache = next((args[i] for i in caches if args[i].shape == s), None)
        result.append(cache if cache is not None else np.concatenate(outs[k]) if outs[k] else np.zeros(s))
    return result


for _op in PER_ROW:
    reference_op(f"{_op}_rows")(per_row)
