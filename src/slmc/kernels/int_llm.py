"""Registry entries of the integer-only language-model kernels (-q int8, quant/int8.py); numpy twins
in reference/int_llm_ops.py. Their integer attributes (fractional bits, shifts, constants calibrated per
layer) are written through `c.attr`, so one layer loop can read each layer's from the layer table."""

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
                                 f"{_last(n)}, {c.attr('group')}, {c.attr('shift')});", batch="rows"))
def _groups(n: Node) -> str:  # qk-norm per head: each row is last/group rows of `group` features
    g = n.attrs.get("group", 0)
    return f" * {_last(n) // g}, {g}" if g else f", {_last(n)}"


register(KernelSpec("rmsnorm_i", I32, "rmsnorm_i.c",
                    lambda n, c: f"slmc_rmsnorm_i({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.rows}{_groups(n)}, "
                                 f"{c.attr('eps', wide=True)}, {c.attr('f_w')}, {c.attr('f_out')}, {c.attr('up')}, "
                                 f"{c.attr('out_bits')});", batch="rows"))
register(KernelSpec("layernorm_i", I32, "layernorm_i.c",
                    lambda n, c: f"slmc_layernorm_i({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, {c.rows}, {_last(n)}, "
                                 f"{c.attr('eps', wide=True)}, {c.attr('f_w')}, {c.attr('f_out')});", batch="rows"))
register(KernelSpec("bias_i", I32, "bias_i.c",
                    lambda n, c: f"slmc_bias_i({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.rows}, {_last(n)}, "
                                 f"{c.attr('out_bits')});", batch="rows"))
register(KernelSpec("scale_i", I32, "scale_i.c",
                    lambda n, c: f"slmc_scale_i({c.out()}, {c.ref(0)}, {c.rows} * {_last(n)}, {c.attr('m', wide=True)}, "
                                 f"{c.attr('shift')});", batch="rows"))
register(KernelSpec("gelu_i", I32, "gelu_i.c",
                    lambda n, c: f"slmc_gelu_i({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.rows} * {_last(n)}, "
                                 f"{c.attr('f_in')}, {c.attr('f_out')}, {c.attr('step_log2')}, {c.attr('range')});",
                    batch="rows"))
register(KernelSpec("relu_i", I32, "relu_i.c",
                    lambda n, c: f"slmc_relu_i({c.out()}, {c.ref(0)}, {c.rows} * {_last(n)}, {c.attr('f_in')}, "
                                 f"{c.attr('f_out')});", batch="rows"))
register(KernelSpec("narrow_i", I32, "narrow_i.c",
                    lambda n, c: f"slmc_narrow_i({c.out()}, {c.ref(0)}, {c.rows} * {_last(n)}, {c.attr('f_in')}, "
                                 f"{c.attr('f_out')});", batch="rows"))
register(KernelSpec("pos_embedding_i8", I8, "pos_embedding_i8.c",
                    lambda n, c: f"slmc_pos_embedding_i8({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.pos}, {c.rows}, "
                                 f"{n.outputs[0].shape[-1]}, {c.attr('group')}, {c.attr('shift')});"))


def _linear(fn: str, isa: str, layout: str, scratch: bool = False) -> KernelSpec:
    return KernelSpec("linear_i8", I16, f"{fn}.c",
                      lambda n, c: f"slmc_{fn}({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, "
                                   + (f"{c.scratch()}, " if scratch else "") + f"{c.rows}, "
                                   f"{n.inputs[1].shape[0]}, {n.inputs[1].shape[1]}, {c.attr('group')}, "  # type: ignore[union-attr]
                                   f"{c.attr('shift')}, {c.attr('out_bits')});",
                      isa=isa, macs=_macs_linear, where=lambda n: n.attrs.get("layout", "") == layout,
                      scratch=(lambda n: 2 * n.inputs[1].shape[1]) if scratch else (lambda n: 0), batch="rows")  # type: ignore[union-attr]


register(_linear("linear_i8", "any", ""))
# weights in quant/int8.py pack_rows4's order, chosen at compile time for these kernels
register(_linear("linear_i8_rv32", "rv32im", "rows4"))
register(_linear("linear_i8_dsp", "dsp", "rows4", scratch=True))


def int8_layout(features: frozenset[str]) -> str:
    """The linear_i8 weight order for a target with these ISA features."""
    return "rows4" if "rv32im" in features or "dsp" in features else ""


register(KernelSpec("rope_i", I16, "rope_i.c",
                    lambda n, c: f"slmc_rope_i({c.out()}, {c.ref(0)}, {c.ref(2)}, {c.ref(3)}, {c.rows}, {_last(n)}, "
                                 f"{c.attr('head_dim')}, {c.attr('rot_dim')}, {c.pos}, "
                                 f"{c.attr('interleaved')}, {c.attr('frac')});"))
register(KernelSpec("kv_write", I16, "kv_write_i16.c",
                    lambda n, c: f"slmc_kv_write_i16({c.ref(0)}, {c.ref(1)}, {c.pos}, {c.rows}, {_last(n)});"))
def _softcap(n: Node, c) -> str:  # attention_i's soft-capping arguments (the tanh table: a 6th input)
    if len(n.inputs) < 6:
        return "NULL, 0, 0, 0, 0, 0"
    return (f"{c.ref(5)}, {c.attr('cap_m', wide=True)}, {c.attr('cap_shift')}, {c.attr('capq', wide=True)}, "
            f"{c.attr('step_log2')}, {c.attr('range')}")


register(KernelSpec("softcap_i", I32, "softcap_i.c",
                    lambda n, c: f"slmc_softcap_i({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.rows} * {_last(n)}, "
                                 f"{c.attr('m', wide=True)}, {c.attr('shift')}, {c.attr('capq', wide=True)}, "
                                 f"{c.attr('step_log2')}, {c.attr('range')});", batch="rows"))
register(KernelSpec("attention_i", I16, "attention_i.c",
                    lambda n, c: f"slmc_attention_i({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, {c.scratch()}, "
                                 f"{c.ref(4)}, {c.rows}, {c.attr('n_heads')}, {c.attr('n_kv_heads')}, "
                                 f"{c.attr('head_dim')}, {c.pos}, {n.inputs[1].shape[0]}, "  # type: ignore[union-attr]
                                 f"{c.attr('c', wide=True)}, {c.attr('t_shift')}, {c.attr('t_cap', wide=True)}, "
                                 f"{c.attr('q_shift')}, {c.attr('q_max')}, "
                                 f"{c.attr('f_out')}, {c.attr('f_v')}, {c.attr('window')}, {_softcap(n, c)});",
                    # int32 per position, then two int32 per head dimension (attention_i.c)
                    scratch=lambda n: 4 * (n.inputs[1].shape[0] + 1) + 8 * n.attrs["head_dim"],  # type: ignore[union-attr]
                    macs=_attention_macs))
register(KernelSpec("add_i32", I32, "add_i32.c",
                    lambda n, c: f"slmc_add_i32({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.rows} * {_last(n)});", batch="rows"))
register(KernelSpec("swiglu_i", I32, "swiglu_i.c",
                    lambda n, c: f"slmc_swiglu_i({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, {c.rows} * {_last(n)}, "
                                 f"{c.attr('f_in')}, {c.attr('f_out')}, {c.attr('step_log2')}, {c.attr('range')});", batch="rows"))


# one chip of a partitioned model (passes/partition.py): partial sums, then the shift after the sum
register(KernelSpec("linear_i8_partial", I16, "linear_i8_partial.c",
                    lambda n, c: f"slmc_linear_i8_partial({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, {c.rows}, "
                                 f"{n.inputs[1].shape[0]}, {n.inputs[1].shape[1]}, {c.attr('offset')}, "  # type: ignore[union-attr]
                                 f"{c.attr('group')});",
                    macs=_macs_linear))
register(KernelSpec("requant_i64", DType.I64, "requant_i64.c",
                    lambda n, c: f"slmc_requant_i64({c.out()}, {c.ref(0)}, {c.rows} * {_last(n)}, {c.attr('shift')});"))
