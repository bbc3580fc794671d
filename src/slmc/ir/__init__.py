"""The one IR that flows through every stage (DESIGN.md rule 1)."""

from slmc.ir.types import DType, TensorType
from slmc.ir.graph import Graph, Node, Value, ValueKind

__all__ = ["DType", "TensorType", "Graph", "Node", "Value", "ValueKind"]
