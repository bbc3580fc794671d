"""Registry entries of the integer-only language-model kernels (-q int8, quant/int8.py); numpy twins
in reference/int_llm_ops.py."""

from __future__ import annotations

from slmc.ir import DType, Node
from slmc.kernels.registry import KernelSpec, register

I8, I16, I32 = DType.I8, DType.I16, DType.I32


def _last(n: Node) -> int:
    return n.inputs[0].shape[-1]  # type: ignore[union-attr]


def _attention_macs(n: Node) -> int:  # as kernels/llm.py counts attention: at position 0
    return 2 * n.attrs["n_heads"] * n.attrs["head_dim"] * n.outputs[0].shape[0]


def _macs_linear(n: Node) -> int:
    rows, cols = n.inputs[1].shape  # type: ignore[union-attr]
    return n.outputs[0].shape[0] * rows * cols


register(KernelSpec("embedding_i8", I8, "embedding_i8.c",
                    lambda n, c: f"slmc_embedding_i8({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, {c.rows}, "
                                 f"{_last(n)}, {n.attrs['group']}, {n.attrs['shift']});"))
register(KernelSpec("rmsnorm_i", I32, "rmsnorm_i.c",
                    lambda n, c: f"slmc_rmsnorm_i({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.rows}, {_last(n)}, "
                                 f"(int64_t){n.attrs['eps']}LL, {n.attrs['f_w']}, {n.attrs['f_out']});"))
def _linear(fn: str, isa: str, layout: str, scratch: bool = False) -> KernelSpec:
    return KernelSpec("linear_i8", I16, f"{fn}.c",
                      lambda n, c: f"slmc_{fn}({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, "
                                   + (f"{c.scratch()}, " if scratch else "") + f"{c.rows}, "
                                   f"{n.inputs[1].shape[0]}, {n.inputs[1].shape[1]}, {n.attrs['group']}, "  # type: ignore[union-attr]
                                   f"{n.attrs['shift']}, {n.attrs['out_bits']});",
                      isa=isa, macs=_macs_linear, where=lambda n: n.attrs.get("layout", "") == layout,
                      scratch=(lambda n: 2 * n.inputs[1].shape[1]) if scratch else (lambda n: 0))  # type: ignore[union-attr]


register(_linear("linear_i8", "any", ""))
# weights in quant/int8.py pack_rows4's order, chosen at compile time for these kernels
register(_linear("linear_i8_rv32", "rv32im", "rows4"))
register(_linear("linear_i8_dsp", "dsp", "rows4", scratch=True))


def int8_layout(features: frozenset[str]) -> str:
    """The linear_i8 weight order for a target with these ISA features."""
    return "rows4" if "rv32im" in features or "dsp" in features else ""


register(KernelSpec("rope_i", I16, "rope_i.c",
                    lambda n, c: f"slmc_rope_i({c.out()}, {c.ref(0)}, {c.ref(2)}, {c.ref(3)}, {c.rows}, {_last(n)}, "
                                 f"{n.attrs['head_dim']}, {c.pos}, {n.attrs['interleaved']}, {n.attrs['frac']});"))
register(KernelSpec("kv_write", I16, "kv_write_i16.c",
                    lambda n, c: f"slmc_kv_write_i16({c.ref(0)}, {c.ref(1)}, {c.pos}, {c.rows}, {_last(n)});"))
register(KernelSpec("attention_i", I16, "attention_i.c",
                    lambda n, c: f"slmc_attention_i({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, {c.scratch()}, "
                                 f"{c.ref(4)}, {c.rows}, {n.attrs['n_heads']}, {n.attrs['n_kv_heads']}, "
                                 f"{n.attrs['head_dim']}, {c.pos}, {n.inputs[1].shape[0]}, "  # type: ignore[union-attr]
                                 f"(int64_t){n.attrs['c']}LL, {n.attrs['c_shift']}, (int64_t){n.attrs['t_cap']}LL, "
                                 f"{n.attrs['f_out']}, {n.attrs['f_v']});",
                    scratch=lambda n: 4 * (n.inputs[1].shape[0] + 1) + 8 * n.attrs["head_dim"],  # type: ignore[union-attr]
                    macs=_attention_macs))
register(KernelSpec("add_i32", I32, "add_i32.c",
                    lambda n, c: f"slmc_add_i32({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.rows} * {_last(n)});"))
register(KernelSpec("swiglu_i", I32, "swiglu_i.c",
                    lambda n, c: f"slmc_swiglu_i({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, {c.rows} * {_last(n)}, "
                                 f"{n.attrs['f_in']}, {n.attrs['f_out']}, {n.attrs['step_log2']}, {n.attrs['range']});"))


# one chip of a partitioned model (frontend/build_int8_chips.py): partial sums, then the shift after the sum
register(KernelSpec("linear_i8_partial", I16, "linear_i8_partial.c",
                    lambda n, c: f"slmc_linear_i8_partial({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, {c.rows}, "
                                 f"{n.inputs[1].shape[0]}, {n.inputs[1].shape[1]}, {n.attrs['offset']}, "  # type: ignore[union-attr]
                                 f"{n.attrs['group']});",
                    macs=_macs_linear))
register(KernelSpec("requant_i64", DType.I64, "requant_i64.c",
                    lambda n, c: f"slmc_requant_i64({c.out()}, {c.ref(0)}, {c.rows} * {_last(n)}, {n.attrs['shift']});"))
