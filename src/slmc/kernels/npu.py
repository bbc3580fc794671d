"""The NPU engine's kernel entry (targets/engines.py Npu): linear_q8 on weights in the NPU's bit-plane
layout (passes/npu_weights.py). Its arithmetic and layout are quant/npu.py, its cost model
sim/engine_cost.py; the numpy twin is linear_q8's (reference/llm_ops.py reads the layout back).
"""

from __future__ import annotations


def _register() -> None:
    from slmc.ir import DType
    from slmc.kernels.registry import KernelSpec, register

    register(KernelSpec(
        "linear_q8", DType.I8, "npu_linear.c",
        lambda n, c: (f"slmc_npu_linear_q8({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, {c.ref(3)}, {c.ref(4)}, "
                      f"{c.rows}, {n.inputs[0].shape[-1]}, {n.outputs[0].shape[-1]}, {n.attrs['group']}, "
                      f"{n.attrs['npu_bits']});"),
        macs=lambda n: n.inputs[0].shape[-1] * n.outputs[0].shape[-1] * n.outputs[0].shape[0],
        where=lambda n: n.attrs.get("layout") == "npu",  # weights in the NPU's layout (passes/npu_weights.py)
        engine="npu"))


_register()
