"""Registry entries of the quantized kernels onnxruntime runs through a lookup table or a scalar loop
(frontend/onnx_qlinear_ext.py; reference/quant_lut_ops.py): QLinearLookup (QLinearSigmoid, QLinearLeakyRelu),
QLinearMul, QLinearSoftmax, QuantizeAfterZp (QLinearAveragePool's quantization)."""

from __future__ import annotations

from slmc.ir import DType, Node
from slmc.kernels.onnx import CAST_CODES, GraphCallContext
from slmc.kernels.overlap import elementwise
from slmc.kernels.registry import KernelSpec, register

EIGHT = (DType.I8, DType.U8)


def _x(n: Node):  # type: ignore[no-untyped-def]
    x = n.inputs[0]
    assert x is not None
    return x


def _lookup(n: Node, c: GraphCallContext) -> str:
    return f"slmc_qlinear_lookup((uint8_t *){c.out()}, (const uint8_t *){c.ref(0)}, (const uint8_t *){c.ref(1)}, " \
           f"{_x(n).type.numel});"


def _mul(n: Node, c: GraphCallContext) -> str:
    x = _x(n)
    return (f"slmc_qlinear_mul({c.out()}, {c.ref(0)}, {c.ref(1)}, {CAST_CODES[x.dtype]}, {c.ref(2)}, {c.ref(3)}, "
            f"{c.ref(4)}, {c.ref(5)}, {x.type.numel});")


def _softmax(n: Node, c: GraphCallContext) -> str:
    x = _x(n)
    d = x.shape[-1]
    return (f"slmc_qlinear_softmax({c.out()}, {c.ref(0)}, {CAST_CODES[x.dtype]}, {c.ref(1)}, {c.ref(2)}, {c.ref(3)}, "
            f"{x.type.numel // d}, {d});")


def _quantize(n: Node, c: GraphCallContext) -> str:
    return (f"slmc_quantize_after_zp({c.out()}, {CAST_CODES[n.outputs[0].dtype]}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, "
            f"{_x(n).type.numel});")


def _guard(emit):  # type: ignore[no-untyped-def]
    def guarded(n: Node, c: GraphCallContext) -> str:
        return "/* empty output: nothing to compute */" if n.outputs[0].type.numel == 0 else emit(n, c)
    return guarded


# the element-wise ones walk memory in order: the output may lie over the input it has consumed
for _dt in EIGHT:
    register(KernelSpec("QLinearLookup", _dt, "qlinear_lookup.c", _guard(_lookup), overlap=elementwise(0)))
    register(KernelSpec("QLinearMul", _dt, "qlinear_mul.c", _guard(_mul), overlap=elementwise(0, 1)))
    register(KernelSpec("QLinearSoftmax", _dt, "qlinear_softmax.c", _guard(_softmax)))
register(KernelSpec("QuantizeAfterZp", DType.F32, "quantize_after_zp.c", _guard(_quantize)))
