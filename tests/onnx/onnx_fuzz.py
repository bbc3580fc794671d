"""Random and mutated ONNX graphs (issue 15), for tests/onnx/test_sanitizers.py and the fuzz harness
(tests/fuzz/families.py loads this file by path, so it imports only onnx and numpy).

`random_onnx_case(rng)` -> (serialized model, expect_valid), deterministic in the numpy Generator:
- True: a valid graph of operators slmc compiles (random shapes, axes, attributes; now and then an empty
  tensor). slmc must compile it; its C must run clean under ASan/UBSan and match onnxruntime.
- False: such a graph broken one way from issue 15's list (Gemm transA=2.5, Reshape [2,8] -> [3,7], an
  input dim of -1, symbolic or 2^31, Pad -100 or 2^40, Split sizes that do not add up, Softmax axis 5, a
  Reduce axis out of range, an Add with three inputs, two nodes writing one name, a short or long
  initializer, a Cast without 'to', an unknown operator or opset, a subgraph, external data outside the
  folder, a truncated protobuf, ...). slmc must refuse it with one SlmcError.
A case takes about a millisecond to generate and well under a second to compile.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F, I64 = TensorProto.FLOAT, TensorProto.INT64
Rng = np.random.Generator


class G:
    """A graph under construction, and the mutations that would break it. (A plain class, not a dataclass:
    the fuzz harness loads this file without registering it as a module, which dataclasses need.)"""

    def __init__(self, rng: Rng) -> None:
        self.rng, self.opset = rng, 17
        self.nodes: list = []
        self.inputs: list = []
        self.outputs: list = []
        self.inits: list = []
        self.breaks: list[Callable[[], None]] = []
        self._n = 0

    def name(self, base: str) -> str:
        self._n += 1
        return f"{base}{self._n}"

    def input(self, shape: list[int], elem: int = F) -> str:
        n = self.name("x")
        self.inputs.append(helper.make_tensor_value_info(n, elem, shape))
        return n

    def const(self, arr: np.ndarray) -> str:
        n = self.name("c")
        self.inits.append(numpy_helper.from_array(np.asarray(arr), n))
        return n

    def node(self, op: str, ins: list[str], n_out: int = 1, **attrs: object) -> list[str]:
        outs = [self.name("t") for _ in range(n_out)]
        self.nodes.append(helper.make_node(op, ins, outs, name=self.name(op.lower()), **attrs))
        return outs

    def swap(self, i: int, arr: np.ndarray) -> Callable[[], None]:
        """A break: initializer i replaced by `arr` (same name)."""
        return lambda: self.inits.__setitem__(i, numpy_helper.from_array(np.asarray(arr), self.inits[i].name))

    def output(self, name: str, elem: int = F) -> None:
        self.outputs.append(helper.make_tensor_value_info(name, elem, None))

    def attr(self, node: int, key: str, value: object) -> None:
        """Set (or replace) an attribute of nodes[node], of whatever type `value` has."""
        n = self.nodes[node]
        keep = [a for a in n.attribute if a.name != key]
        del n.attribute[:]
        n.attribute.extend(keep + [helper.make_attribute(key, value)])

    def model(self) -> onnx.ModelProto:
        g = helper.make_graph(self.nodes, "fuzz", self.inputs, self.outputs, initializer=self.inits)
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", self.opset)], ir_version=8)


def _shape(rng: Rng, lo: int = 1, hi: int = 4, zero: bool = False) -> list[int]:
    dims = [int(d) for d in rng.integers(1, 6, int(rng.integers(lo, hi + 1)))]
    if zero and dims and rng.random() < 0.25:
        dims[int(rng.integers(len(dims)))] = 0  # an empty tensor: valid ONNX, and must stay memory-safe
    return dims


def _f32(rng: Rng, shape: list[int], lo: float = -2.0, hi: float = 2.0) -> np.ndarray:
    return rng.uniform(lo, hi, shape).astype(np.float32)


def _choice(rng: Rng, items: list):
    return items[int(rng.integers(len(items)))]


# ---- families: a valid graph each, with the ways to break it ------------------------------------------------

def gemm(g: G) -> None:
    r = g.rng
    m, k, n = (int(d) for d in r.integers(1, 7, 3))
    ta, tb = int(r.integers(2)), int(r.integers(2))
    a = g.input([k, m] if ta else [m, k])
    b = g.const(_f32(r, [n, k] if tb else [k, n]))
    ins = [a, b]
    if r.random() < 0.6:
        ins.append(g.const(_f32(r, _choice(r, [[n], [1, n], [m, n], [m, 1], []]))))
    y = g.node("Gemm", ins, transA=ta, transB=tb, alpha=float(_choice(r, [1.0, 0.5, 2.0])),
               beta=float(_choice(r, [1.0, 0.25])))[0]
    g.output(y)
    g.breaks += [lambda: g.attr(0, "transA", 2.5), lambda: g.attr(0, "transB", 2),
                 lambda: g.attr(0, "alpha", float("nan")),
                 g.swap(0, _f32(r, [n, k + 7] if tb else [k + 7, n]))]


def matmul(g: G) -> None:
    r = g.rng
    m, k, n = (int(d) for d in r.integers(1, 6, 3))
    batch = _shape(r, 0, 2)
    a = g.input(batch + [m, k])
    b = g.const(_f32(r, [k, n])) if r.random() < 0.5 else g.input([k, n])
    g.output(g.node("MatMul", [a, b])[0])
    g.breaks.append(lambda: g.inputs.__setitem__(0, helper.make_tensor_value_info(a, F, batch + [m, k + 1])))


def reshape(g: G) -> None:
    r = g.rng
    shape = _shape(r, 1, 4)
    total = int(np.prod(shape))
    dims, left = [], total
    for _ in range(int(r.integers(0, 3))):  # a random factorisation of the element count
        ds = [d for d in range(1, left + 1) if left % d == 0]
        d = _choice(r, ds)
        dims.append(d)
        left //= d
    dims.append(left)
    if r.random() < 0.3:
        dims[int(r.integers(len(dims)))] = -1
    x = g.input(shape)
    y = g.node("Reshape", [x, g.const(np.array(dims, np.int64))])[0]
    g.output(g.node("Relu", [y])[0])
    bad = [total + 1] if total > 1 else [3, 7]
    g.breaks += [g.swap(0, np.array(bad, np.int64)),
                 g.swap(0, np.array([-1, -1], np.int64))]


UNARY = ["Relu", "Sigmoid", "Tanh", "Neg", "Abs", "Softsign", "Erf", "Floor", "Ceil", "LeakyRelu", "Elu",
         "HardSigmoid", "Sin", "Cos", "Exp", "Softplus", "HardSwish"]


def unary(g: G) -> None:
    r = g.rng
    y = g.input(_shape(r, 1, 4, zero=True))
    x = y
    for _ in range(int(r.integers(1, 4))):
        y = g.node(_choice(r, UNARY), [y])[0]
    g.output(y)
    g.breaks.append(lambda: g.nodes.append(helper.make_node("Add", [x, y, x], ["z"], name="add3")) or
                    g.outputs.append(helper.make_tensor_value_info("z", F, None)))


def binary(g: G) -> None:
    r = g.rng
    out = _shape(r, 1, 4, zero=True)
    shapes = []
    for _ in range(2):
        s = [d if r.random() < 0.7 else 1 for d in out][int(r.integers(0, len(out) + 1)) if r.random() < 0.3 else 0:]
        shapes.append(s)
    shapes[int(r.integers(2))] = list(out)  # one operand carries the full shape
    op = _choice(r, ["Add", "Sub", "Mul", "Div", "Max", "Min"])
    a = g.input(shapes[0])
    b = g.const(_f32(r, shapes[1], 0.5, 2.0)) if r.random() < 0.5 else g.input(shapes[1])
    g.output(g.node(op, [a, b])[0])

    def clash() -> None:  # [2, 3] against [4]
        g.inputs[:] = [helper.make_tensor_value_info(a, F, [2, 3]), helper.make_tensor_value_info("xb", F, [4])]
        g.nodes[0].input[1] = "xb"
    g.breaks.append(clash)
    if op not in ("Max", "Min"):  # (those two are variadic)
        g.breaks.append(lambda: g.nodes[0].input.append(a))


def softmax(g: G) -> None:
    r = g.rng
    shape = _shape(r, 1, 4)
    g.opset = 13
    g.output(g.node(_choice(r, ["Softmax", "LogSoftmax"]), [g.input(shape)],
                    axis=int(r.integers(-len(shape), len(shape))))[0])
    g.breaks.append(lambda: g.attr(0, "axis", len(shape) + int(r.integers(0, 4))))


def reduce(g: G) -> None:
    r = g.rng
    shape = _shape(r, 1, 4)
    op = _choice(r, ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceL2", "ReduceSumSquare"])
    g.opset = 18
    chosen = r.permutation(len(shape))[:int(r.integers(1, len(shape) + 1))]
    axes = [int(a) - len(shape) if r.random() < 0.3 else int(a) for a in chosen]
    x = g.input(shape)
    g.output(g.node(op, [x, g.const(np.array(axes, np.int64))], keepdims=int(r.integers(2)))[0])
    g.breaks.append(g.swap(0, np.array([len(shape) + int(r.integers(0, 3))], np.int64)))


def concat(g: G) -> None:
    r = g.rng
    shape = _shape(r, 1, 4, zero=True)
    ax = int(r.integers(len(shape)))
    ins = []
    for _ in range(int(r.integers(2, 4))):
        s = list(shape)
        s[ax] = int(r.integers(0 if r.random() < 0.1 else 1, 4))
        ins.append(g.input(s) if r.random() < 0.7 else g.const(_f32(r, s)))
    g.output(g.node("Concat", ins, axis=ax - len(shape) * int(r.integers(2)))[0])
    g.breaks.append(lambda: g.attr(0, "axis", len(shape) + 1))


def split(g: G) -> None:
    r = g.rng
    shape = _shape(r, 1, 3)
    ax = int(r.integers(len(shape)))
    shape[ax] = int(r.integers(2, 7))
    cut = sorted(int(c) for c in r.integers(0, shape[ax] + 1, int(r.integers(1, 3))))
    sizes = np.diff([0, *cut, shape[ax]]).astype(np.int64)
    g.opset = 13
    outs = g.node("Split", [g.input(shape), g.const(sizes)], n_out=len(sizes), axis=ax)
    for o in outs:
        g.output(g.node("Neg", [o])[0])
    g.breaks += [g.swap(0, sizes + 1),
                 g.swap(0, np.array([-1] + list(sizes[:-1]) + [sizes[-1] + 1], np.int64))]


def pad(g: G) -> None:
    r = g.rng
    shape = _shape(r, 1, 4)
    pads = []
    for d in shape:
        b, e = int(r.integers(-(d // 2), 3)), int(r.integers(-(d // 2), 3))  # crops at most d in all
        pads.append((b, e))
    flat = np.array([b for b, _ in pads] + [e for _, e in pads], np.int64)
    x = g.input(shape)
    y = g.node("Pad", [x, g.const(flat), g.const(np.array(float(r.uniform(-1, 1)), np.float32))], mode="constant")[0]
    g.output(y)
    for huge in (-100, 1 << 40):
        g.breaks.append(g.swap(0, np.array([huge] + list(flat[1:]), np.int64)))


def transpose(g: G) -> None:
    r = g.rng
    shape = _shape(r, 1, 5, zero=True)
    g.output(g.node("Transpose", [g.input(shape)], perm=[int(p) for p in r.permutation(len(shape))])[0])
    g.breaks.append(lambda: g.attr(0, "perm", [0] * (len(shape) + 1)))


def slice_(g: G) -> None:
    r = g.rng
    shape = _shape(r, 1, 4)
    n = int(r.integers(1, len(shape) + 1))
    axes = [int(a) for a in r.permutation(len(shape))[:n]]
    starts, ends, steps = [], [], []
    for a in axes:
        d = shape[a]
        st = int(r.integers(-d - 1, d + 2))
        en = int(_choice(r, [int(r.integers(-d - 1, d + 2)), 1 << 62, -(1 << 62)]))
        starts.append(st)
        ends.append(en)
        steps.append(int(_choice(r, [1, 1, 2, -1, -2])))
    c = [g.const(np.array(v, np.int64)) for v in (starts, ends, axes, steps)]
    y = g.node("Slice", [g.input(shape), *c])[0]
    g.output(g.node("Abs", [y])[0])
    g.breaks += [g.swap(3, np.zeros(n, np.int64)),
                 g.swap(2, np.full(n, len(shape), np.int64))]


def gather(g: G) -> None:
    r = g.rng
    shape = _shape(r, 1, 3)
    ax = int(r.integers(len(shape)))
    d = shape[ax]
    idx = np.asarray(r.integers(-d, d, _shape(r, 0, 2))).astype(_choice(r, [np.int64, np.int32]))
    x = g.input(shape)
    g.output(g.node("Gather", [x, g.const(idx)], axis=ax)[0])
    g.breaks += [g.swap(0, np.array([d], np.int64)),
                 lambda: g.attr(0, "axis", len(shape))]


def layer_norm(g: G) -> None:
    r = g.rng
    shape = _shape(r, 1, 4)
    ax = int(r.integers(-len(shape), len(shape)))
    norm = shape[ax % len(shape):]
    ins = [g.input(shape), g.const(_f32(r, norm)), g.const(_f32(r, norm))][:int(r.integers(2, 4))]
    g.output(g.node("LayerNormalization", ins, axis=ax, epsilon=1e-5)[0])
    g.breaks += [lambda: g.attr(0, "axis", len(shape) + 2),
                 g.swap(0, _f32(r, [d + 1 for d in norm]))]


def where(g: G) -> None:
    r = g.rng
    shape = _shape(r, 1, 3, zero=True)
    a, b = g.input(shape), g.input(shape)
    cond = g.node(_choice(r, ["Less", "Greater", "LessOrEqual"]), [a, b])[0]
    g.output(g.node("Where", [cond, a, b])[0])
    g.breaks.append(lambda: g.nodes[1].input.__setitem__(0, a))  # a float condition


def cast(g: G) -> None:
    r = g.rng
    x = g.input(_shape(r, 1, 3))
    y = g.node("Cast", [x], to=_choice(r, [TensorProto.INT32, TensorProto.DOUBLE, TensorProto.INT64]))[0]
    g.output(g.node("Cast", [y], to=F)[0])
    g.breaks += [lambda: g.nodes[0].ClearField("attribute"), lambda: g.attr(0, "to", 999),
                 lambda: g.attr(0, "to", TensorProto.STRING)]


def shapes(g: G) -> None:
    r = g.rng
    shape = _shape(r, 1, 3)
    x = g.input(shape)
    kind = int(r.integers(4))
    if kind == 0:
        x = g.node("Tile", [x, g.const(np.array(r.integers(1, 3, len(shape)), np.int64))])[0]
        g.breaks.append(g.swap(0, np.ones(len(shape) + 1, np.int64)))
    elif kind == 1:
        target = [int(r.integers(1, 4))] + [d if r.random() < 0.6 else 1 for d in shape]
        x = g.node("Expand", [x, g.const(np.array(target, np.int64))])[0]
        g.breaks.append(g.swap(0, np.array([-2] + target[1:], np.int64)))
    elif kind == 2:
        x = g.node("Flatten", [x], axis=int(r.integers(-len(shape), len(shape) + 1)))[0]
        g.breaks.append(lambda: g.attr(0, "axis", len(shape) + 1))
    else:
        u = g.node("Unsqueeze", [x, g.const(np.array([0, len(shape) + 1], np.int64))])[0]
        x = g.node("Squeeze", [u, g.const(np.array([0], np.int64))])[0]
        g.opset = 13
        # squeeze an axis that is not 1, or unsqueeze one axis twice
        g.breaks.append(g.swap(1, np.array([1], np.int64)) if shape[0] != 1 else g.swap(0, np.array([0, 0], np.int64)))
    g.output(g.node("Relu", [x])[0])


def arg_clip(g: G) -> None:
    r = g.rng
    shape = _shape(r, 1, 3)
    x = g.input(shape)
    if r.random() < 0.5:
        g.output(g.node("ArgMax", [x], axis=int(r.integers(-len(shape), len(shape))), keepdims=int(r.integers(2)))[0], I64)
        g.breaks.append(lambda: g.attr(0, "axis", -len(shape) - 1))
    else:
        g.output(g.node("Clip", [x, g.const(np.array(-0.5, np.float32)), g.const(np.array(0.7, np.float32))])[0])
        g.breaks.append(g.swap(0, np.zeros([2], np.float32)))


FAMILIES = [gemm, matmul, reshape, unary, binary, softmax, reduce, concat, split, pad, transpose, slice_, gather,
            layer_norm, where, cast, shapes, arg_clip]


# ---- ways to break any graph ----------------------------------------------------------------------------------

def _dim(g: G, value: "int | str") -> None:
    d = g.inputs[0].type.tensor_type.shape.dim[0]
    if isinstance(value, str):
        d.dim_param = value
    else:
        d.dim_value = value


def _huge(g: G) -> None:
    g.inputs[0].type.tensor_type.shape.ClearField("dim")
    g.inputs[0].type.tensor_type.shape.dim.extend([onnx.TensorShapeProto.Dimension(dim_value=1 << 31),
                                                    onnx.TensorShapeProto.Dimension(dim_value=8)])


def _raw(g: G, cut: int) -> None:
    t = g.inits[0]
    t.raw_data = t.raw_data[:cut] if cut < 0 else t.raw_data + b"\0" * cut


def _external(g: G) -> None:
    t = g.inits[0]
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    t.external_data.extend([onnx.StringStringEntryProto(key="location", value="../../../../etc/passwd")])


def _subgraph(g: G) -> None:
    branch = helper.make_graph([helper.make_node("Identity", [g.inputs[0].name], ["b"])], "branch", [],
                               [helper.make_tensor_value_info("b", F, None)])
    cond = g.const(np.array(True))
    g.nodes.append(helper.make_node("If", [cond], ["if_out"], then_branch=branch, else_branch=branch, name="if"))
    g.outputs.append(helper.make_tensor_value_info("if_out", F, None))


def _global_breaks(g: G) -> list[Callable[[], None]]:
    out: list[Callable[[], None]] = [
        lambda: setattr(g, "opset", _choice(g.rng, [0, 99])),
        lambda: setattr(g.nodes[0], "op_type", "NoSuchOp"),
        lambda: g.nodes[0].input.__setitem__(0, "dangling"),
        lambda: g.outputs.append(helper.make_tensor_value_info("ghost", F, None)),
        lambda: g.nodes.append(helper.make_node("Neg", [g.nodes[0].input[0]], [g.nodes[0].output[0]], name="twin")),
        lambda: g.inits.append(helper.make_tensor("strings", TensorProto.STRING, [1], [b"x"])),
    ]
    if g.inputs and g.inputs[0].type.tensor_type.shape.dim:
        out += [lambda: _dim(g, -1), lambda: _dim(g, "N"), lambda: _huge(g), lambda: _subgraph(g)]
    if g.inits and g.inits[0].raw_data:
        out += [lambda: _raw(g, -1), lambda: _raw(g, 4), lambda: _external(g)]
    return out


def _truncated(rng: Rng, data: bytes) -> bytes:
    """A prefix of `data` that protobuf refuses (a cut at a field boundary would parse: try another)."""
    for _ in range(16):
        cut = data[:int(rng.integers(1, len(data)))]
        try:
            onnx.load_model_from_string(cut)
        except Exception:
            return cut
    return b"this is not an ONNX model\n"


def random_onnx_case(rng: Rng) -> tuple[bytes, bool]:
    """A serialized ONNX model and whether it is valid (module docstring); deterministic in `rng`."""
    g = G(rng)
    _choice(rng, FAMILIES)(g)
    if rng.random() < 0.5:
        return g.model().SerializeToString(), True
    if rng.random() < 0.08:
        return _truncated(rng, g.model().SerializeToString()), False
    breaks = g.breaks if g.breaks and rng.random() < 0.6 else _global_breaks(g)
    _choice(rng, breaks)()
    return g.model().SerializeToString(), False
