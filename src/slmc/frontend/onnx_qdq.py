"""QDQ ONNX models -> the QOperator form, on the ModelProto before import (onnx_import.py calls `fuse`), so
one lowering (onnx_qlinear.py) serves both of onnxruntime's quantization formats.

The rules are the ones onnxruntime's default session (graph optimization level ALL) applies, so that the
compiled C computes what users run:
1. ReluQuantFusion / ClipQuantFusion: a Relu (Clip) whose only reader is a QuantizeLinear whose saturation
   already does what it does (zero point at the type's minimum; a Clip range holding the Q range) is dropped.
2. The QDQ selectors (qdq_selectors.cc) and their actions: DequantizeLinear on each input -> Conv / MatMul /
   Gemm / Add / Mul / GlobalAveragePool / AveragePool / LeakyRelu / Sigmoid / Softmax -> a single QuantizeLinear
   (Gemm: or none, a float output) becomes QLinearConv / QLinearMatMul / com.microsoft QGemm / QLinearAdd /
   QLinearMul / QLinear<op> of the unary ones (their attributes kept, Softmax's opset added), when the
   activation's and the output's scale and zero point are constants of one value, input and output of one
   8-bit type, the weights constant and per tensor or per output channel (MatMul's B may be computed, per
   tensor), a bias (Conv, Gemm) the int32 DequantizeLinear the quantizer writes.
3. DropQDQNodes: DequantizeLinear -> Reshape / Flatten / Transpose / Squeeze / Unsqueeze / MaxPool / Slice ->
   QuantizeLinear with the same constant scale and zero point runs the operator on the 8-bit data.
Anything else keeps its QuantizeLinear and DequantizeLinear nodes (standalone kernels) around a float
operator, as onnxruntime runs it. DequantizeLinear nodes left unread are removed.

The 8-bit types the rules compare are the ones onnxruntime sees on x86-64, where int8 activations are not
allowed into QLinearConv / QLinearMatMul (QDQIsInt8Allowed false): EnsureUniqueDQForNodeUnit first gives each
consumer of a DequantizeLinear its own copy, then QDQS8ToU8Transformer turns an int8 QuantizeLinear ->
DequantizeLinear pair into uint8 where the Q has that single output edge (not a graph output) and both zero
points are equal int8 constants of one value. An int8 pair left over (a Q whose DequantizeLinear had several
consumers, a Q writing a graph output, or a constant's Q, which constant folding makes an int8 initializer)
keeps a Conv / MatMul reading it in float, and any group mixing it with a converted pair too (the selectors
compare the types). The conversion itself leaves the integer results as they are (x + 128
with zero point + 128), so the fused nodes keep the int8 data."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

__all__ = ["fuse"]

MS = "com.microsoft"
MOVES = {"Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "MaxPool", "Slice"}
UNARY = ("GlobalAveragePool", "AveragePool", "LeakyRelu", "Sigmoid", "Softmax")  # (qdq_selector_action_transformer)
EIGHT = (np.int8, np.uint8)


class _Graph:
    def __init__(self, g: onnx.GraphProto) -> None:
        self.g = g
        self.nodes = list(g.node)  # (held here: a node is known by id(), which only a live wrapper keeps)
        self.consts: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in g.initializer}
        for n in self.nodes:
            if n.op_type == "Constant" and n.domain in ("", "ai.onnx") and len(n.attribute) == 1 \
                    and n.attribute[0].name == "value":
                self.consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
        self.outputs = {o.name for o in g.output}
        self.opset = 21  # (the default domain's, set by fuse: a fused Softmax records it)
        self.dead: set[int] = set()   # id() of nodes removed
        self.index()
        self.to_u8 = self._s8_to_u8()  # id() of the Q and DQ nodes of the pairs onnxruntime makes uint8

    def _s8_to_u8(self) -> set[int]:
        """QDQS8ToU8Transformer's pairs, counted on the graph as EnsureUniqueDQForNodeUnit leaves it."""
        pairs: set[int] = set()
        for q in self.nodes:
            if q.op_type != "QuantizeLinear" or q.domain not in ("", "ai.onnx") or q.output[0] in self.outputs \
                    or q.input[0] in self.consts:  # (a Q of a constant is folded into an int8 initializer first)
                continue
            rs = self.readers.get(q.output[0], [])
            edges = 0  # (each DequantizeLinear reader becomes one copy per input it feeds, plus itself for a
            for r in rs:  # graph output)
                if r.op_type == "DequantizeLinear" and r.domain in ("", "ai.onnx"):
                    m = sum(list(n.input).count(r.output[0]) for n in self.readers.get(r.output[0], []))
                    edges += m + 1 if r.output[0] in self.outputs else max(m, 1)
                else:
                    edges += list(r.input).count(q.output[0])
            if edges != 1 or rs[0].op_type != "DequantizeLinear":
                continue
            dq = rs[0]
            zq = self.consts.get(q.input[2]) if len(q.input) > 2 else None
            zd = self.consts.get(dq.input[2]) if len(dq.input) > 2 else None
            if zq is not None and zd is not None and zq.size == 1 and zd.size == 1 \
                    and zq.dtype == np.int8 and zd.dtype == np.int8 and zq.item() == zd.item():
                pairs |= {id(q), id(dq)}
        return pairs

    def etype(self, n: onnx.NodeProto, zero_point: np.ndarray) -> type:
        """The 8-bit type onnxruntime's selectors see for a Q or DQ node (module docstring)."""
        return np.uint8 if id(n) in self.to_u8 else zero_point.dtype.type

    def index(self) -> None:
        self.writer: dict[str, onnx.NodeProto] = {}
        self.readers: dict[str, list[onnx.NodeProto]] = {}
        for n in self.nodes:
            if id(n) in self.dead:
                continue
            for y in n.output:
                self.writer[y] = n
            for x in n.input:
                if x:
                    self.readers.setdefault(x, []).append(n)

    def made_by(self, name: str, op: str) -> onnx.NodeProto | None:
        n = self.writer.get(name)
        return n if n is not None and n.op_type == op and n.domain in ("", "ai.onnx") else None

    def only_q(self, name: str) -> onnx.NodeProto | None:
        """The QuantizeLinear that is the value's only reader (the value not a graph output)."""
        rs = self.readers.get(name, [])
        if name in self.outputs or len(rs) != 1 or rs[0].op_type != "QuantizeLinear":
            return None
        return rs[0]

    def scalar(self, name: str | None) -> np.ndarray | None:
        v = self.consts.get(name or "")
        return v if v is not None and v.size == 1 else None

    def qparams(self, n: onnx.NodeProto) -> tuple[np.ndarray, np.ndarray] | None:
        """(scale, zero point) of a Q or DQ node: constants of one value, an 8-bit zero point."""
        if len(n.input) < 3 or _attr(n, "block_size", 0):
            return None
        s, z = self.scalar(n.input[1]), self.scalar(n.input[2])
        if s is None or z is None or z.dtype not in EIGHT or s.dtype != np.float32:
            return None
        return s, z


def _attr(n: onnx.NodeProto, key: str, default: object) -> object:
    for a in n.attribute:
        if a.name == key:
            return onnx.helper.get_attribute_value(a)
    return default


def _weights(G: _Graph, dq: onnx.NodeProto | None, channels: int, axis: int, rank: int) -> bool:
    """A constant 8-bit weight, per tensor or per channel along `axis` (of a rank-`rank` weight)."""
    if dq is None or len(dq.input) < 3 or dq.input[0] not in G.consts or _attr(dq, "block_size", 0):
        return False
    w, s, z = G.consts[dq.input[0]], G.consts.get(dq.input[1]), G.consts.get(dq.input[2])
    if w.dtype not in EIGHT or s is None or z is None or s.dtype != np.float32 or z.dtype != w.dtype:
        return False
    if s.size == 1 and z.size == 1:
        return True
    ax = int(_attr(dq, "axis", 1)) % rank  # type: ignore[call-overload]
    return ax == axis and s.shape == (channels,) and z.shape in ((channels,), (1,), ())


def _bias(G: _Graph, n: onnx.NodeProto) -> str | None | bool:
    """The int32 bias input of a fused node: its name, None when absent, False when it is not fusable."""
    if len(n.input) < 3 or not n.input[2]:
        return None
    dq = G.made_by(n.input[2], "DequantizeLinear")
    if dq is None or dq.input[0] not in G.consts or G.consts[dq.input[0]].dtype != np.int32:
        return False
    z = G.consts.get(dq.input[2]) if len(dq.input) > 2 and dq.input[2] else None
    return dq.input[0] if z is None or not z.any() else False


def _drop_activations(G: _Graph) -> bool:
    changed = False
    for n in G.nodes:
        if id(n) in G.dead or n.op_type not in ("Relu", "Clip") or n.domain not in ("", "ai.onnx"):
            continue
        q = G.only_q(n.output[0])
        qp = None if q is None else G.qparams(q)
        if qp is None:
            continue
        s, z = float(qp[0].reshape(())), int(qp[1].reshape(()))
        info = np.iinfo(qp[1].dtype)
        if n.op_type == "Relu":
            ok = z == info.min
        else:  # ClipQuantFusion's test, in fp32 with its epsilon of slack
            big = float(np.finfo(np.float32).max)  # (Clip-6's attributes, or absent inputs: no bound)
            lo = G.scalar(n.input[1]) if len(n.input) > 1 and n.input[1] else np.array(_attr(n, "min", -big))
            hi = G.scalar(n.input[2]) if len(n.input) > 2 and n.input[2] else np.array(_attr(n, "max", big))
            f, eps = np.float32, np.finfo(np.float32).eps
            lower, upper = f(f(s) * f(info.min - z)), f(f(s) * f(info.max - z))
            ok = lo is not None and hi is not None \
                and not (eps < f(lo.reshape(())) - lower or eps < upper - f(hi.reshape(())))
        if ok:
            q.input[0] = n.input[0]
            G.dead.add(id(n))
            changed = True
    return changed


def _fuse_one(G: _Graph, n: onnx.NodeProto) -> onnx.NodeProto | None:
    """The QOperator node replacing n and the Q after it, or None."""
    op = n.op_type
    if op not in ("Conv", "MatMul", "Gemm", "Add", "Mul", *UNARY) or n.domain not in ("", "ai.onnx"):
        return None
    q = G.only_q(n.output[0])
    dx = G.made_by(n.input[0], "DequantizeLinear")
    px = None if dx is None else G.qparams(dx)
    if px is None or q is None and op != "Gemm":  # (a Gemm without Q: QGemm with a float output)
        return None
    py = None if q is None else G.qparams(q)
    tx = G.etype(dx, px[1])  # type: ignore[arg-type]
    if q is not None and (py is None or tx != G.etype(q, py[1])):
        return None
    if op in ("Conv", "MatMul") and tx == np.int8:  # (x86: no int8 activations into QLinearConv/MatMul)
        return None
    xq = [dx.input[0], dx.input[1], dx.input[2]]  # type: ignore[union-attr]
    yq = [] if q is None else [q.input[1], q.input[2]]
    y = n.output[0] if q is None else q.output[0]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
    name = n.name or n.output[0]
    if op == "GlobalAveragePool":
        return onnx.helper.make_node("QLinearGlobalAveragePool", xq + yq, [y], name, domain=MS,
                                     channels_last=0)
    if op in UNARY:  # (UnaryReplaceWithQLinear: the node's attributes kept; Softmax's opset added)
        extra = {"opset": 13 if G.opset >= 13 else 11} if op == "Softmax" else {}
        return onnx.helper.make_node(f"QLinear{op}", xq + yq, [y], name, domain=MS, **attrs, **extra)
    dw = G.made_by(n.input[1], "DequantizeLinear")
    if dw is None:
        return None
    if op in ("Add", "Mul"):
        pb = G.qparams(dw)
        if pb is None or G.etype(dw, pb[1]) != tx:
            return None
        return onnx.helper.make_node(f"QLinear{op}", xq + [dw.input[0], dw.input[1], dw.input[2]] + yq, [y],
                                     name, domain=MS)
    w = G.consts.get(dw.input[0])
    wq = [dw.input[0], dw.input[1], dw.input[2] if len(dw.input) > 2 else ""]
    if op == "MatMul":  # B constant (per tensor or per column) or computed (per tensor: attention's products)
        if w is None:
            pw = G.qparams(dw)
            if pw is None:
                return None
        elif w.ndim != 2 or not _weights(G, dw, w.shape[1], 1, 2):
            return None
        return onnx.helper.make_node("QLinearMatMul", xq + wq + yq, [y], name)
    bias = _bias(G, n)
    if bias is False or w is None:
        return None
    if op == "Conv":
        if w.ndim < 3 or not _weights(G, dw, w.shape[0], 0, w.ndim):
            return None
        return onnx.helper.make_node("QLinearConv", xq + wq + yq + ([bias] if bias else []), [y], name,
                                     **attrs)
    tb = int(attrs.get("transB", 0))
    if tx == np.int8 and w.dtype != np.int8:  # (GemmNodeGroupSelector: a signed A wants a signed B)
        return None
    if w.ndim != 2 or not _weights(G, dw, w.shape[0 if tb else 1], 0 if tb else 1, 2) \
            or (bias and float(attrs.get("beta", 1.0)) != 1.0):
        return None
    attrs.pop("beta", None)
    return onnx.helper.make_node("QGemm", xq + wq + [bias or ""] + yq, [y], name, domain=MS, **attrs)


def _drop_qdq(G: _Graph, n: onnx.NodeProto) -> bool:
    """DQ -> data movement -> Q with equal parameters: the operator on the 8-bit data (rule 3)."""
    if n.op_type not in MOVES or n.domain not in ("", "ai.onnx") or len([o for o in n.output if o]) != 1:
        return False
    q, dq = G.only_q(n.output[0]), G.made_by(n.input[0], "DequantizeLinear")
    if q is None or dq is None:
        return False
    a, b = G.qparams(dq), G.qparams(q)
    if a is None or b is None or G.etype(dq, a[1]) != G.etype(q, b[1]) or a[0].item() != b[0].item() \
            or a[1].item() != b[1].item():
        return False
    n.input[0] = dq.input[0]
    n.output[0] = q.output[0]
    G.dead.add(id(q))
    return True


def fuse(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of the model with the QDQ groups onnxruntime fuses in the QOperator form (module docstring);
    the model itself where it has no DequantizeLinear."""
    if not any(n.op_type == "DequantizeLinear" for n in model.graph.node):
        return model
    m = onnx.ModelProto()
    m.CopyFrom(model)
    G = _Graph(m.graph)
    G.opset = next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), 21)
    if _drop_activations(G):
        G.index()
    nodes: list[onnx.NodeProto] = []
    for n in G.nodes:
        if id(n) in G.dead:
            continue
        fused = _fuse_one(G, n)
        if fused is not None:
            if fused.output[0] != n.output[0]:  # (the Q after it is part of the fused node)
                G.dead.add(id(G.only_q(n.output[0])))
            nodes.append(fused)
            continue
        _drop_qdq(G, n)
        nodes.append(n)
    nodes = [n for n in nodes if id(n) not in G.dead]
    while True:  # DequantizeLinear nodes nothing reads any more
        read = {x for n in nodes for x in n.input} | G.outputs
        keep = [n for n in nodes if n.op_type != "DequantizeLinear" or n.output[0] in read]
        if len(keep) == len(nodes):
            break
        nodes = keep
    copies = []
    for n in nodes:  # (copied out before the field they live in is cleared)
        c = onnx.NodeProto()
        c.CopyFrom(n)
        copies.append(c)
    del m.graph.node[:]
    m.graph.node.extend(copies)
    if any(n.domain == MS for n in nodes) and not any(o.domain == MS for o in m.opset_import):
        m.opset_import.append(onnx.helper.make_opsetid(MS, 1))
    return m
