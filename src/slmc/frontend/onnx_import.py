"""ONNX models -> IR. With onnx_read.py (which reads and checks the file), the only modules of slmc that
import onnx (DESIGN.md rule 1).

`load` returns a `DecoderModel` for a language-model decoder (a graph whose token input has a dynamic
sequence axis, as torch.onnx exports them; see onnx_decoder.py) and an `ir.Graph` for anything else,
with every shape static and the constant subgraphs folded away (passes.PIPELINE).

The translation keeps the graph as it is, node for node, under ONNX op names. Inputs that decide shapes
are turned into attributes (onnx_canon.py). Shapes are never taken from the file's annotations: every
node's output types come from its operator's rules (ir/op_rules.py), which also refuse bad arity,
attributes and shapes before anything is sized by them; a node whose inputs are all known is evaluated
by its numpy twin, and the result must agree with the rules. The imported graph passes ir/verify.py, and
so does the graph after every pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import onnx

from slmc.errors import SlmcError
from slmc.frontend import onnx_convention, onnx_deeploy, onnx_fold, onnx_merged, onnx_past, onnx_qdq, onnx_qlinear
from slmc.frontend.onnx_canon import SUPPORTED, NodeIn, canonicalize
from slmc.frontend.onnx_read import check_model, dtype_of, node_order, normalise_attributes, read_model, tensor_array
from slmc.ir import DType, Graph, TensorType, Value, ValueKind
from slmc.ir import numerics
from slmc.ir.op_rules import infer, quote
from slmc.ir.verify import check_shape, check_type, verify
from slmc.reference.registry import REFERENCE

__all__ = ["load", "import_graph", "read_model", "dtype_of", "dynamic_dims", "PROBE_SEQ"]

# torch.onnx names the token axis of a decoder symbolically; the decoder is recognised on the graph
# instantiated at this many tokens (prime and unlike any model width, so no shape is ambiguous)
PROBE_SEQ = 5



def load(path: Path, on_pass: "Callable[[str, Graph], None] | None" = None, convention: str = "auto") -> "Any":
    """A DecoderModel (dynamic token axis) or a folded static Graph. `on_pass`: run_pipeline's callback,
    called with "import-N-PASS" and "integer-N-PASS" names (--dump-dir). `convention`: --onnx-convention
    (onnx_convention.py). A static graph's nodes are imported in their canonical order (onnx_read.node_order),
    so the order the file lists them in changes nothing."""
    onnx_convention.check(convention)
    model = onnx_merged.inline_cache_branch(read_model(Path(path)))  # Optimum's merged decoder: its with-past branch
    if dynamic_dims(model):
        from slmc.frontend import onnx_decoder

        def at(seq: int, keep: "list[str] | None" = None) -> Graph:
            """The decoder graph instantiated at `seq` tokens (a probe length); `keep`: only what computes
            these values, as the outputs (onnx_mask.py reads the attention masks so)."""
            bind = frozenset(vi.name for vi in model.graph.input if onnx_past.bound(vi.name))
            return import_graph(model if keep is None else _part(model, keep), _decoder_dims(model, seq), bind=bind)
        return onnx_decoder.recognise(at, Path(path).name)
    from slmc.passes import run_pipeline

    def named(prefix: str):
        return None if on_pass is None else (lambda name, g: on_pass(f"{prefix}-{name}", g))

    graph = run_pipeline(import_graph(model, canonical=True, convention=convention), mixed=True, on_pass=named("import"))
    if onnx_deeploy.is_integer(graph, Path(path)):  # integer values stored as float32: C integer types, proven ranges
        graph = run_pipeline(onnx_deeploy.integerize(graph, Path(path)), on_pass=named("integer"))
    return verify(graph)  # every operand of the type its kernel reads


# the inputs a decoder may take beside its token ids, and the constants they are bound to: onnx_past.py
SEQ_INPUTS = onnx_past.SEQ_INPUTS


def _decoder_dims(model: onnx.ModelProto, seq: int = PROBE_SEQ) -> dict[str, int]:
    """Dynamic axes are accepted on one place only: a decoder's token ids [batch, seq] (batch 1), and the
    inputs onnx_past.py binds beside them (attention mask, positions, past keys and values)."""
    inits = {t.name for t in model.graph.initializer}
    ins = [vi for vi in model.graph.input if vi.name not in inits]
    sigs = [onnx_past.InputSig(vi.name, vi.type.tensor_type.elem_type in (onnx.TensorProto.INT64, onnx.TensorProto.INT32),
                               tuple(_dim_key(d) for d in vi.type.tensor_type.shape.dim)) for vi in ins]
    dims = onnx_past.decoder_dims(sigs, seq)
    missing = [d for d in dynamic_dims(model) if d not in dims]
    if missing or not dims:
        bad = next(vi for vi in ins if any(not d.HasField("dim_value") for d in vi.type.tensor_type.shape.dim))
        raise SlmcError(f"graph input {quote(bad.name)} has a dynamic dimension {quote(missing[0] if missing else '?')}",
                        "slmc compiles static shapes: export the model with fixed input shapes (a dynamic axis is "
                        "accepted only on a decoder's token ids and the mask, positions and past keys and values beside them)")
    return dims


def _part(model: onnx.ModelProto, keep: list[str]) -> onnx.ModelProto:
    """The model cut down to the nodes (and initializers) that compute `keep`, which become its outputs
    (names it does not compute are left out); the graph inputs stay, so the same dimensions bind them."""
    need, nodes = set(keep), []
    for node in reversed([model.graph.node[i] for i in node_order(model.graph)]):
        if need.intersection(node.output):
            nodes.append(node)
            need.update(i for i in node.input if i)
    part = onnx.ModelProto()
    part.CopyFrom(model)
    del part.graph.node[:], part.graph.output[:], part.graph.initializer[:]
    part.graph.node.extend(reversed(nodes))
    part.graph.initializer.extend(t for t in model.graph.initializer if t.name in need)
    made = {o for n in nodes for o in n.output}
    part.graph.output.extend(onnx.helper.make_empty_tensor_value_info(k) for k in keep if k in made)
    return part


def _dim_key(d: onnx.TensorShapeProto.Dimension) -> object:
    return d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")


def dynamic_dims(model: onnx.ModelProto) -> list[str]:
    """Names of the symbolic dimensions of the graph's runtime inputs ('?' for unnamed ones)."""
    inits = {t.name for t in model.graph.initializer}
    out: list[str] = []
    for vi in model.graph.input:
        if vi.name in inits or not vi.type.HasField("tensor_type"):
            continue
        for d in vi.type.tensor_type.shape.dim:
            if not d.HasField("dim_value"):
                key = d.dim_param or "?"
                if key not in out:
                    out.append(key)
    return out


def _array(t: onnx.TensorProto, what: str) -> np.ndarray:
    return tensor_array(t, what)  # type, shape and data length checked before numpy reads it


def unsupported(op: str, node: str) -> SlmcError:
    return SlmcError(f"unsupported ONNX operator {quote(op)} (node {quote(node)})",
                     "slmc supports the operators listed in docs/ONNX_COVERAGE.md; export the model without it")


class _Importer:
    def __init__(self, model: onnx.ModelProto, dims: dict[str, int], bind: frozenset[str], canonical: bool = False,
                 convention: str = "auto") -> None:
        self.model, self.dims, self.bind, self.canonical = model, dims, bind, canonical
        self.convention = onnx_convention.choose(model, convention)
        self.applied: list[str] = []  # nodes whose meaning the convention changed
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        self.g = Graph(model.graph.name or "graph")
        self.values: dict[str, Value] = {}
        self.known: dict[int, np.ndarray] = {}   # id(Value) -> value, for values computable before run time
        self.quantized, self.ort_consts = False, set()  # (set by run(): ir/numerics.py's MatMul)

    # ---- graph boundary -------------------------------------------------------------------------
    def run(self) -> Graph:
        gp = self.model.graph
        normalise_attributes(self.model)  # a single int where a list is declared: a list of one (onnx_read.py)
        check_model(self.model)  # names defined once, no cycle, arity and attribute types (onnx_read.py)
        self.model = onnx_qdq.fuse(self.model)  # QDQ groups in the QOperator form, as onnxruntime fuses them
        gp = self.model.graph
        inits = {t.name for t in gp.initializer}
        # a quantized graph's float MatMuls sum as onnxruntime's (ir/numerics.py); which B it packs at load
        self.quantized = any(n.op_type == "QuantizeLinear" for n in gp.node)
        self.ort_consts = set(inits)
        for t in gp.initializer:
            self.values[t.name] = self.g.add_const(t.name, _array(t, f"initializer {quote(t.name)}"))
        for vi in gp.input:
            if vi.name in inits:
                continue
            shape, dt = self._input_shape(vi), self._elem(vi)
            if vi.name in self.bind:  # a decoder's attention mask, positions, past keys and values (onnx_past.py)
                self.values[vi.name] = self.g.add_const(vi.name, np.ascontiguousarray(onnx_past.bound_value(vi.name, shape), dt.np))
            else:
                self.values[vi.name] = self.g.add_input(vi.name, shape, dt)
        for k, i in enumerate(node_order(gp, self.canonical)):  # (unnamed nodes named by their place in that order)
            self._node(gp.node[i], gp.node[i].name or f"{gp.node[i].op_type}_{k}")
        for vo in gp.output:
            if vo.name not in self.values:
                raise SlmcError(f"graph output {quote(vo.name)} is computed by no node", "the ONNX file is malformed")
        outs: list[Value] = []
        for vo in gp.output:
            v = self.values[vo.name]
            if v.kind != ValueKind.TEMP or v in outs:
                # a graph output is the caller's buffer: give it a value of its own to be copied into
                v = self._add("Identity", [v], [self.g.unique(f"{vo.name}.out")], {}, f"{vo.name}.copy")[0]
            outs.append(v)
        self.g.outputs = outs
        self.g.convention = onnx_convention.Convention(self.convention.name, self.convention.why, tuple(self.applied))
        return verify(self.g, mixed=True)

    def _elem(self, vi: onnx.ValueInfoProto) -> DType:
        if not vi.type.HasField("tensor_type"):
            raise SlmcError(f"graph input {quote(vi.name)} is not a tensor (sequences, maps and optionals are not supported)",
                            "export the model with tensor inputs only")
        return dtype_of(vi.type.tensor_type.elem_type, f"graph input {quote(vi.name)}")

    def _input_shape(self, vi: onnx.ValueInfoProto) -> tuple[int, ...]:
        self._elem(vi)
        if not vi.type.tensor_type.HasField("shape"):  # (an unknown rank, not a scalar)
            raise SlmcError(f"graph input {quote(vi.name)} has no shape", "export the model with fixed input shapes")
        shape = []
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_value"):
                shape.append(d.dim_value)
            elif (d.dim_param or "?") in self.dims:
                shape.append(self.dims[d.dim_param or "?"])
            else:
                raise SlmcError(f"graph input {quote(vi.name)} has a dynamic dimension {quote(d.dim_param or '?')}",
                                "slmc compiles static shapes: export the model with fixed input shapes")
        return check_shape(shape, self._elem(vi).size, f"graph input {quote(vi.name)}")  # before anything is sized by it

    # ---- nodes ----------------------------------------------------------------------------------
    def _attrs(self, node: onnx.NodeProto, name: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for a in node.attribute:
            if a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
                raise SlmcError(f"ONNX {node.op_type} node {quote(name)} holds a subgraph (control flow is not supported)",
                                "export the model without If/Loop/Scan")
            if a.type in (onnx.AttributeProto.SPARSE_TENSOR, onnx.AttributeProto.SPARSE_TENSORS,
                          onnx.AttributeProto.TYPE_PROTO, onnx.AttributeProto.TYPE_PROTOS, onnx.AttributeProto.TENSORS):
                raise SlmcError(f"ONNX {node.op_type} node {quote(name)} has attribute {quote(a.name)} of a kind slmc does not read",
                                "export the model without it")
            v = onnx.helper.get_attribute_value(a)
            if a.type == onnx.AttributeProto.TENSOR:
                v = _array(v, f"attribute {quote(a.name)} of node {quote(name)}")
            elif isinstance(v, bytes):
                v = v.decode(errors="replace")
            elif isinstance(v, list):
                v = [x.decode(errors="replace") if isinstance(x, bytes) else x for x in v]
            out[a.name] = v
        return out

    def _node(self, node: onnx.NodeProto, name: str) -> None:
        op = node.op_type
        if op == "Constant" or node.input and op not in ("QuantizeLinear", "DequantizeLinear") and all(
                not i or i in self.ort_consts for i in node.input):  # what onnxruntime's constant folding folds
            self.ort_consts.update(node.output)
        custom = onnx_deeploy.op_name(node.domain, op)  # Deeploy's integer operators (and two float ones)
        lowered = custom is None and onnx_qlinear.handles(node.domain, op)  # QOperator nodes (onnx_qlinear.py)
        refused = None if custom is not None or lowered else onnx_qlinear.refuse_quantized(node.domain, op, name)
        if refused is not None:  # a quantized operator slmc has no integer lowering for: named, with the fix
            raise refused
        if custom is None and not lowered and node.domain not in ("", "ai.onnx"):
            raise unsupported(f"{node.domain}.{op}", name)
        if custom is None and not lowered and op not in SUPPORTED:
            self._fold_foreign(node, name)  # an exporter's shape-only helper becomes constants (onnx_fold.py)
            return
        attrs = self._attrs(node, name)
        if custom is not None:
            op, attrs = custom, onnx_deeploy.normalise(custom, attrs, name)
        # onnxruntime's float arithmetic where it may differ (ir/numerics.py)
        attrs = numerics.mark(op, attrs, self.quantized)
        if op == "Constant":
            self.values[node.output[0]] = self.g.add_const(node.output[0], self._constant(attrs, name))
            return
        ins: list[Value | None] = []
        for i in node.input:
            if i and i not in self.values:
                raise SlmcError(f"node {quote(name)} reads {quote(i)}, which no earlier node computes",
                                "the ONNX graph is not in topological order or is malformed")
            ins.append(self.values[i] if i else None)
        if op == "MatMul" and numerics.is_ort(attrs):
            attrs[numerics.PACKED] = int(node.input[1] in self.ort_consts)
        outs = list(node.output)
        while outs and not outs[-1]:
            outs.pop()
        outs = [o or f"{name}.unused{k}" for k, o in enumerate(outs)]
        if lowered:
            self.values[outs[0]] = onnx_qlinear.lower(op, name, ins, attrs, outs[0], self._add, self._const,
                                                      self._value_of)
            return
        if op in ("QuantizeLinear", "DequantizeLinear"):
            ins, attrs = onnx_qlinear.canonical_quantize(op, ins, attrs, self._const, self._add, name)
        if onnx_convention.softmax_last_axis(self.convention.name, op, self.opset, attrs):
            attrs["axis"] = -1  # (with opset < 13's coercion to 2-D from the last axis: over the last axis)
            self.applied.append(f"Softmax node {quote(name)} (no axis, opset {self.opset}): over the last axis, "
                                "as Deeploy's kernels compute it, not over all axes from axis 1")
        if op == "Cast":
            attrs = {"to": dtype_of(attrs["to"], f"the target of Cast node {quote(name)}")}
        elif op == "CastLike":
            op, attrs, ins = "Cast", {"to": ins[1].dtype}, ins[:1]  # type: ignore[union-attr]
        elif op in ("Sum", "Mean") or op in ("Max", "Min") and len(ins) != 2:
            self._variadic(op, ins, outs[0], name)
            return
        elif op == "Dropout":
            self._dropout(ins, outs, name)
            return
        elif op == "Pow" and ins[0].dtype.is_float and ins[1].dtype != ins[0].dtype:  # type: ignore[union-attr]
            # a float raised to an integer power: the exponent converted once, so one kernel serves
            ins[1] = self._add("Cast", [ins[1]], [f"{name}.exponent"], {"to": ins[0].dtype}, f"{name}.cast")[0]  # type: ignore
        n = NodeIn(op, name, self.opset, ins, attrs, len(outs), self._value_of, self._const)
        canonicalize(n)
        for o, v in zip(outs, self._add(n.op, n.inputs, outs, n.attrs, name)):
            self.values[o] = v

    def _fold_foreign(self, node: onnx.NodeProto, name: str) -> None:
        """An operator slmc does not translate: folded to constants where its inputs are known now."""
        if any(i and i not in self.values for i in node.input):
            raise unsupported(node.op_type, name)
        known = [self._value_of(self.values[i]) if i else None for i in node.input]
        if not onnx_fold.foldable(node, [k is not None for i, k in zip(node.input, known) if i]):
            raise unsupported(node.op_type, name)
        for o, arr in zip(node.output, onnx_fold.fold(node, name, self.opset, known)):
            if o and arr is not None:
                self.values[o] = self.g.add_const(o, arr)

    def _variadic(self, op: str, ins: list[Value | None], out: str, name: str) -> None:
        vals = [v for v in ins if v is not None]
        if len(vals) == 1:
            self.values[out] = self._add("Identity", vals, [out], {}, name)[0]
            return
        binary = {"Sum": "Add", "Mean": "Add"}.get(op, op)
        acc = vals[0]
        for k, v in enumerate(vals[1:]):
            last = k == len(vals) - 2 and op != "Mean"
            acc = self._add(binary, [acc, v], [out if last else f"{name}.{k}"], {}, f"{name}.{k}")[0]
        if op == "Mean":
            div = self._const(f"{name}.n", np.array(len(vals), dtype=acc.dtype.np))
            acc = self._add("Div", [acc, div], [out], {}, name)[0]
        self.values[out] = acc

    def _dropout(self, ins: list[Value | None], outs: list[str], name: str) -> None:
        training = ins[2] if len(ins) > 2 else None
        if training is not None and (self._value_of(training) is None or bool(self._value_of(training).reshape(-1)[0])):
            raise SlmcError(f"Dropout node {quote(name)} runs in training mode (random)", "export the model in eval mode")
        x = ins[0]
        assert x is not None
        self.values[outs[0]] = self._add("Identity", [x], outs[:1], {}, name)[0]
        if len(outs) > 1:  # the mask of an inference-mode dropout keeps everything
            self.values[outs[1]] = self.g.add_const(outs[1], np.ones(x.shape, dtype=bool))

    def _value_of(self, v: Value) -> np.ndarray | None:
        return v.data if v.kind == ValueKind.CONST else self.known.get(id(v))

    def _const(self, name: str, arr: np.ndarray) -> Value:
        return self.g.add_const(self.g.unique(name), np.asarray(arr))

    def _constant(self, a: dict[str, Any], name: str) -> np.ndarray:
        if "value" in a:
            return a["value"]
        for key, dt in (("value_float", np.float32), ("value_floats", np.float32), ("value_int", np.int64),
                        ("value_ints", np.int64)):
            if key in a:
                return np.array(a[key], dtype=dt)
        raise SlmcError(f"Constant node {quote(name)} has no tensor value slmc can read", "export it as a dense tensor")

    def _add(self, op: str, ins: list[Value | None], outs: list[str], attrs: dict[str, Any], name: str) -> list[Value]:
        fn = REFERENCE[op]
        known = [None if v is None else self._value_of(v) for v in ins]
        # the operator's rules first: they refuse bad attributes and shapes, and size the outputs before a
        # twin allocates anything (ir/op_rules.py); the file's shape annotations are not believed
        ruled = infer(op, name, [None if v is None else v.type for v in ins], attrs, len(outs), known, mixed=True)
        for t, o in zip(ruled or [], outs):
            check_type(t, f"output {quote(o)} of {op} node {quote(name)}")
        shape_only = op in ("Shape", "Size")
        exact = all(v is None or k is not None for v, k in zip(ins, known)) or shape_only
        types: list[TensorType | None] = list(ruled) if ruled is not None else [None] * len(outs)
        arrays: list[np.ndarray] | None = None
        if exact or any(t is None for t in types):
            feed = [None if v is None else (k if k is not None else np.zeros(v.shape, v.dtype.np))
                    for v, k in zip(ins, known)]
            try:
                with np.errstate(all="ignore"):
                    arrays = [np.asarray(a) for a in fn(feed, dict(attrs, _out_shapes=[None] * len(outs)))]
            except SlmcError:
                raise
            except Exception as e:
                raise SlmcError(f"ONNX {op} node {quote(name)} cannot be evaluated with its inputs "
                                f"{[None if v is None else str(v.type) for v in ins]} and attributes "
                                f"{ {k: v for k, v in attrs.items() if not isinstance(v, np.ndarray)} } "
                                f"({type(e).__name__}: {str(e)[:80]})", "check the model") from None
            for k, arr in enumerate(arrays[:len(outs)]):
                if arr.dtype not in [d.np for d in DType]:
                    raise SlmcError(f"ONNX {op} node {quote(name)} computes {arr.dtype} data, which slmc does not support",
                                    "use float32, float64, bool or (unsigned) 8/16/32/64-bit integers")
                t = TensorType(tuple(arr.shape), DType.from_numpy(arr.dtype))
                if ruled is not None and t != ruled[k]:
                    raise SlmcError(f"{op} node {quote(name)}: its rules give output {k} the type {ruled[k]}, evaluating "
                                    f"it gives {t}", "this is a bug in slmc; please report it")
                check_type(t, f"output {quote(outs[k])} of {op} node {quote(name)}")
                types[k] = t
        node = self.g.add_node(op, ins, types, attrs, name=name, out_names=outs)  # type: ignore[arg-type]
        if exact and arrays is not None:
            for v, arr in zip(node.outputs, arrays):
                self.known[id(v)] = arr
        return node.outputs


def import_graph(model: onnx.ModelProto, dims: dict[str, int] | None = None, bind: frozenset[str] = frozenset(),
                 canonical: bool = False, convention: str = "auto") -> Graph:
    """The ONNX graph as IR, node for node, shapes static (symbolic dimensions bound by `dims`); the graph
    inputs named in `bind` become constants (SEQ_INPUTS). Nodes in the file's order where it is topological,
    in the canonical order with `canonical` (onnx_read.node_order); `convention`: onnx_convention.py."""
    return _Importer(model, dims or {}, bind, canonical, convention).run()
