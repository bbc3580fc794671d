"""Registry entries of the mixture-of-experts kernels (frontend/build.py's MoE FFN, reference/moe_ops.py)."""

from __future__ import annotations

from slmc.ir import DType, Node
from slmc.cquote import c_float
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
    return (f"{c.ref(first)}, {c.ref(first + 1)}, {a['slots']}, {a['slot_bytes']}, {a['policy']}, {c.attr('tag0')}")


def _topk(n: Node, c) -> str:
    """moe_topk; with the predictor's plan (input 1, passes/expert_predict.py) and plan_row >= 0 this layer's
    experts are the planned ones (--expert-routing predicted)."""
    plan = f"{c.ref(1)}, {n.attrs['n_pred']}, {c.attr('plan_row')}" if len(n.inputs) > 1 else "NULL, 0, -1"
    return (f"slmc_moe_topk_f32({c.out(0)}, {c.out(1)}, {c.ref(0)}, {c.scratch()}, {c.rows}, "
            f"{n.inputs[0].shape[-1]}, {n.attrs['k']}, {n.attrs['renorm']}, {plan});")  # type: ignore[union-attr]


PREDICT_SOURCES = 8   # moe_predict's inputs: plan, h, fc0 w/b, fc1 w/b, pool, table, then the experts' arrays


def _predict(n: Node, c) -> str:
    """The expert predictor, which works where attr `active` says (one layer; in a layer loop the table's entry:
    the kernel is called in every layer, so each layer makes the same calls), and with an expert cache in a
    one-row step, its loads (the later layers' expert arrays as byte pointers)."""
    a, srcs = n.attrs, n.inputs[PREDICT_SOURCES:]
    call = (f"slmc_moe_predict_f32({c.attr('active')}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, {c.ref(3)}, {c.ref(4)}, "
            f"{c.ref(5)}, "
            f"{c.scratch()}, {c.rows}, {a['dim']}, {a['hidden']}, {a['n_pred']}, {a['n_experts']}, {a['m']}, "
            f"{c_float(a['eps'])}, ")
    if not srcs:
        return f"{call}NULL, NULL, 0, 0, 0, NULL, NULL, 0);"
    ptrs = ", ".join(f"(const uint8_t *){c.weight(PREDICT_SOURCES + i)}" for i in range(len(srcs)))
    sizes = ", ".join(str(v.nbytes // v.shape[0]) for v in srcs[:a["parts"]])  # type: ignore[union-attr]
    return (f"{{ /* the experts of layers {a['first']}..{a['first'] + a['n_pred'] - 1}: "
            f"each part of expert 0, expert e lies e * its size further */\n"
            f"        const uint8_t *const src[{len(srcs)}] = {{{ptrs}}};\n"
            f"        const int32_t bytes[{a['parts']}] = {{{sizes}}};\n"
            f"        {call}{c.ref(6)}, {c.ref(7)}, {a['slots']}, {a['slot_bytes']}, {a['first']}, src, bytes, "
            f"{a['parts']});\n    }}")


def _predict_scratch(n: Node) -> int:
    a = n.attrs
    return 4 * (a["dim"] + (a["hidden"] or a["n_pred"] * a["n_experts"]) + a["n_pred"] * a["n_experts"])


def _expert_macs(n: Node) -> int:
    """MACs of the chosen experts only: k experts of 3 * hidden * dim each, per row."""
    rows, dim, hidden = _dims(n)
    return rows * n.attrs["k"] * 3 * hidden * dim


register(KernelSpec("moe_topk", F32, "moe_topk_f32.c", _topk,
                    scratch=lambda n: 4 * n.inputs[0].shape[-1]))  # type: ignore[union-attr]
register(KernelSpec("moe_predict", DType.I32, "moe_predict_f32.c", _predict, scratch=_predict_scratch,
                    macs=lambda n: int(n.attrs["active"]) * n.attrs["macs"], deps=("expert_cache.c",)))


TOKEN_SOURCES = 4     # moe_token_prefetch's inputs: tokens, the plan table, pool, table, then the experts' arrays


def _token_prefetch(n: Node, c) -> str:
    """The layers before the predictor's input, their experts by token id (a table), loaded as the step starts."""
    a, srcs = n.attrs, n.inputs[TOKEN_SOURCES:]
    vocab, layers, m = n.inputs[1].shape  # type: ignore[union-attr]
    call = f"slmc_moe_token_prefetch({c.out(0)}, {c.ref(0)}, {c.ref(1)}, {vocab}, {layers}, {m}, {a['n_experts']}, "
    ptrs = ", ".join(f"(const uint8_t *){c.weight(TOKEN_SOURCES + i)}" for i in range(len(srcs)))
    sizes = ", ".join(str(v.nbytes // v.shape[0]) for v in srcs[:a["parts"]])  # type: ignore[union-attr]
    return (f"{{ /* the experts of layers 0..{layers - 1}: each part of expert 0, expert e lies e * its size further */\n"
            f"        const uint8_t *const src[{len(srcs)}] = {{{ptrs}}};\n"
            f"        const int32_t bytes[{a['parts']}] = {{{sizes}}};\n"
            f"        {call}{c.ref(2)}, {c.ref(3)}, {a['slots']}, {a['slot_bytes']}, src, bytes, {a['parts']});\n    }}")


register(KernelSpec("moe_token_prefetch", DType.I32, "moe_token_prefetch.c", _token_prefetch, deps=("expert_cache.c",)))
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
