"""The C of DMA staging (codegen/stage_plan.py): two SRAM buffers in model.c, the copies started one product ahead
and waited for right before the product, and the product's constants read from its buffer.

The HAL pair (one channel per run of a product's constants, MAX_RUNS per buffer):
    void slmc_stage_start(int channel, void *dst, const void *src, uint32_t nbytes);   nbytes: whole words
    void slmc_stage_wait(int channel);
templates/slmc_stage.c (host and emulators) copies at once with a word loop of its own, so that the counters
can tell its instructions from the cores' work (toolchain/count.py: the object slmc_stage.o); on a Pico,
templates/slmc_stage_pico.c programs a DMA channel from the XIP address and waits for it. With --cores the calls
are model.c's, on core 0: the wait comes before the wrapper forks, so both cores read the staged copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from slmc.codegen.weights import WeightsLayout
from slmc.ir import Graph, Node
from slmc.ir.ops import VIEWS
from slmc.plan.lifetimes import storage_root
from slmc.codegen.stage_plan import MAX_RUNS, Staging, StagedProduct

TEMPLATES = Path(__file__).parent / "templates"
HAL_C = "slmc_stage.c"           # host and emulators
PICO_C = "slmc_stage_pico.c"     # the pico-sdk build (CMakeLists.txt)
BUF = "slmc_stage_buf"


@dataclass(frozen=True)
class StageCalls:
    before: tuple[str, ...]      # statements before the node's call
    after: tuple[str, ...]       # and after it
    subst: dict[int, str]        # id(constant input) -> C reading it from its buffer


def declarations(staging: Staging) -> list[str]:
    return ["/* DMA staging (codegen/stage_plan.py): the flash-resident matrices of the products that read them, copied one",
            f"   product ahead into two buffers of {staging.buffer_bytes:,} B; slmc_stage.c is the HAL pair */",
            "void slmc_stage_start(int channel, void *dst, const void *src, uint32_t nbytes);",
            "void slmc_stage_wait(int channel);",
            f"static uint8_t {BUF}[2][{staging.buffer_bytes}] __attribute__((aligned(16)));"]


def _start(sp: StagedProduct, k: int) -> list[str]:
    b = k & 1
    return [f"slmc_stage_start({b * MAX_RUNS + j}, {BUF}[{b}] + {r.dst}, slmc_weights + {r.src}, {r.nbytes}); "
            f"/* {sp.node}, {r.nbytes} B */" for j, r in enumerate(sp.runs)]


def _wait(sp: StagedProduct, k: int) -> list[str]:
    return [f"slmc_stage_wait({(k & 1) * MAX_RUNS + j});" for j in range(len(sp.runs))]


def stage_calls(staging: Staging, graph: Graph, layout: WeightsLayout) -> dict[int, StageCalls]:
    """id(node) -> what the decode step's C does around it. The first node starts copies 0 and 1; a staged
    product waits for its copy and, once it returned, starts the copy two products on into the buffer it read."""
    by_name = {n.name: n for n in graph.nodes}
    prods = staging.products
    first = next(n for n in graph.nodes if n.op not in VIEWS)
    out: dict[int, StageCalls] = {}
    head = tuple(x for k in range(min(2, len(prods))) for x in _start(prods[k], k))
    for k, sp in enumerate(prods):
        node: Node = by_name[sp.node]
        at = dict(sp.entries)
        subst = {}
        for v in node.inputs:
            if v is None:
                continue
            r = storage_root(v)
            i = layout.by_value.get(id(r))
            if i is not None and i in at:
                subst[id(r)] = f"(const {layout.entries[i].dtype.c} *)({BUF}[{k & 1}] + {at[i]})"
        after = tuple(_start(prods[k + 2], k + 2)) if k + 2 < len(prods) else ()
        out[id(node)] = StageCalls(tuple(_wait(sp, k)), after, subst)
    if id(first) in out:
        c = out[id(first)]
        out[id(first)] = StageCalls(head + c.before, c.after, c.subst)
    else:
        out[id(first)] = StageCalls(head, (), {})
    return out


def hal_files() -> dict[str, str]:
    return {HAL_C: (TEMPLATES / HAL_C).read_text(), PICO_C: (TEMPLATES / PICO_C).read_text()}
