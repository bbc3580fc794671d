"""Registry entries of the multi-chip operators (plan/partition.py): the collectives, which call
the link runtime (c/link_runtime.c, the only new dependency of a partitioned chip's C), and the two
q8 kernels that quantize an activation split over chips with scales agreed over the links."""

from __future__ import annotations

from slmc.ir import DType, Node
from slmc.kernels.registry import KernelSpec, register

F32 = DType.F32
RUNTIME = ("link_runtime.c",)


def _count(n: Node, c) -> str:
    per_row = n.outputs[0].type.numel // n.outputs[0].shape[0]
    return f"{c.rows} * {per_row}"


def _k(n: Node) -> int:
    return n.inputs[0].shape[-1]  # type: ignore[union-attr]


def _out_bytes(n: Node) -> int:
    return n.outputs[0].nbytes


register(KernelSpec("allreduce_sum", F32, "link_allreduce_sum.c",
                    lambda n, c: f"slmc_allreduce_sum_f32({c.out()}, {c.ref(0)}, {c.scratch()}, {_count(n, c)});",
                    scratch=_out_bytes, deps=RUNTIME))
register(KernelSpec("allreduce_max", F32, "link_allreduce_max.c",
                    lambda n, c: f"slmc_allreduce_max_f32({c.out()}, {c.ref(0)}, {c.scratch()}, {_count(n, c)});",
                    scratch=_out_bytes, deps=RUNTIME))
register(KernelSpec("broadcast", F32, "link_broadcast.c",
                    lambda n, c: f"slmc_broadcast_f32({c.out()}, {c.ref(0)}, {_count(n, c)});", deps=RUNTIME))
# -q int8: the residual is int32 and the partial sums of Wo and W2 are int64 (exact, order-free)
register(KernelSpec("allreduce_sum", DType.I64, "link_allreduce_sum_i64.c",
                    lambda n, c: f"slmc_allreduce_sum_i64({c.out()}, {c.ref(0)}, {c.scratch()}, {_count(n, c)});",
                    scratch=_out_bytes, deps=RUNTIME))
register(KernelSpec("broadcast", DType.I32, "link_broadcast.c",
                    lambda n, c: f"slmc_broadcast_i32({c.out()}, {c.ref(0)}, {_count(n, c)});", deps=RUNTIME))
register(KernelSpec("q8_absmax", F32, "q8_absmax.c",
                    lambda n, c: f"slmc_q8_absmax({c.out()}, {c.ref(0)}, {c.rows}, {n.inputs[0].shape[-1]}, "  # type: ignore[union-attr]
                                 f"{n.attrs['offset']}, {n.attrs['group']}, {n.outputs[0].shape[-1]});"))
register(KernelSpec("quantize_q8_scaled", F32, "quantize_q8_scaled.c",
                    lambda n, c: f"slmc_quantize_q8_scaled({c.out(0)}, {c.out(1)}, {c.ref(0)}, {c.ref(1)}, {c.rows}, "
                                 f"{_k(n)}, {n.attrs['offset']}, {n.attrs['group']}, {n.inputs[1].shape[-1]});"))  # type: ignore[union-attr]
register(KernelSpec("linear_q8_dots", DType.I8, "linear_q8_dots.c",
                    lambda n, c: f"slmc_linear_q8_dots({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.rows}, {_k(n)}, "
                                 f"{n.inputs[1].shape[0]}, {n.attrs['offset']}, {n.attrs['group']});",  # type: ignore[union-attr]
                    macs=lambda n: _k(n) * n.inputs[1].shape[0] * n.outputs[0].shape[0]))  # type: ignore[union-attr]


def _fold_q8(n: Node, c) -> str:
    m = n.outputs[0].shape[-1]
    return (f"slmc_fold_q8({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, {c.ref(3)}, {c.scratch()}, {c.rows}, {m}, "
            f"{n.attrs['k']}, {n.attrs['offset']}, {n.attrs['group']}, {n.attrs['carry']});")


# inputs: dots (i32, or absent on a chip without a share), ws, xs, bias: the first present input may be
# the int32 dots or, on a chip without a share, nothing at all
for _dt in (DType.I32, F32):
    register(KernelSpec("fold_q8", _dt, "link_fold_q8.c", _fold_q8, deps=RUNTIME,
                        scratch=lambda n: n.outputs[0].nbytes * (2 if n.attrs["carry"] else 1)))
