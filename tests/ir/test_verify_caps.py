"""ir/verify.py's size caps: a graph whose tensors together exceed MAX_GRAPH_BYTES is refused in one line,
and a model of the largest real size users bring (SmolLM2-135M: 0.54 GB of weights plus a 0.38 GB KV cache at
its 8,192 positions) stays under it, so that it reaches the fit step's report instead (issue 17). The states
here are shapes only: nothing of their size is allocated."""

from __future__ import annotations

import pytest

from slmc.errors import SlmcError
from slmc.ir import DType, Graph, TensorType
from slmc.ir.verify import MAX_GRAPH_BYTES, MAX_TENSOR_BYTES, verify

F32 = DType.F32


def _graph_of(total_bytes: int) -> Graph:
    """A graph of float32 KV-cache-like states adding up to `total_bytes` (each under MAX_TENSOR_BYTES)."""
    g = Graph("caps")
    x = g.add_input("x", (4,), F32)
    per = MAX_TENSOR_BYTES // 2
    i = 0
    while total_bytes > 0:
        n = min(per, total_bytes)
        g.add_state(f"kv{i}", (n // 4,), F32)
        total_bytes -= n
        i += 1
    g.outputs.append(g.op("relu", [x], TensorType((4,), F32)))
    return g


def test_smollm2_135m_sized_graph_passes_the_cap() -> None:
    weights, kv = 134_515_008 * 4, 30 * 2 * 8192 * 192 * 4     # SmolLM2-135M: params x fp32; K and V per layer
    verify(_graph_of(weights + kv))


def test_graph_over_the_cap_is_refused_in_one_line() -> None:
    with pytest.raises(SlmcError) as e:
        verify(_graph_of(MAX_GRAPH_BYTES + 16))
    msg = str(e.value)
    assert "beyond slmc's limit" in msg and f"{MAX_GRAPH_BYTES:,}" in msg and "\n" not in msg
