"""Reading an ONNX file that may be hostile or broken (issue 15): every failure is one SlmcError.

With onnx_import.py, the only modules that touch the onnx package (DESIGN.md rule 1). What is checked,
in order, before the importer sees the model:
- the path is a regular file (not a folder, FIFO or device: safe_io.open_regular, so a FIFO cannot block),
  non-empty and under protobuf's 2 GiB; it parses as a ModelProto;
- external data: the location is relative and stays inside the model's folder (symbolic links resolved),
  names a regular file, and holds the tensor's bytes at its offset; the tensor's length must be its
  shape's. Nothing else is opened, and nothing is read beyond the caps of ir/verify.py;
- every tensor (initializers, Constant values): a supported element type, a valid bounded shape
  (verify.check_shape), and data of exactly that shape's size, before numpy sees it;
- the graph: one default-domain opset that this onnx knows; every name defined once (no two nodes
  writing one value, no node overwriting a graph input or initializer); every value read computed by some
  node, and no cycle (`node_order`: nodes need not be listed in topological order, as onnxruntime accepts
  them; the importer walks them in the order given there); graph outputs computed; and every standard
  node against its operator's schema: number of inputs and outputs, required attributes present,
  attribute types as the schema declares them (a single int or float where the schema wants a list of
  them is read as a list of one: `normalise_attributes`, run first).
The per-node shape and attribute-value rules come after import, on the IR (ir/op_rules.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from slmc.errors import SlmcError
from slmc.frontend.safe_io import open_regular, read_exact
from slmc.ir import DType
from slmc.ir.op_rules import quote
from slmc.ir.verify import MAX_GRAPH_BYTES, check_shape

T = onnx.TensorProto
DTYPES = {T.FLOAT: DType.F32, T.DOUBLE: DType.F64, T.INT8: DType.I8, T.UINT8: DType.U8, T.INT16: DType.I16,
          T.UINT16: DType.U16, T.INT32: DType.I32, T.UINT32: DType.U32, T.INT64: DType.I64, T.UINT64: DType.U64,
          T.BOOL: DType.BOOL}
# the TensorProto field that holds a tensor's values when raw_data is not used
_FIELD = {T.FLOAT: "float_data", T.DOUBLE: "double_data", T.INT64: "int64_data", T.UINT32: "uint64_data",
          T.UINT64: "uint64_data"}
MAX_FILE = (1 << 31) - 1  # protobuf's limit for one message
FIX = "the ONNX file is malformed: export it again"
_ATTR_TYPES = frozenset(v for v in onnx.AttributeProto.AttributeType.values() if v != onnx.AttributeProto.UNDEFINED)
_SCALAR = (onnx.AttributeProto.FLOAT, onnx.AttributeProto.INT)


def read_model(path: Path) -> onnx.ModelProto:
    path = Path(path)
    f, size = open_regular(path, "ONNX model", "give the path of an .onnx file", MAX_FILE)
    with f:
        if size == 0:
            raise SlmcError(f"ONNX model '{path}' is empty", "give a valid ONNX model")
        data = read_exact(f, size, path)
    try:
        model = onnx.load_model_from_string(data)
    except Exception as e:  # protobuf's DecodeError and its kin
        raise SlmcError(f"'{path}' is not a readable ONNX model ({type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''})",
                        "check the file") from None
    if not model.HasField("graph") or (not model.graph.node and not model.graph.output):
        raise SlmcError(f"'{path}' holds no ONNX graph", "check the file")
    _load_external(model, path.parent)
    if model.functions:
        from onnx import inliner  # (a plain `import onnx.inliner` here would shadow the module name)

        try:
            model = inliner.inline_local_functions(model)
        except Exception as e:
            raise SlmcError(f"'{path}': its local functions cannot be inlined ({str(e).splitlines()[0][:120]})", FIX) from None
    normalise_attributes(model)
    check_model(model)
    return model


# ---- tensors ---------------------------------------------------------------------------------------------------

def _tensors(model: onnx.ModelProto) -> list[onnx.TensorProto]:
    out = list(model.graph.initializer)
    for n in model.graph.node:
        out += [a.t for a in n.attribute if a.type == onnx.AttributeProto.TENSOR]
    return out


def _load_external(model: onnx.ModelProto, base: Path) -> None:
    """Bring external data in, only from regular files inside the model's folder (module docstring)."""
    total = 0
    root = base.resolve()
    for t in _tensors(model):
        if t.data_location != T.EXTERNAL:
            continue
        what = f"tensor {quote(t.name)}"
        info = {e.key: e.value for e in t.external_data}
        loc = info.get("location", "")
        dt = dtype_of(t.data_type, what)
        n = int(np.prod(check_shape(t.dims, dt.size, what), dtype=object)) * dt.size
        target = (base / loc).resolve()
        if not loc or os.path.isabs(loc) or not target.is_relative_to(root):
            raise SlmcError(f"{what} keeps its data at {quote(loc)}, outside the model's folder",
                            "external data must be a file next to the model (a relative path inside its folder)")
        try:
            offset, length = int(info.get("offset", 0)), int(info.get("length", n))
        except ValueError:
            raise SlmcError(f"{what} has a malformed external-data offset or length", FIX) from None
        if offset < 0 or length != n:
            raise SlmcError(f"{what} has external data of {length} bytes at offset {offset}; its shape needs {n}", FIX)
        total += n
        if total > MAX_GRAPH_BYTES:
            raise SlmcError(f"the model's external data exceeds slmc's limit of {MAX_GRAPH_BYTES:,} bytes", "check the model")
        f, size = open_regular(target, f"the external data of {what}", "put the data file next to the model")
        with f:
            if offset + n > size:
                raise SlmcError(f"{what} needs bytes {offset}..{offset + n} of {quote(loc)}, which holds {size}", FIX)
            f.seek(offset)
            t.raw_data = read_exact(f, n, target)
        del t.external_data[:]
        t.data_location = T.DEFAULT


def dtype_of(elem: int, what: str) -> DType:
    if elem not in DTYPES:
        try:
            name = onnx.helper.tensor_dtype_to_string(elem).replace("TensorProto.", "").lower() if elem else "undefined"
        except Exception:  # a number no onnx version defines
            name = f"unknown ({elem})"
        raise SlmcError(f"{what} has element type {name}, which slmc does not support",
                        "use float32, float64, bool or (unsigned) 8/16/32/64-bit integers")
    return DTYPES[elem]


def check_tensor(t: onnx.TensorProto, what: str) -> None:
    """A supported type, a bounded shape, and exactly that shape's amount of data."""
    dt = dtype_of(t.data_type, what)
    n = int(np.prod(check_shape(t.dims, dt.size, what), dtype=object))
    if t.HasField("segment"):
        raise SlmcError(f"{what} is stored in segments", "store it as one tensor")
    if t.data_location == T.EXTERNAL:
        raise SlmcError(f"{what} has external data slmc did not load", FIX)
    field = _FIELD.get(t.data_type, "int32_data")
    have = len(t.raw_data) if t.raw_data else len(getattr(t, field))
    need = n * dt.size if t.raw_data else n
    if have != need:
        unit = "bytes" if t.raw_data else "values"
        raise SlmcError(f"{what} holds {have} {unit} of data, but its shape {list(t.dims)} needs {need}", FIX)


def tensor_array(t: onnx.TensorProto, what: str) -> np.ndarray:
    check_tensor(t, what)
    return np.asarray(numpy_helper.to_array(t), order="C")  # (ascontiguousarray turns 0-d into 1-d)


# ---- the graph ---------------------------------------------------------------------------------------------------

def default_opset(model: onnx.ModelProto) -> int:
    versions = {o.version for o in model.opset_import if o.domain in ("", "ai.onnx")}
    if len(versions) > 1:
        raise SlmcError(f"the model imports the default ONNX opset at several versions {sorted(versions)}", FIX)
    if not versions:
        if any(n.domain in ("", "ai.onnx") for n in model.graph.node):
            raise SlmcError("the model declares no opset for its standard ONNX operators", FIX)
        return 1
    v = versions.pop()
    if not 1 <= v <= onnx.defs.onnx_opset_version():
        raise SlmcError(f"the model uses ONNX opset {v}, which onnx {onnx.__version__} does not define "
                        f"(1..{onnx.defs.onnx_opset_version()})", "export the model with a released opset")
    return v


def node_order(graph: onnx.GraphProto, canonical: bool = False) -> list[int]:
    """The graph's nodes (indices) in an order where every node comes after the nodes it reads; a cycle, or a
    value that no node computes, is an SlmcError naming a node.

    canonical=False: the file's order where that is already topological, else the file's order with each
    node preceded by the nodes it reads from further down the file. canonical=True: an order that depends on the graph's
    structure only, not on how its nodes are listed: depth-first from the graph outputs in their order,
    each node's inputs in slot order (what a node does not lead to an output follows, by its first output's
    name). A copy of a model with its nodes shuffled then compiles to the same C."""
    nodes = graph.node
    writer: dict[str, int] = {}
    for i, n in enumerate(nodes):
        for y in n.output:
            if y:
                writer.setdefault(y, i)  # (a second writer is check_model's error)
    given = {t.name for t in graph.initializer} | {vi.name for vi in graph.input}

    def deps(i: int) -> list[int]:
        out = []
        for x in nodes[i].input:
            if not x or (x in given and x not in writer):
                continue
            if x not in writer:
                raise SlmcError(f"node {quote(_name(nodes[i], i))} reads {quote(x)}, which no node computes",
                                "the ONNX graph is malformed: export it again")
            out.append(writer[x])
        return out

    state = [0] * len(nodes)  # 0 unvisited, 1 on the current path, 2 placed
    order: list[int] = []

    def visit(root: int) -> None:
        stack = [(root, iter(deps(root)))]
        state[root] = 1
        while stack:
            i, it = stack[-1]
            j = next(it, None)
            if j is None:
                stack.pop()
                state[i] = 2
                order.append(i)
            elif state[j] == 1:
                raise SlmcError(f"the ONNX graph has a cycle through node {quote(_name(nodes[j], j))}",
                                "an ONNX graph must be acyclic: export it again")
            elif state[j] == 0:
                state[j] = 1
                stack.append((j, iter(deps(j))))

    if canonical:
        roots = [writer[vo.name] for vo in graph.output if vo.name in writer]
        roots += sorted(range(len(nodes)), key=lambda i: (next((y for y in nodes[i].output if y), ""), i))
    else:
        roots = list(range(len(nodes)))
    for r in roots:
        if state[r] == 0:
            visit(r)
    return order


def _name(node: onnx.NodeProto, i: int) -> str:
    return node.name or f"{node.op_type}_{i}"


def normalise_attributes(model: onnx.ModelProto) -> None:
    """A standard node's attribute stored as one int (float) where its schema declares a list of ints
    (floats), as some exporters write Squeeze's axes, becomes a list of one (the file's model is changed)."""
    opset = default_opset(model)
    lists = {onnx.AttributeProto.INT: (onnx.AttributeProto.INTS, "ints", "i"),
             onnx.AttributeProto.FLOAT: (onnx.AttributeProto.FLOATS, "floats", "f")}
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx") or not any(a.type in lists for a in node.attribute):
            continue
        try:
            schema = onnx.defs.get_schema(node.op_type, opset, "")
        except Exception:  # not a standard operator at this opset: the importer names it
            continue
        for a in node.attribute:
            spec = schema.attributes.get(a.name)
            if a.type in lists and spec is not None and spec.type.value == lists[a.type][0]:
                kind, field, one = lists[a.type]
                value = getattr(a, one)
                a.ClearField(one)
                getattr(a, field).append(value)
                a.type = kind


def check_model(model: onnx.ModelProto) -> None:
    """Names defined once, every value read computed, no cycle, and every standard node against its schema
    (module docstring)."""
    g = model.graph
    opset = default_opset(model)
    if len(g.sparse_initializer):
        raise SlmcError("the ONNX graph has sparse initializers", "store the weights densely")
    defined: set[str] = set()
    for t in g.initializer:
        if t.name in defined:
            raise SlmcError(f"initializer {quote(t.name)} is defined twice", FIX)
        defined.add(t.name)
    inits = set(defined)
    for vi in g.input:
        if vi.name in defined and vi.name not in inits:
            raise SlmcError(f"graph input {quote(vi.name)} is listed twice", FIX)
        defined.add(vi.name)
    for i, node in enumerate(g.node):
        name = _name(node, i)
        op = quote(node.op_type)[1:-1]  # (from the file: escaped like any name)
        for y in node.output:
            if y and y in defined:
                raise SlmcError(f"{op} node {quote(name)} writes {quote(y)}, which is already defined (a graph input, "
                                "an initializer or another node's output)", "each value must have one writer: " + FIX)
            defined.add(y)
        for a in node.attribute:
            if a.type not in _ATTR_TYPES:  # onnx.helper could not even read its value
                raise SlmcError(f"{op} node {quote(name)}: attribute {quote(a.name)} has no valid type", FIX)
        if node.domain in ("", "ai.onnx"):
            _check_schema(node, name, opset)
    for vo in g.output:
        if vo.name not in defined:
            raise SlmcError(f"graph output {quote(vo.name)} is computed by no node", "the ONNX file is malformed")
    node_order(g)


def _check_schema(node: onnx.NodeProto, name: str, opset: int) -> None:
    try:
        schema = onnx.defs.get_schema(node.op_type, opset, "")
    except Exception:  # not a standard operator at this opset: the importer names it (or reads Deeploy's)
        return
    where = f"{node.op_type} node {quote(name)}"
    for what, n, lo, hi in (("inputs", len(node.input), schema.min_input, schema.max_input),
                            ("outputs", len(node.output), schema.min_output, schema.max_output)):
        if not lo <= n <= hi:
            want = str(lo) if lo == hi else f"{lo} to {hi}" if hi < (1 << 30) else f"at least {lo}"
            raise SlmcError(f"{where}: has {n} {what}, {node.op_type}-{schema.since_version} takes {want}", FIX)
    params = list(schema.inputs)
    for k, x in enumerate(node.input):
        formal = params[min(k, len(params) - 1)] if params else None
        if not x and formal is not None and formal.option != onnx.defs.OpSchema.FormalParameterOption.Optional:
            raise SlmcError(f"{where}: input {k} ({quote(formal.name)}) is required but empty", FIX)
    have = {a.name: a for a in node.attribute}
    for key, spec in schema.attributes.items():
        a = have.get(key)
        if a is None:
            if spec.required:
                raise SlmcError(f"{where}: required attribute {quote(key)} is missing", FIX)
        elif a.type != spec.type.value:
            kind = onnx.AttributeProto.AttributeType.Name(a.type)
            value = f" ({onnx.helper.get_attribute_value(a)!r})" if a.type in _SCALAR else ""
            raise SlmcError(f"{where}: attribute {quote(key)} is a {kind}{value}, must be {spec.type.name}", FIX)
