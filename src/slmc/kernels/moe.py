"""Registry entries of the mixture-of-experts kernels (frontend/build.py's MoE FFN, reference/moe_ops.py)."""

from __future__ import annotations

from slmc.ir import DType, Node
from slmc.kernels.registry import KernelSpec, register

F32 = DType.F32


def _dims(n: Node) -> tuple[int, int, int]:
    """(rows, dim, expert hidden) of a moe_experts node: its weights are [n_experts, hidden, dim] first."""
    x, w1 = n.inputs[0], n.inputs[3]
    return x.shape[0], x.shape[-1], w1.shape[1]  # type: ignore[union-attr]


def _cache_args(n: Node, c, first: int) -> str:
    """The expert cache's arguments (passes/expert_cache.py): its pool and table (inputs `first`, `first` + 1),
    size, policy and this layer's first tag (c.attr: a layer-table entry in a layer loop); none: NULL."""
    if len(n.inputs) <= first:
        return "NULL, NULL, 0, 0, 0, 0"
    a = n.attrs
    return (f"{c.ref(first)}, {c.ref(first + 1)}, {a['slots']}, {a['slot_bytes']}, {a['lru']}, {c.attr('tag0')}")


def _expert_macs(n: Node) -> int:
    """MACs of the chosen experts only: k experts of 3 * hidden * dim each, per row."""
    rows, dim, hidden = _dims(n)
    return rows * n.attrs["k"] * 3 * hidden * dim


register(KernelSpec("moe_topk", F32, "moe_topk_f32.c",
                    lambda n, c: f"slmc_moe_topk_f32({c.out(0)}, {c.out(1)}, {c.ref(0)}, {c.scratch()}, {c.rows}, "
                                 f"{n.inputs[0].shape[-1]}, {n.attrs['k']}, "  # type: ignore[union-attr]
                                 f"{n.attrs['renorm']});",
                    scratch=lambda n: 4 * n.inputs[0].shape[-1]))  # type: ignore[union-attr]
register(KernelSpec("sigmoid_mul", F32, "sigmoid_mul_f32.c",  # a shared expert's output, scaled by its gate
                    lambda n, c: f"slmc_sigmoid_mul_f32({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.rows}, "
                                 f"{n.inputs[0].shape[-1]});"))  # type: ignore[union-attr]
register(KernelSpec("moe_experts", F32, "moe_experts_f32.c",
                    lambda n, c: f"slmc_moe_experts_f32({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, {c.ref(3)}, "
                                 f"{c.ref(4)}, {c.ref(5)}, {c.scratch()}, {c.rows}, {_dims(n)[1]}, {_dims(n)[2]}, "
                                 f"{n.attrs['k']}, {_cache_args(n, c, 6)});",
                    scratch=lambda n: 4 * _dims(n)[2], macs=_expert_macs, deps=("expert_cache.c",)))


def _q8_scratch(n: Node) -> int:
    """moe_experts_q8.c's scratch: the scales of x and of the SwiGLU row, the gate row (floats), then x and the
    SwiGLU row quantized (int8)."""
    _, dim, hidden = _dims(n)
    return 4 * (dim // n.attrs["group"] + hidden // n.attrs["hidden_group"] + hidden) + dim + hidden


register(KernelSpec("moe_experts_q8", F32, "moe_experts_q8.c",
                    lambda n, c: f"slmc_moe_experts_q8({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, {c.ref(3)}, "
                                 f"{c.ref(4)}, {c.ref(5)}, {c.ref(6)}, {c.ref(7)}, {c.ref(8)}, {c.scratch()}, {c.rows}, "
                                 f"{_dims(n)[1]}, {_dims(n)[2]}, {n.attrs['k']}, {n.attrs['group']}, "
                                 f"{n.attrs['hidden_group']}, {_cache_args(n, c, 9)});",
                    scratch=_q8_scratch, macs=_expert_macs, deps=("quantize_q8.c", "expert_cache.c")))
