"""The expert predictor in the step graph (`--expert-prefetch predictor`, SiDA's idea; after passes/expert_cache.py).

Rules:
- Every layer gets one `moe_predict` node first, so that the layers stay copies of one another and model.c keeps
  one layer loop: attr `active` is 1 only in the layer whose input the predictor reads (input_layer + 1: the
  output of layer input_layer, or the token embedding for layer 0), a condition in the loop (kernels/moe.py).
  Its weights (the predictor's fc0/fc1, fp32) are constants every layer's node reads; it writes the plan state
  `expert_plan` i32[rows, n_pred, k]: per row, the top_k experts of each predicted layer, best first.
- In a one-row (decode) step with the expert cache, the node also takes the pool, the slot table and every
  predicted layer's expert arrays, and loads the planned experts into slots marked for their layer
  (kernels/c/expert_cache.c); a later fetch of such an expert is a hit, a misprediction loads on demand.
  A prompt step (several rows) plans no loads: its experts load on demand.
- routing "router": the router still decides (the plan only prefetches; ids identical to every expert resident);
  a prompt step then has no predictor at all. routing "predicted": every layer's moe_topk also reads the plan,
  and in the predicted layers (attr plan_row >= 0) the planned experts replace the router's top-k, weighted by
  the router's probabilities renormalised over them (as the trainer measured it, train/predictor.py).
- The slots must hold the planned experts of every predicted layer at once plus the top_k experts of the layer
  running: (n_pred + 1) * top_k; fewer is refused. The predicted layers must follow one another.
- The layers before the predictor's input (token_layers: layer 0 for a predictor reading layer 0's output) cannot
  be predicted by it; where the predictor file carries a per-token table of their experts, a one-row step with the
  expert cache starts with a `moe_token_prefetch` node (outside the layer loop, after the embedding) that loads the
  table's experts for the step's token into slots marked for those layers, ahead of layer 0's use.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from slmc.errors import SlmcError
from slmc.ir import DType, Graph, TensorType
from slmc.ir.roles import Role
from slmc.ir.verify import verify
from slmc.passes.expert_cache import expert_arrays



class ExpertPredictor(Protocol):
    """What this pass reads of frontend/expert_predictor.py's ExpertPredictor (passes sit below frontend)."""
    input_layer: int
    layers: tuple[int, ...]
    n_experts: int
    top_k: int
    eps: float
    fc0_w: np.ndarray
    fc0_b: np.ndarray
    fc1_w: np.ndarray | None
    fc1_b: np.ndarray | None

    token_layers: tuple[int, ...]
    token_plan: np.ndarray | None

    @property
    def hidden(self) -> int: ...


ROUTINGS = ("router", "predicted")


def slots_needed(predictor: ExpertPredictor) -> int:
    return (max(len(predictor.layers), len(predictor.token_layers)) + 1) * predictor.top_k


def check_slots(predictor: ExpertPredictor, slots: int) -> None:
    need, p = slots_needed(predictor), predictor
    if slots < need:
        raise SlmcError(f"--expert-slots {slots} cannot hold the {len(p.layers) * p.top_k} experts the predictor loads "
                        f"ahead for layers {p.layers[0]}..{p.layers[-1]} ({p.top_k} each) and the {p.top_k} of the "
                        f"layer running", f"use --expert-slots {need} or more")


def run(graph: Graph, predictor: ExpertPredictor, routing: str) -> Graph:
    p = predictor
    experts = {n.layer: n for n in graph.nodes if n.op in ("moe_experts", "moe_experts_q8")}
    topk = {n.layer: n for n in graph.nodes if n.op == "moe_topk"}
    if routing not in ROUTINGS:
        raise SlmcError(f"unknown --expert-routing '{routing}'", f"use one of {', '.join(ROUTINGS)}")
    layers = sorted({n.layer for n in graph.nodes if n.layer is not None})
    if sorted(topk) != layers or not experts or "slots" not in next(iter(experts.values())).attrs:
        raise SlmcError("--expert-prefetch predictor needs a model whose every layer is a mixture of experts, with "
                        "--expert-slots", "use --expert-prefetch lru")
    if list(p.layers) != list(range(p.layers[0], p.layers[-1] + 1)):
        raise SlmcError(f"the expert predictor predicts layers {list(p.layers)}, not a run of consecutive layers",
                        "retrain the predictor (python -m slmc.train.predictor)")
    any_experts = next(iter(experts.values()))
    check_slots(p, any_experts.attrs["slots"])
    rows = graph.inputs[0].shape[0]
    if rows > 1 and routing == "router":
        return graph  # a prompt step: the router decides and its experts load on demand
    k, first, n_pred = p.top_k, p.layers[0], len(p.layers)
    plan = graph.add_state("expert_plan" if rows == 1 else f"expert_plan_rows{rows}", (rows, n_pred, k), DType.I32)
    weights = [graph.add_const(f"expert_predictor.{name}", w) if w is not None else None
               for name, w in (("fc0.weight", p.fc0_w), ("fc0.bias", p.fc0_b), ("fc1.weight", p.fc1_w),
                               ("fc1.bias", p.fc1_b))]
    cache = [v for v in any_experts.inputs[-2:]] if rows == 1 else [None, None]
    srcs = [a for lay in p.layers for a in expert_arrays(experts[lay])] if rows == 1 else []
    out0 = p.hidden or n_pred * p.n_experts
    attrs = dict(dim=p.fc0_w.shape[1], hidden=p.hidden, n_pred=n_pred, n_experts=p.n_experts, m=k, eps=p.eps,
                 first=first, parts=len(expert_arrays(any_experts)), slots=any_experts.attrs["slots"],
                 slot_bytes=any_experts.attrs["slot_bytes"], side_effect=1,
                 macs=rows * (out0 * p.fc0_w.shape[1] + (n_pred * p.n_experts * p.hidden)))
    if rows == 1 and cache[0] is not None and p.token_plan is not None:
        _token_prefetch(graph, p, experts, attrs)
    for lay in layers:
        at = next(i for i, n in enumerate(graph.nodes) if n.layer == lay)
        x = graph.nodes[at].inputs[0]
        if x is None or x.shape != (rows, attrs["dim"]):
            raise SlmcError(f"layer {lay}'s input is not the residual stream the expert predictor reads",
                            "this is a bug in slmc")
        saved = graph.layer, graph.role
        graph.layer, graph.role = lay, Role.ROUTER
        node = graph.add_node("moe_predict", [plan, x, *weights, *cache, *srcs], [TensorType(plan.shape, DType.I32)],
                              {**attrs, "active": int(lay == p.input_layer + 1)}, name=f"layers.{lay}.expert_predict",
                              out_names=[f"layers.{lay}.expert_plan"])
        graph.layer, graph.role = saved
        graph.nodes.remove(node)
        graph.nodes.insert(at, node)
        if routing == "predicted":
            t = topk[lay]
            t.inputs.append(node.outputs[0])
            node.outputs[0].users.append(t)
            t.attrs.update(n_pred=n_pred, plan_row=lay - first if first <= lay < first + n_pred else -1)
    return verify(graph, after="the expert_predict pass")


def _token_prefetch(graph: Graph, p: ExpertPredictor, experts: dict, attrs: dict) -> None:
    """The token table's node, first thing of the step after the embedding (before layer 0's first node)."""
    table = graph.add_const("expert_predictor.token_plan", p.token_plan)
    any_experts = experts[p.token_layers[0]]
    srcs = [a for lay in p.token_layers for a in expert_arrays(experts[lay])]
    saved = graph.layer, graph.role
    graph.layer, graph.role = None, Role.ROUTER
    node = graph.add_node("moe_token_prefetch", [graph.inputs[0], table, *any_experts.inputs[-2:], *srcs],
                          [TensorType((1, *p.token_plan.shape[1:]), DType.I32)],
                          dict(n_experts=p.n_experts, parts=attrs["parts"], slots=attrs["slots"],
                               slot_bytes=attrs["slot_bytes"], side_effect=1),
                          name="expert_token_prefetch", out_names=["expert_token_plan"])
    graph.layer, graph.role = saved
    graph.nodes.remove(node)
    graph.nodes.insert(next(i for i, n in enumerate(graph.nodes) if n.layer == 0), node)
