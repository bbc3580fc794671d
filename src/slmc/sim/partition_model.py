"""How a decoder is split over N chips: the description the system simulator consumes.

The partition pass (plan/partition.py) reuses this split for the programs it generates; the simulator
reads only this structure, never the model's weights.

Rules (the scheme of arXiv 2412.04372, DESIGN.md):
- attention is split by heads, contiguous balanced blocks: while N <= KV heads, chip i owns KV
  heads [i*KV//N, (i+1)*KV//N) with all their query heads (so no KV head is stored twice); beyond,
  chip i owns query heads [i*H//N, (i+1)*H//N) and the KV heads they use, and a KV head shared by
  two chips is stored on both (`kv_duplicates` counts the extra copies). A chip owns the Q, K, V and
  output-projection slices and the KV cache of its heads;
- when N exceeds the heads, some chips own no head (`chips_without_heads`) and do FFN work only;
- the FFN is split by hidden slices, [i*F//N, (i+1)*F//N) (gate/up columns, down rows);
- the classifier (when placed as "split") by vocabulary rows; argmax is reduced up the tree;
- norms, residual stream and embedding lookup live on the root (chip 0), which applies the norm
  after a reduction and broadcasts the normed vector: no weight is stored twice;
- two synchronisations per block (after the attention output projection, after the FFN down
  projection): a reduction up a tree of fan-in K, then a broadcast down the same tree.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from slmc.errors import SlmcError
from slmc.frontend.decoder import DecoderConfig

CLASSIFIER_PLACEMENTS = ("split", "root", "none")


@dataclass(frozen=True)
class ChipShare:
    chip: int
    heads: tuple[int, int]      # [start, stop) query heads
    kv_heads: tuple[int, ...]   # KV heads this chip stores
    ffn: tuple[int, int]        # [start, stop) hidden units
    vocab: tuple[int, int]      # [start, stop) classifier rows

    @property
    def n_heads(self) -> int:
        return self.heads[1] - self.heads[0]

    @property
    def n_ffn(self) -> int:
        return self.ffn[1] - self.ffn[0]

    @property
    def n_vocab(self) -> int:
        return self.vocab[1] - self.vocab[0]


@dataclass(frozen=True)
class Partition:
    n_chips: int
    fanin: int
    classifier: str
    chips: tuple[ChipShare, ...]
    tree: tuple[tuple[int, ...], ...]  # per level (leaves first): children each parent receives from, max over parents
    kv_duplicates: int
    chips_without_heads: int
    uneven: tuple[str, ...]            # what is split unevenly, in words

    @property
    def depth(self) -> int:
        return len(self.tree)

    @property
    def syncs_per_block(self) -> int:
        return 2 if self.n_chips > 1 else 0

    def notes(self) -> list[str]:
        out = list(self.uneven)
        if self.kv_duplicates:
            out.append(f"{self.kv_duplicates} KV head copies duplicated (N exceeds the KV heads)")
        if self.chips_without_heads:
            out.append(f"{self.chips_without_heads} chips own no attention head (N > heads): FFN work only")
        return out

    def to_dict(self) -> dict:
        d = asdict(self)
        d["depth"] = self.depth
        d["notes"] = self.notes()
        return d


def _split(n: int, parts: int, i: int) -> tuple[int, int]:
    return (i * n // parts, (i + 1) * n // parts)


def reduction_tree(n_chips: int, fanin: int) -> tuple[tuple[int, ...], ...]:
    """Levels of the hierarchical reduction: at each level the live nodes form consecutive groups of
    `fanin`; the first of a group receives from the others. Each level lists, per parent, how many
    children it receives from."""
    if fanin < 2:
        raise SlmcError(f"reduction fan-in {fanin} is below 2", "use --reduce-fanin 2 or more")
    live, levels = n_chips, []
    while live > 1:
        groups = [min(fanin, live - g) for g in range(0, live, fanin)]
        levels.append(tuple(k - 1 for k in groups))
        live = len(groups)
    return tuple(levels)


def partition(cfg: DecoderConfig, n_chips: int, fanin: int = 2, classifier: str = "split") -> Partition:
    if n_chips < 1:
        raise SlmcError(f"{n_chips} chips", "use one chip or more")
    if classifier not in CLASSIFIER_PLACEMENTS:
        raise SlmcError(f"unknown classifier placement '{classifier}'",
                        f"use one of {', '.join(CLASSIFIER_PLACEMENTS)}")
    group = cfg.n_heads // cfg.n_kv_heads
    chips = []
    for i in range(n_chips):
        if n_chips <= cfg.n_kv_heads:  # split whole KV groups: nothing duplicated
            k0, k1 = _split(cfg.n_kv_heads, n_chips, i)
            h0, h1 = k0 * group, k1 * group
        else:
            h0, h1 = _split(cfg.n_heads, n_chips, i)
        kv = tuple(sorted({h // group for h in range(h0, h1)}))
        vocab = _split(cfg.vocab_size, n_chips, i) if classifier == "split" else \
            ((0, cfg.vocab_size) if classifier == "root" and i == 0 else (0, 0))
        chips.append(ChipShare(i, (h0, h1), kv, _split(cfg.hidden_dim, n_chips, i), vocab))
    kv_dup = sum(len(c.kv_heads) for c in chips) - cfg.n_kv_heads
    uneven = []
    for what, total in (("heads", cfg.n_heads), ("FFN hidden units", cfg.hidden_dim)) + \
            ((("vocabulary rows", cfg.vocab_size),) if classifier == "split" else ()):
        if total % n_chips:
            lo, hi = total // n_chips, -(-total // n_chips)
            uneven.append(f"{what}: {total} over {n_chips} chips, {lo} to {hi} per chip")
    return Partition(n_chips, fanin, classifier, tuple(chips), reduction_tree(n_chips, fanin), kv_dup,
                     sum(1 for c in chips if c.n_heads == 0), tuple(uneven))
