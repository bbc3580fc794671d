"""Facts about operators that every stage needs, independent of kernels."""

from __future__ import annotations

# op -> index of the input that output 0 shares storage with: views (no code at all) and
# in-place updates of state (the KV-cache write). The planner gives both one buffer.
ALIASES: dict[str, int] = {
    "kv_write": 0,
    "reshape": 0,
}

# ops that are pure views: no kernel call is emitted, the output is the input's bytes
VIEWS: frozenset[str] = frozenset({"reshape"})
