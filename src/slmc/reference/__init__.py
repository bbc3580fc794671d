"""The numpy twin of every operator, and an interpreter of the IR: the oracle at every stage."""

from slmc.reference.registry import REFERENCE, reference_op

__all__ = ["REFERENCE", "reference_op"]
