"""Whose float arithmetic a node follows where the result may differ in the last bit.

Graphs read by the ONNX frontend run LayerNormalization, Erf and Gelu as onnxruntime's CPU provider computes them
(MLAS's kernels, kernels/onnx_ort.py; Gelu in its exact form only), so that a QuantizeLinear after them rounds as onnxruntime's does: the
float islands of a QDQ or QOperator model (issue 20). The frontend marks such nodes with this attribute; the
decoder kernels of llama2.c and HuggingFace models are not affected."""

from __future__ import annotations

from typing import Any

KEY, ORT = "numerics", "onnxruntime"
ORT_OPS = frozenset({"LayerNormalization", "Erf", "Gelu"})


def mark(op: str, attrs: dict[str, Any]) -> dict[str, Any]:
    """attrs, with onnxruntime's numerics asked for where `op` has an onnxruntime-exact kernel."""
    if op not in ORT_OPS or (op == "Gelu" and attrs.get("approximate", "none") != "none"):
        return attrs
    return dict(attrs, **{KEY: ORT})


def is_ort(attrs: dict[str, Any]) -> bool:
    return attrs.get(KEY) == ORT
