"""Engine assignment: per operator, the cluster or the NPU, from the target's cost model
(sim/engine_cost.py: compute, data movement to and from the NPU, per-job set-up), overridable per op
type (`--engine linear=npu|cluster`). A pass over the bound graph that returns a frozen plan; the
graph is not touched.

Only matrix products with 8-bit activations (linear_q8) can go to the NPU; everything else runs on
the cluster. The report gives, per operator, the engine, both costs and the reason.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from slmc.errors import SlmcError
from slmc.ir import DType, Graph
from slmc.kernels.registry import REGISTRY
from slmc.sim.engine_cost import cluster_linear_cost, npu_linear_cost
from slmc.targets import Target

NPU_OPS = frozenset(k.op for k in REGISTRY if k.engine == "npu")  # the operators the NPU has a kernel for
ENGINES = ("cluster", "npu")


@dataclass(frozen=True)
class Assignment:
    graph: str
    node: str
    op: str
    engine: str
    reason: str
    cluster_cycles: float | None   # cost model, matrix products only
    npu_cycles: float | None
    cluster_energy_pj: float | None
    npu_energy_pj: float | None
    weight_bits: int


@dataclass(frozen=True)
class EnginePlan:
    cores: int
    npu: str | None
    ops: tuple[Assignment, ...]

    def as_dict(self) -> dict:
        return dict(cores=self.cores, npu=self.npu, ops=[asdict(a) for a in self.ops])


def parse_overrides(text: str | None) -> dict[str, str]:
    """'linear=npu,attention=cluster' -> {"linear_q8": "npu", ...} ("linear" names the q8 matrix products)."""
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        op, _, eng = part.partition("=")
        op, eng = op.strip(), eng.strip()
        if op == "ffn_bits":  # parse_ffn_bits
            continue
        if eng not in ENGINES or not op:
            raise SlmcError(f"--engine '{part}' is not OP=cluster|npu", "e.g. --engine linear=npu")
        out["linear_q8" if op == "linear" else op] = eng
    return out


def _decide(g: Graph, node, target: Target, cores: int, overrides: dict[str, str], bits: int) -> Assignment:
    cl, npu = target.engines.cluster, target.engines.npu  # type: ignore[union-attr]
    if node.op not in ("linear_q8", "linear"):
        return Assignment(g.name, node.name, node.op, "cluster", "only the cluster runs this operator",
                          None, None, None, None, bits)
    n, k, m = node.outputs[0].shape[0], node.inputs[0].shape[-1], node.outputs[0].shape[-1]
    c = cluster_linear_cost(cl, n, k, m, cores)
    j = npu_linear_cost(npu, n, k, m, bits) if npu is not None and node.op in NPU_OPS else None
    if node.op in overrides:
        eng, why = overrides[node.op], f"--engine {node.op}={overrides[node.op]}"
    elif j is None:
        eng, why = "cluster", ("the NPU takes 8-bit activations only (fp32 product)" if npu else "no NPU")
    elif j.cycles < c.cycles:
        eng, why = "npu", (f"NPU {j.cycles:,.0f} cycles (set-up {j.setup_cycles}, transfer {j.transfer_cycles:,.0f}, "
                           f"compute {j.compute_cycles:,.0f}) < cluster {c.cycles:,.0f}")
    else:
        eng, why = "cluster", (f"cluster {c.cycles:,.0f} cycles <= NPU {j.cycles:,.0f} (set-up {j.setup_cycles}, "
                               f"transfer {j.transfer_cycles:,.0f}, compute {j.compute_cycles:,.0f})")
    return Assignment(g.name, node.name, node.op, eng, why, c.cycles, j.cycles if j else None,
                      c.energy_pj, j.energy_pj if j else None, bits)


def _check(target: Target, overrides: dict[str, str]) -> None:
    if target.engines is None:
        raise SlmcError(f"{target.name} lists no compute engines", "use a target with a cluster, e.g. siracusa-like")
    npu = target.engines.npu
    for op, eng in overrides.items():
        if eng == "npu" and (npu is None or op not in NPU_OPS):
            raise SlmcError(f"--engine {op}=npu: {'this target has no NPU' if npu is None else 'the NPU runs only linear'}",
                            "use --engine linear=npu, or cluster")


def assign(graphs: list[Graph], target: Target, overrides: dict[str, str] | None = None,
           weight_bits: dict[str, int] | None = None) -> EnginePlan:
    """Where each splittable operator runs. `weight_bits`: node name -> NPU weight bits (default 8)."""
    overrides, weight_bits = overrides or {}, weight_bits or {}
    _check(target, overrides)
    assert target.engines is not None
    cores = target.cores or target.engines.cluster.cores
    rows = [_decide(g, node, target, cores, overrides, weight_bits.get(node.name, node.attrs.get("npu_bits", 8)))
            for g in graphs for node in g.nodes if node.op in ("linear_q8", "linear", "attention", "rmsnorm")]
    npu = target.engines.npu
    return EnginePlan(cores, npu.name if npu else None, tuple(rows))


def parse_ffn_bits(text: str | None) -> int:
    """`--engine ...,ffn_bits=4`: the weight bits of the FFN matrices on the NPU (default 8)."""
    for part in (text or "").split(","):
        key, _, val = part.partition("=")
        if key.strip() == "ffn_bits":
            if not val.strip().isdigit() or not 2 <= int(val) <= 8:
                raise SlmcError(f"--engine {part.strip()}: the NPU takes 2..8-bit weights", "e.g. ffn_bits=4")
            return int(val)
    return 8


def npu_nodes(graphs: list[Graph], binding: dict, target: Target, engine: str | None) -> set[int]:
    """The matrix products (node ids) the engine plan gives the NPU. Applies to a cluster build
    (--cores) of a target with an NPU, or with --engine; any other build gets none."""
    overrides = parse_overrides(engine)
    bits = parse_ffn_bits(engine)
    if not engine and not target.cores:
        return set()
    if engine:
        if target.engines is None:
            if overrides.get("linear_q8") == "npu" or bits != 8:
                raise SlmcError(f"--engine {engine}: {target.name} has no NPU", "use a target with one (siracusa-like)")
            return set()
        _check(target, overrides)
    if target.engines is None or target.engines.npu is None:
        return set()
    cores = target.cores or target.engines.cluster.cores
    out = set()
    for g in graphs:
        for n in g.nodes:
            if n.op == "linear_q8" and id(n) in binding and _decide(g, n, target, cores, overrides, 8).engine == "npu":
                if n.attrs.get("layout"):
                    raise SlmcError("the NPU needs row-major q8 weights", "use --engine linear=cluster on this target")
                out.add(id(n))
    return out
