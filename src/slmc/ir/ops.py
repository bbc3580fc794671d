"""Facts about operators that every stage needs, independent of kernels."""

from __future__ import annotations

# ONNX views: no data moves, the output is the input's bytes in another shape (graph outputs are the
# caller's memory, so codegen copies a view into the caller's buffer when a view is a graph output)
ONNX_VIEWS: tuple[str, ...] = ("Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity")

# op -> index of the input that output 0 shares storage with: views (no code at all) and
# in-place updates of state (the KV-cache write). The planner gives both one buffer.
ALIASES: dict[str, int] = {
    "kv_write": 0,
    "kv_write_rows": 0,   # a batched step's KV write (passes/batch.py)
    "moe_predict": 0,     # the expert predictor writes its plan into the plan state (passes/expert_predict.py)
    "reshape": 0,
    **{op: 0 for op in ONNX_VIEWS},
}

# ops that are pure views: no kernel call is emitted, the output is the input's bytes
VIEWS: frozenset[str] = frozenset({"reshape", *ONNX_VIEWS})
