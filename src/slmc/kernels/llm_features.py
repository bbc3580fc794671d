"""Registry entries of the element-wise kernels that issue 17's decoder families add to the Llama block:
gated GELU (Gemma), ReLU (OPT) and SiLU FFNs, the multipliers (Gemma's sqrt(dim) embedding scale, Granite's)
and soft-capping (Gemma 2). Each is row-wise with constants shared by every row."""

from __future__ import annotations

from slmc.cquote import c_float
from slmc.ir import DType, Node
from slmc.kernels.overlap import elementwise
from slmc.kernels.registry import KernelSpec, register
from slmc.kernels.tiles import RowTiles

F32 = DType.F32


def _count(n: Node, rows: str) -> str:
    return f"{rows} * {n.outputs[0].type.numel // n.outputs[0].shape[0]}"


register(KernelSpec("geglu", F32, "geglu_f32.c",
                    lambda n, c: f"slmc_geglu_f32({c.out()}, {c.ref(0)}, {c.ref(1)}, {_count(n, c.rows)}, "
                                 f"{n.attrs.get('approximate', 0)});",
                    tiling=RowTiles((0, 1)), overlap=elementwise(0, 1), batch="rows"))
register(KernelSpec("relu", F32, "relu_f32.c",
                    lambda n, c: f"slmc_relu_f32({c.out()}, {c.ref(0)}, {_count(n, c.rows)});",
                    tiling=RowTiles((0,)), overlap=elementwise(0), batch="rows"))
register(KernelSpec("silu", F32, "silu_f32.c",
                    lambda n, c: f"slmc_silu_f32({c.out()}, {c.ref(0)}, {_count(n, c.rows)});",
                    tiling=RowTiles((0,)), overlap=elementwise(0), batch="rows"))
register(KernelSpec("scale", F32, "scale_f32.c",
                    lambda n, c: f"slmc_scale_f32({c.out()}, {c.ref(0)}, {_count(n, c.rows)}, "
                                 f"{c_float(n.attrs['factor'])});",
                    tiling=RowTiles((0,)), overlap=elementwise(0), batch="rows"))
register(KernelSpec("softcap", F32, "softcap_f32.c",
                    lambda n, c: f"slmc_softcap_f32({c.out()}, {c.ref(0)}, {_count(n, c.rows)}, "
                                 f"{c_float(n.attrs['cap'])});",
                    tiling=RowTiles((0,)), overlap=elementwise(0), batch="rows"))
