"""Registry entries of Deeploy's integer operators (kernels/c/deeploy_*.c, one file per operator).

The integer kernels read and write any integer type: each call passes its tensors' type codes (the
codes of cast.c), so one C function serves the types the importer proved (frontend/onnx_deeploy.py).
Attributes are the canonical ones of onnx_deeploy.normalise. Each entry is registered for every
integer type of its first input.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from slmc.cquote import c_float
from slmc.ir import DType, Node, Value
from slmc.kernels.onnx import CAST_CODES, GraphCallContext, _mm_dims, contiguous, gemm_dims, merge_axes
from slmc.kernels.registry import KernelSpec, register
from slmc.ir.shapes import mean_axes, pool_geometry
from slmc.reference.deeploy_ops import levels

INTS = (DType.I8, DType.U8, DType.I16, DType.U16, DType.I32, DType.U32, DType.I64)


def _t(v: Value | None) -> str:
    """A tensor's type code, with its name for the reader."""
    return "0" if v is None else f"{CAST_CODES[v.dtype]} /* {v.dtype.short} */"


def _io(n: Node, c: GraphCallContext, *ins: int) -> str:
    """`y, ytype, x, xtype, ...`: the output and the given inputs with their type codes."""
    parts = [f"{c.out()}, {_t(n.outputs[0])}"] + [f"{c.ref(i)}, {_t(n.inputs[i])}" for i in ins]
    return ", ".join(parts)


def _rows(n: Node) -> tuple[int, int]:
    x = n.inputs[0]
    assert x is not None
    width = x.shape[-1] if x.shape else 1
    return x.type.numel // max(width, 1), width


def _channels(param: Value, out: tuple[int, ...]) -> tuple[int, int]:
    """(channels, inner) such that element i of `out` reads param[(i / inner) % channels]; a parameter
    whose non-broadcast axes are not adjacent has been expanded to the output's shape by the caller."""
    shape = (1,) * (len(out) - len(param.shape)) + tuple(param.shape)
    axes = [d for d, s in enumerate(shape) if s != 1]
    if not axes:
        return 1, 1
    return math.prod(out[axes[0]:axes[-1] + 1]), math.prod(out[axes[-1] + 1:])


def _requant_shift(n: Node, c: GraphCallContext) -> str:
    y = n.outputs[0]
    (mch, min_), (ach, ain) = (_channels(n.inputs[i], y.shape) for i in (1, 2))  # type: ignore[arg-type]
    lo, hi = levels(n.attrs["n_levels"], n.attrs["signed"])
    return (f"slmc_requant_shift({_io(n, c, 0)}, {y.type.numel}, {c.ref(1)}, {mch}, {min_}, {c.ref(2)}, {ach}, "
            f"{ain}, {n.attrs['shift']}, {lo}, {hi});")


def _i_softmax(n: Node, c: GraphCallContext) -> str:
    a = n.attrs
    rows, width = _rows(n)
    return (f"slmc_isoftmax({_io(n, c, 0)}, {rows}, {width}, {a['coeffA']}, {a['coeffB']}, {a['coeffC']}, "
            f"{a['log2']}, {a['n_levels']});")


def _ita_max(n: Node, c: GraphCallContext) -> str:
    rows, width = _rows(n)
    return f"slmc_itamax({_io(n, c, 0)}, {rows}, {width}, {n.attrs['n_levels']});"


def _ita_partial_max(n: Node, c: GraphCallContext) -> str:
    rows, width = _rows(n)
    return (f"slmc_itapartialmax({_io(n, c, 0)}, {rows}, {width}, {n.attrs['group_width']}, "
            f"{n.attrs['n_levels']});")


def _i_rms_norm(n: Node, c: GraphCallContext) -> str:
    rows, width = _rows(n)
    lo, hi = levels(n.attrs["n_levels"], 1)
    return f"slmc_irmsnorm({_io(n, c, 0, 1)}, {rows}, {width}, {n.attrs['shift']}, {lo}, {hi});"


def _i_layer_norm(n: Node, c: GraphCallContext) -> str:
    rows, width = _rows(n)
    return f"slmc_ilayernorm({_io(n, c, 0, 1, 2)}, {rows}, {width}, {n.attrs['shift']});"


def _numel(n: Node) -> int:
    return n.outputs[0].type.numel


def _i_gelu(n: Node, c: GraphCallContext) -> str:
    return f"slmc_igelu({_io(n, c, 0)}, {_numel(n)}, {n.attrs['b']}, {n.attrs['one']});"


def _i_hardswish(n: Node, c: GraphCallContext) -> str:
    a = n.attrs
    return f"slmc_ihardswish({_io(n, c, 0)}, {_numel(n)}, {a['one_over_six']}, {a['three']}, {a['six']});"


def _true_integer_div(n: Node, c: GraphCallContext) -> str:
    a = n.attrs
    return f"slmc_true_integer_div({_io(n, c, 0)}, {_numel(n)}, {a['Delta']}, {a['eta']}, {a['eps']}, {a['y']});"


def _i_no_norm(n: Node, c: GraphCallContext) -> str:
    return f"slmc_inonorm({_io(n, c, 0, 1, 2)}, {_numel(n)}, {n.attrs['mul']}, {n.attrs['shift']});"


def _integer_div(n: Node, c: GraphCallContext) -> str:
    a = n.attrs
    return f"slmc_integer_div({_io(n, c, 0, 1)}, {_numel(n)}, {a['Delta']}, {a['eta']}, {a['eps']});"


def _integer_mean(n: Node, c: GraphCallContext) -> str:
    x = n.inputs[0]
    assert x is not None
    axes = mean_axes(len(x.shape), n.attrs)
    outer, red = math.prod(x.shape[:axes[0]]), math.prod(x.shape[axes[0]:axes[-1] + 1])
    return f"slmc_integer_mean({_io(n, c, 0)}, {outer}, {red}, {math.prod(x.shape[axes[-1] + 1:])});"


def _int_matmul(n: Node, c: GraphCallContext) -> str:
    m, k, nn, batch, sa, sb = _mm_dims(n)
    so = contiguous(batch)
    sh, st = merge_axes(batch, [[s * m * nn for s in so], [s * m * k for s in sa], [s * k * nn for s in sb]])
    return (f"slmc_int_matmul({_io(n, c, 0, 1)}, {m}, {k}, {nn}, {len(sh)}, {c.ints(sh)}, "
            f"{c.ints([x for s in st for x in s])});")


def _int_gemm(n: Node, c: GraphCallContext) -> str:
    cc = n.inputs[2] if len(n.inputs) > 2 else None
    m, k, nn, ars, acs, brs, bcs, crs, ccs = gemm_dims(n)
    cref = f"{c.ref(2)}, {_t(cc)}" if cc is not None else "NULL, 0"
    return (f"slmc_int_gemm({_io(n, c, 0, 1)}, {cref}, {m}, {k}, {nn}, {ars}, {acs}, {brs}, {bcs}, {crs}, {ccs}, "
            f"{int(n.attrs.get('alpha', 1))}, {int(n.attrs.get('beta', 1))});")


def _spatial(n: Node) -> tuple[list[int], list[int], dict[str, list[int]]]:
    """x's shape and the kernel's as 2-D (a 1-D op gets h = kh = 1), and the geometry as 2-D."""
    x = n.inputs[0]
    assert x is not None
    kernel = tuple(n.inputs[1].shape[2:]) if n.op == "Conv" else tuple(n.attrs["kernel_shape"])  # type: ignore
    g = pool_geometry(x.shape, kernel, n.attrs)
    if len(kernel) == 1:
        return [*x.shape[:2], 1, x.shape[2]], [1, kernel[0]], {k: [0 if k in ("begin", "end") else 1, *v] for k, v in g.items()}
    return list(x.shape), list(kernel), g


def _conv(n: Node, c: GraphCallContext) -> str:
    shape, k, g = _spatial(n)
    geom = [*shape, n.outputs[0].shape[1], *k, *g["out"], int(n.attrs.get("group", 1)), *g["strides"],
            *g["dilations"], *g["begin"]]
    bias = f"{c.ref(2)}, {_t(n.inputs[2])}" if len(n.inputs) > 2 and n.inputs[2] is not None else "NULL, 0"
    return (f"slmc_int_conv2d({_io(n, c, 0, 1)}, {bias}, {c.ints(geom)} "
            f"/* n c h w m kh kw oh ow group stride dilation pad_top pad_left */);")


def _max_pool(n: Node, c: GraphCallContext) -> str:
    shape, k, g = _spatial(n)
    geom = [shape[0] * shape[1], *shape[2:], *k, *g["out"], *g["strides"], *g["dilations"], *g["begin"]]
    return (f"slmc_int_maxpool2d({_io(n, c, 0)}, {c.ints(geom)} "
            f"/* planes h w kh kw oh ow stride dilation pad_top pad_left */);")


def _rms_norm_f32(n: Node, c: GraphCallContext) -> str:
    rows, width = _rows(n)
    return (f"slmc_rms_norm_f32({c.out()}, {c.ref(0)}, {c.ref(1)}, {rows}, {width}, "
            f"{c_float(np.float32(n.attrs.get('eps', 1e-5)))});")


def _matmul_macs(n: Node) -> int:
    m, k, nn, batch, _, _ = _mm_dims(n)
    return m * k * nn * math.prod(batch)


def _reg(op: str, c_file: str, emit: Callable[[Node, GraphCallContext], str], dtypes: tuple[DType, ...] = INTS,
         macs: Callable[[Node], int] = lambda n: 0, deps: tuple[str, ...] = ()) -> None:
    for dt in dtypes:
        register(KernelSpec(op, dt, c_file, emit, macs=macs, deps=deps))  # type: ignore[arg-type]


_reg("RequantShift", "deeploy_requant_shift.c", _requant_shift)
_reg("iSoftmax", "deeploy_isoftmax.c", _i_softmax)
_reg("ITAMax", "deeploy_itamax.c", _ita_max)
_reg("ITAPartialMax", "deeploy_itapartialmax.c", _ita_partial_max)
_reg("iRMSNorm", "deeploy_irmsnorm.c", _i_rms_norm)
_reg("iLayerNorm", "deeploy_ilayernorm.c", _i_layer_norm)
_reg("iGELU", "deeploy_igelu.c", _i_gelu)
_reg("iHardswish", "deeploy_ihardswish.c", _i_hardswish)
_reg("TrueIntegerDiv", "deeploy_true_integer_div.c", _true_integer_div)
_reg("iNoNorm", "deeploy_inonorm.c", _i_no_norm)
_reg("IntegerDiv", "deeploy_integer_div.c", _integer_div)
_reg("IntegerMean", "deeploy_integer_mean.c", _integer_mean)
_reg("IntMatMul", "deeploy_matmul.c", _int_matmul, macs=_matmul_macs, deps=("nd.c",))
# ONNX MatMul on int32/int64 data (outside integer networks): the same kernel, the store wraps like ONNX runtimes
_reg("MatMul", "deeploy_matmul.c", _int_matmul, (DType.I32, DType.I64), macs=_matmul_macs, deps=("nd.c",))
_reg("IntGemm", "deeploy_gemm.c", _int_gemm,
     macs=lambda n: n.outputs[0].type.numel * n.inputs[0].shape[0 if n.attrs.get("transA") else 1])  # type: ignore
_reg("Conv", "deeploy_conv.c", _conv,
     macs=lambda n: n.outputs[0].type.numel * math.prod(n.inputs[1].shape[1:]))  # type: ignore[union-attr]
_reg("MaxPool", "deeploy_maxpool.c", _max_pool)
_reg("RMSNorm", "deeploy_rmsnorm_f32.c", _rms_norm_f32, (DType.F32,))
