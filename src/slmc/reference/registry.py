"""name -> numpy function. Each takes the input arrays (None for an absent optional input) and the
node's attributes, and returns the output arrays."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

RefFn = Callable[[list["np.ndarray | None"], dict[str, Any]], list[np.ndarray]]
REFERENCE: dict[str, RefFn] = {}


def reference_op(*names: str) -> Callable[[RefFn], RefFn]:
    def deco(fn: RefFn) -> RefFn:
        for n in names:
            REFERENCE[n] = fn
        return fn

    return deco


def _load_all() -> None:
    # importing the modules registers their operators
    from slmc.reference import link_ops, llm_ops, moe_ops  # noqa: F401
    from slmc.reference import int_llm_ops, onnx_index_ops, onnx_ops, onnx_tensor_ops  # noqa: F401
    from slmc.reference import deeploy_ops  # noqa: F401
    from slmc.reference import onnx_spatial_ops  # noqa: F401
    from slmc.reference import quant_ops  # noqa: F401  (QDQ and QOperator models)
    from slmc.reference import quant_lut_ops  # noqa: F401  (their lookup-table and scalar-loop operators)
    from slmc.reference import onnx_ort_ops  # noqa: F401  (onnxruntime-exact LayerNormalization, Erf, Gelu)
    from slmc.reference import batch_ops  # noqa: F401  (the per-row forms of a batched step)


_load_all()
