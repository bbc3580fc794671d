"""Fold an inference-mode BatchNormalization into the Conv or Gemm that feeds it.

BatchNormalization at inference is y = x * s + t per channel (axis 1), s = scale / sqrt(var + epsilon),
t = bias - mean * s. Rules (float32 only; every BatchNormalization parameter a constant):
- Conv(x, W[, b]) -> BN: W'[m] = W[m] * s[m], b' = b * s + t (b = 0 when absent);
- Gemm(A, B[, C]) -> BN on its [M, N] output: B's columns (rows with transB) times s, C' = beta * C * s + t
  (beta becomes 1);
and the BatchNormalization node goes: the Conv or Gemm writes y. Only where the Conv's or Gemm's output is
read by the BatchNormalization alone and is not a graph output, and its weights (and bias) are constants;
new constants are made (a weight another node shares stays as it is), computed in float64 and rounded once.
A BatchNormalization left over runs as its own kernel (kernels/c/batch_norm_f32.c).
"""

from __future__ import annotations

import numpy as np

from slmc.ir import DType, Graph, Node, Value, ValueKind


def _const(v: Value | None) -> bool:
    return v is not None and v.kind == ValueKind.CONST


def _set_input(node: Node, i: int, new: Value) -> None:
    old = node.inputs[i] if i < len(node.inputs) else None
    if old is not None and node in old.users:
        old.users.remove(node)
    if i < len(node.inputs):
        node.inputs[i] = new
    else:
        node.inputs.append(new)
    new.users.append(node)


def _foldable(graph: Graph, bn: Node) -> Node | None:
    x = bn.inputs[0]
    if bn.op != "BatchNormalization" or x is None or x.dtype != DType.F32 or len(bn.outputs) != 1:
        return None
    if not all(_const(v) for v in bn.inputs[1:5]) or x.producer is None or len(x.users) != 1 or x in graph.outputs:
        return None
    p = x.producer
    if p.op == "Conv" and _const(p.inputs[1]) and (len(p.inputs) < 3 or p.inputs[2] is None or _const(p.inputs[2])):
        return p
    if p.op == "Gemm" and len(x.shape) == 2 and _const(p.inputs[1]) and \
            (len(p.inputs) < 3 or p.inputs[2] is None or _const(p.inputs[2])):
        return p
    return None


def run(graph: Graph) -> Graph:
    for bn in list(graph.nodes):
        p = _foldable(graph, bn)
        if p is None:
            continue
        scale, bias, mean, var = (v.data.astype(np.float64) for v in bn.inputs[1:5])  # type: ignore[union-attr]
        s = scale / np.sqrt(var + float(bn.attrs.get("epsilon", 1e-5)))
        t = bias - mean * s
        w = p.inputs[1].data.astype(np.float64)  # type: ignore[union-attr]
        b = p.inputs[2] if len(p.inputs) > 2 else None
        if p.op == "Conv":
            w = w * s.reshape((-1,) + (1,) * (w.ndim - 1))
            c = (b.data.astype(np.float64) * s if b is not None else 0) + t  # type: ignore[union-attr]
        else:
            w = w * (s.reshape(-1, 1) if p.attrs.get("transB", 0) else s.reshape(1, -1))
            beta = float(p.attrs.get("beta", 1.0))
            c = (beta * b.data.astype(np.float64) * s if b is not None else 0) + t  # type: ignore[union-attr]
            p.attrs["beta"] = 1.0
        _set_input(p, 1, graph.add_const(graph.unique(f"{p.inputs[1].name}.bn"), w.astype(np.float32)))  # type: ignore
        _set_input(p, 2, graph.add_const(graph.unique(f"{p.name}.bias.bn"), np.asarray(c, np.float64).astype(np.float32)))
        graph.replace_uses(bn.outputs[0], p.outputs[0])
        graph.remove_node(bn)
    return graph
