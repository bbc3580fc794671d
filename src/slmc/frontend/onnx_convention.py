"""Whose conventions an ONNX file follows where they differ from its declared opset (--onnx-convention).

Deeploy's toolchain (QuantLib's PACT exporter writes the files, Deeploy's parsers read them) departs from
ONNX in one place that changes numbers: a Softmax without an `axis` attribute in a file of opset < 13
normalises, in ONNX, over the input flattened to 2-D from axis 1 (Softmax-1/11's coercion); Deeploy's
kernels always normalise over the last axis, and its golden outputs are computed so. slmc follows the
file's author:
- "onnx": the declared opset, as onnxruntime runs the file;
- "deeploy": Deeploy's conventions (such a Softmax over the last axis);
- "auto" (the default): "deeploy" for a file Deeploy's toolchain wrote, recognised by QuantLib's
  `PACTOps` domain among the file's opset imports or by one of Deeploy's integer operators
  (onnx_deeploy.INT_OPS) in any domain slmc reads them in; else "onnx".
report.json's "onnx" entry says which convention was followed, why, and which nodes it changed.
Works on the file's protobuf fields only (no onnx import: onnx_import.py passes the model).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from slmc.errors import SlmcError
from slmc.frontend.onnx_deeploy import DOMAIN_ALIASES, INT_OPS

CONVENTIONS = ("auto", "deeploy", "onnx")


@dataclass(frozen=True)
class Convention:
    name: str                       # "deeploy" | "onnx"
    why: str                        # how it was chosen
    applied: tuple[str, ...] = ()   # the nodes whose meaning it changed, and how

    def to_json(self) -> dict:
        return dict(convention=self.name, why=self.why, applied=list(self.applied))


def check(asked: str) -> None:
    if asked not in CONVENTIONS:
        raise SlmcError(f"unknown --onnx-convention '{asked}'", f"use one of {', '.join(CONVENTIONS)}")


def choose(model: Any, asked: str = "auto") -> Convention:
    """The convention `asked` for, or (auto) the one the file's author followed (module docstring)."""
    check(asked)
    if asked != "auto":
        return Convention(asked, f"--onnx-convention {asked}")
    if any(o.domain == "PACTOps" for o in model.opset_import):
        return Convention("deeploy", "auto: the file imports QuantLib's PACTOps domain (Deeploy's exporter)")
    op = next((n.op_type for n in model.graph.node if n.op_type in INT_OPS and n.op_type in DOMAIN_ALIASES.get(n.domain, ())),
              None)
    if op is not None:
        return Convention("deeploy", f"auto: the file holds Deeploy's integer operator {op}")
    return Convention("onnx", "auto: no sign of Deeploy's toolchain in the file")


def softmax_last_axis(convention: str, op: str, opset: int, attrs: dict[str, Any]) -> bool:
    """Deeploy's reading of a Softmax with no axis in a file of opset < 13: over the last axis."""
    return convention == "deeploy" and op == "Softmax" and opset < 13 and "axis" not in attrs
