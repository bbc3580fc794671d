"""DMA staging of the flash-resident matrices (issue 21): on the RP2350, the weights that the boot copy
(weights_ram.bin) leaves in flash are not read in place through XIP by the matrix products; each product
that reads a flash-resident matrix (with its scales) gets it from one of two SRAM staging buffers, filled by
DMA one product ahead (codegen/staging.py writes the C).

The schedule of a decode step, for the flash-resident products P_0 .. P_{n-1} in the order they run:
  step start:      start copy 0 into buffer 0 and copy 1 into buffer 1
  before P_k:      wait for copy k (buffer k & 1); P_k reads buffer k & 1
  after P_k:       start copy k + 2 into buffer k & 1, which P_k no longer reads
so copy k + 1 runs while P_k and everything between P_{k-1} and P_{k+1} computes. The product's kernel and the
bytes it reads are the same: the staged copy is byte for byte the flash image of its constants.

The buffers come out of the SRAM the boot copy would fill: `plan_sram` chooses the boot copy and the buffer
size together. Buffers sized S leave 2 S bytes fewer for the boot copy; every product left in flash must fit
S, or is read in place. It tries S = each product's staged size in increasing order and keeps the choice whose
flash reads in place (unstaged products, norms, tables' rows) are fewest, then the smallest S; staging nothing
(the boot copy alone) where no choice reads fewer bytes in place.
"""

from __future__ import annotations

from dataclasses import dataclass

from slmc.codegen.weights import ALIGN, WeightsLayout, _readers, _row_table, weights_for_sram
from slmc.ir import Graph
from slmc.ir.ops import VIEWS
from slmc.plan.lifetimes import storage_root

PRODUCT_OPS = ("linear", "linear_q8", "linear_i8")   # the matrix products that read their matrix whole
MAX_RUNS = 4            # DMA copies per product (one per contiguous run of its constants in flash): channels
WORD = 4                # the RP2350's DMA moves 32-bit words: copies are rounded up to whole words


def _up(n: int, a: int) -> int:
    return -(-n // a) * a


@dataclass(frozen=True)
class Run:
    """One DMA copy: `nbytes` (a multiple of 4) from the flash blob's `src` to the buffer's `dst`."""
    src: int
    dst: int
    nbytes: int


@dataclass(frozen=True)
class StagedProduct:
    node: str                              # the product's node name (decode graph)
    entries: tuple[tuple[int, int], ...]   # (weight entry index, its offset in the staging buffer)
    runs: tuple[Run, ...]

    @property
    def nbytes(self) -> int:
        return sum(r.nbytes for r in self.runs)


@dataclass(frozen=True)
class Staging:
    buffer_bytes: int                      # each of the two buffers
    products: tuple[StagedProduct, ...]    # in the order the decode step runs them

    @property
    def bytes_per_step(self) -> int:
        return sum(p.nbytes for p in self.products)

    def as_dict(self) -> dict:
        """report.json's `staging`."""
        return dict(buffers=2, buffer_bytes=self.buffer_bytes, sram_bytes=2 * self.buffer_bytes,
                    bytes_per_step=self.bytes_per_step,
                    products=[dict(node=p.node, bytes=p.nbytes, buffer=k & 1) for k, p in enumerate(self.products)],
                    code="model.c writes the layers out one by one: the copies differ from layer to layer")


def _product_entries(layout: WeightsLayout, graph: Graph) -> list[tuple[str, tuple[int, ...]]]:
    """(node name, the weight entries it reads whole) of each matrix product of the graph, in order."""
    out = []
    for n in graph.nodes:
        if n.op in VIEWS or n.op not in PRODUCT_OPS:
            continue
        ents = []
        for v in n.inputs:
            if v is None:
                continue
            r = storage_root(v)
            if id(r) in layout.by_value and layout.by_value[id(r)] not in ents:
                ents.append(layout.by_value[id(r)])
        if ents:
            out.append((n.name, tuple(ents)))
    return out


def _stage(layout: WeightsLayout, node: str, ents: tuple[int, ...], in_ram: frozenset[str]) -> StagedProduct | None:
    """The copies of a product's flash-resident constants (adjacent ones, as laid out in weights.bin, in one
    run), or None when none of them is in flash."""
    flash = sorted((i for i in ents if layout.entries[i].symbol not in in_ram), key=lambda i: layout.entries[i].offset)
    if not flash:
        return None
    groups: list[list[int]] = []
    for i in flash:
        e = layout.entries[i]
        if groups:
            last = layout.entries[groups[-1][-1]]
            if e.offset - (last.offset + last.nbytes) < ALIGN:
                groups[-1].append(i)
                continue
        groups.append([i])
    runs, placed, dst = [], [], 0
    for g in groups:
        first, last = layout.entries[g[0]], layout.entries[g[-1]]
        n = _up(last.offset + last.nbytes - first.offset, WORD)
        runs.append(Run(first.offset, dst, n))
        placed += [(i, dst + layout.entries[i].offset - first.offset) for i in g]
        dst = _up(dst + n, ALIGN)
    if len(runs) > MAX_RUNS:
        return None
    return StagedProduct(node, tuple(placed), tuple(runs))


def _size(sp: StagedProduct) -> int:
    return _up(sp.runs[-1].dst + sp.runs[-1].nbytes, ALIGN)


def _unstaged_flash(layout: WeightsLayout, graphs: list[Graph], in_ram: frozenset[str], staged: set[int]) -> int:
    """Bytes a step still reads from flash in place: every whole-read constant in flash no product stages."""
    readers = _readers(layout, graphs)
    return sum(layout.entries[i].nbytes for i, ops in readers.items()
               if layout.entries[i].symbol not in in_ram and i not in staged and not _row_table(ops))


def plan_sram(layout: WeightsLayout, graphs: list[Graph], budget: int) -> tuple[frozenset[str], Staging | None]:
    """The constants the boot copy takes into `budget` bytes of SRAM, and the staging of the products left in
    flash (None where none is: a model whose matrices all fit SRAM stages nothing)."""
    plain = weights_for_sram(layout, graphs, budget)
    if len(graphs) != 1:   # a decode step only (a prompt step would need its own schedule)
        return plain, None
    prods = _product_entries(layout, graphs[0])
    if not any(_stage(layout, n, e, plain) for n, e in prods):
        return plain, None
    in_products = {i for _, e in prods for i in e}
    sizes = sorted({_size(sp) for n, e in prods if (sp := _stage(layout, n, e, frozenset())) is not None})
    # staging nothing: every whole-read constant left in flash is read in place
    best: tuple[tuple[int, int], frozenset[str], Staging | None] = ((_unstaged_flash(layout, graphs, plain, set()), 0), plain, None)
    for s in sizes:
        left = budget - 2 * s - 2 * ALIGN
        if left < 0:
            break
        in_ram = weights_for_sram(layout, graphs, left, frozenset(in_products))  # what no product stages first
        # a product whose constants outgrow the buffers reads them in place (an fp32 classifier, say)
        staged = [sp for n, e in prods if (sp := _stage(layout, n, e, in_ram)) is not None and _size(sp) <= s]
        if not staged:
            continue
        score = (_unstaged_flash(layout, graphs, in_ram, {i for sp in staged for i, _ in sp.entries}), s)
        if score < best[0]:
            best = (score, in_ram, Staging(max(_size(sp) for sp in staged), tuple(staged)))
    return best[1], best[2]


def restage(layout: WeightsLayout, graphs: list[Graph], nodes: frozenset[str]) -> Staging | None:
    """The staging of the products named in `nodes` as `layout` lays them out (its flash offsets)."""
    in_ram = frozenset(e.symbol for e in layout.entries if e.region == "ram")
    staged = [sp for n, e in _product_entries(layout, graphs[0])
              if n in nodes and (sp := _stage(layout, n, e, in_ram)) is not None]
    return Staging(max(_size(sp) for sp in staged), tuple(staged)) if staged else None


def staged_bytes(staging: Staging | None) -> int:
    return 2 * staging.buffer_bytes if staging is not None else 0
