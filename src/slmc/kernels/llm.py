"""Registry entries of the language-model kernels."""

from __future__ import annotations

from slmc.ir import DType, Node
from slmc.kernels.registry import CallContext, KernelSpec, register

F32, I8 = DType.F32, DType.I8


def _last(n: Node, i: int = 0) -> int:
    return n.inputs[i].shape[-1]  # type: ignore[union-attr]


def _linear_macs(n: Node) -> int:
    return _last(n) * n.outputs[0].shape[-1] * n.outputs[0].shape[0]


def _numel_per_row(n: Node) -> int:
    return n.outputs[0].type.numel // n.outputs[0].shape[0]


register(KernelSpec("embedding", F32, "embedding_f32.c",
                    lambda n, c: f"slmc_embedding_f32({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.rows}, {_last(n)});"))
register(KernelSpec("embedding_q8", I8, "embedding_q8.c",
                    lambda n, c: f"slmc_embedding_q8({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, {c.rows}, "
                                 f"{_last(n)}, {n.attrs['group']});"))
register(KernelSpec("pos_embedding", F32, "pos_embedding_f32.c",
                    lambda n, c: f"slmc_pos_embedding_f32({c.out()}, {c.ref(0)}, {c.pos}, {c.rows}, {_last(n)});"))
register(KernelSpec("rmsnorm", F32, "rmsnorm_f32.c",
                    lambda n, c: f"slmc_rmsnorm_f32({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.rows}, {_last(n)}, "
                                 f"{n.attrs['eps']!r}f);"))
register(KernelSpec("layernorm", F32, "layernorm_f32.c",
                    lambda n, c: f"slmc_layernorm_f32({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, {c.rows}, "
                                 f"{_last(n)}, {n.attrs['eps']!r}f);"))
register(KernelSpec("linear", F32, "linear_f32.c",
                    lambda n, c: f"slmc_linear_f32({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, {c.rows}, "
                                 f"{_last(n)}, {n.outputs[0].shape[-1]});",
                    macs=_linear_macs))
register(KernelSpec("quantize_q8", F32, "quantize_q8.c",
                    lambda n, c: f"slmc_quantize_q8({c.out(0)}, {c.out(1)}, {c.ref(0)}, {c.rows}, {_last(n)}, "
                                 f"{n.attrs['group']});"))
register(KernelSpec("linear_q8", I8, "linear_q8.c",
                    lambda n, c: f"slmc_linear_q8({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, {c.ref(3)}, "
                                 f"{c.ref(4)}, {c.rows}, {_last(n)}, {n.outputs[0].shape[-1]}, {n.attrs['group']});",
                    macs=_linear_macs))


def _linear_q8_tuned(isa: str, suffix: str) -> KernelSpec:
    """An ISA-tuned linear_q8: the portable kernel's arguments plus scratch where it widens the
    activations to int16 once per call (2 * n * k bytes)."""
    return KernelSpec("linear_q8", I8, f"linear_q8_{suffix}.c",
                      lambda n, c: f"slmc_linear_q8_{suffix}({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, "
                                   f"{c.ref(3)}, {c.ref(4)}, {c.scratch()}, {c.rows}, {_last(n)}, "
                                   f"{n.outputs[0].shape[-1]}, {n.attrs['group']});",
                      isa=isa, scratch=lambda n: 2 * n.inputs[0].type.numel,  # type: ignore[union-attr]
                      macs=_linear_macs)


register(_linear_q8_tuned("sse2", "sse2"))
register(_linear_q8_tuned("dsp", "dsp"))
register(_linear_q8_tuned("rv32im", "rv32"))  # plain RV32IM (no Zb* -march), so Unicorn can still count it
register(KernelSpec("rope", F32, "rope_f32.c",
                    lambda n, c: f"slmc_rope_f32({c.out()}, {c.ref(0)}, {c.ref(2)}, {c.ref(3)}, {c.rows}, "
                                 f"{_last(n)}, {n.attrs['head_dim']}, {c.pos}, {n.attrs['interleaved']});"))
register(KernelSpec("kv_write", F32, "kv_write_f32.c",
                    lambda n, c: f"slmc_kv_write_f32({c.ref(0)}, {c.ref(1)}, {c.pos}, {c.rows}, {_last(n)});"))


def _attention_macs(n: Node) -> int:
    # per token at position p: n_heads * head_dim * (p + 1) for scores and as many for the weighted sum;
    # counted at position 0 here, the report adds the per-position term
    return 2 * n.attrs["n_heads"] * n.attrs["head_dim"] * n.outputs[0].shape[0]


register(KernelSpec("attention", F32, "attention_f32.c",
                    lambda n, c: f"slmc_attention_f32({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, {c.scratch()}, "
                                 f"{c.rows}, {n.attrs['n_heads']}, {n.attrs['n_kv_heads']}, {n.attrs['head_dim']}, "
                                 f"{c.pos});",
                    scratch=lambda n: 4 * n.inputs[1].shape[0],  # type: ignore[union-attr]
                    macs=_attention_macs))
register(KernelSpec("add", F32, "add_f32.c",
                    lambda n, c: f"slmc_add_f32({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.rows} * {_numel_per_row(n)});"))
register(KernelSpec("swiglu", F32, "swiglu_f32.c",
                    lambda n, c: f"slmc_swiglu_f32({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.rows} * {_numel_per_row(n)});"))
register(KernelSpec("gelu", F32, "gelu_f32.c",
                    lambda n, c: f"slmc_gelu_f32({c.out()}, {c.ref(0)}, {c.rows} * {_numel_per_row(n)}, "
                                 f"{n.attrs.get('approximate', 0)});"))
