"""The partition pass: which chip owns which rows and columns of every weight, and how they talk.

`partition_model(model, n_chips, fan_in, numerics)` returns a frozen `PartitionPlan`; the per-chip
step graphs (passes/partition.py), the code generator and the multi-chip run read only this.
The split is the analytic model's (sim/partition_model.py, arXiv 2412.04372), made exact:

- attention by heads: chip i owns query heads [h0, h1), the rows of Wq/Wk/Wv of its heads, the
  matching columns of Wo and the KV cache of its KV heads. While N <= KV heads whole KV groups are
  split (`sim.partition_model.partition`: nothing stored twice); beyond, the chips are spread over
  the KV heads and each chip's query heads stay inside one KV group (the same split as the
  analytic model whenever KV heads divide N); a KV head shared by several chips is stored on each
  (`kv_duplicates`). A chip whose share is empty (N > heads, or more chips than FFN slices) adds a
  zero partial and still takes part in every synchronisation;
- the FFN by hidden slices: rows of W1/W3 and columns of W2 (in whole q8 groups of W2 under q8);
- embedding, final norm and classifier on chip 0 (`root`); the norm weights are replicated on
  every chip (`replicated_bytes`), so every chip normalises the residual stream it holds itself;
- synchronisation: chip 0 broadcasts the embedded tokens once per step (with an 8-byte control
  message: position and rows), then per block exactly two collectives over the tree of fan-in
  `fan_in` (sums of Wo's and W2's partial outputs), each ending with a broadcast down the tree;
- fp32: the collectives are all-reduces (sum up the tree, broadcast down): the partial sums are
  added in another order than on one chip (logits within about 1e-5 on stories260K);
- q8: activations are quantized in groups (quant/q8.py), and a reordered float sum would not stay
  small: a residual that differs in its last bit can round one activation to the next int8 and move
  logits by 0.1 (measured on stories260K). So q8 is exact instead. W2's input slices are whole
  groups; Wo's input is split at head boundaries, and where a group spans chips (stories260K: one
  group of 64 over 8 heads of 8) the chips first agree on the group's absolute maximum (one more,
  tiny all-reduce-max of `wo_groups` floats per row): the scale max/127 and the int8 activations are
  then one chip's. Each chip computes its exact int32 dot products per group (linear_q8_dots), and
  `fold_q8` carries the running float sum (and the int32 dot of a group split between chips) depth
  first through the tree, whose preorder is the chips' column order: every chip adds the same
  floats in the same order as one chip, so a partitioned q8 model is bit-identical to one chip.
  The fold's hops are sequential (the MACs are not); it sends about 1.5x an all-reduce's bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from slmc.errors import SlmcError
from slmc.frontend.decoder import DecoderConfig, DecoderModel, Q8Tensor
from slmc.quant.q8 import group_for
from slmc.sim.partition_model import _split, partition as analytic_partition, reduction_tree

CONTROL_BYTES = 8  # int32 position and int32 rows, broadcast by chip 0 before every step


@dataclass(frozen=True)
class ChipPlan:
    chip: int
    heads: tuple[int, int]      # [start, stop) query heads
    kv_heads: tuple[int, int]   # [start, stop) KV heads whose cache this chip holds
    ffn: tuple[int, int]        # [start, stop) hidden units (rows of W1/W3, columns of W2)
    root: bool                  # embedding, final norm and classifier live here
    parent: int                 # -1 for chip 0
    children: tuple[int, ...]   # in the order partial sums are received (and added)

    @property
    def n_heads(self) -> int:
        return self.heads[1] - self.heads[0]

    @property
    def n_kv_heads(self) -> int:
        return self.kv_heads[1] - self.kv_heads[0]

    @property
    def n_ffn(self) -> int:
        return self.ffn[1] - self.ffn[0]


@dataclass(frozen=True)
class PartitionPlan:
    n_chips: int
    fan_in: int
    numerics: str
    dim: int
    n_layers: int
    head_dim: int
    chips: tuple[ChipPlan, ...]
    wo_group: int               # q8 group of Wo's input (0 in fp32)
    w2_group: int               # q8 group of W2's input (0 in fp32)
    q8_max_sync: bool           # a group of Wo's input spans chips: one all-reduce-max per block
    kv_duplicates: int
    replicated_bytes: int       # on each chip but chip 0: the blocks' norm weights
    extra_scale_bytes: int      # q8, all chips together: Wo scales of a group split between chips, held by each
    notes: tuple[str, ...]

    @property
    def depth(self) -> int:
        return len(reduction_tree(self.n_chips, self.fan_in))

    @property
    def links(self) -> tuple[tuple[int, int], ...]:
        """Tree edges (parent, child)."""
        return tuple((c.parent, c.chip) for c in self.chips if c.parent >= 0)

    @property
    def wo_groups(self) -> int:
        return self.n_q_dim // self.wo_group if self.q8_max_sync else 0

    @property
    def n_q_dim(self) -> int:
        return self.chips[-1].heads[1] * self.head_dim

    @property
    def wo_bias_chip(self) -> int:
        """The chip that adds Wo's bias to its partial (the first with a head): added once in the sum."""
        return next(c.chip for c in self.chips if c.n_heads)

    @property
    def w2_bias_chip(self) -> int:
        return next(c.chip for c in self.chips if c.n_ffn)

    @property
    def syncs_per_block(self) -> int:
        if self.n_chips == 1:
            return 0
        return 2 + int(self.q8_max_sync)

    @property
    def syncs_per_step(self) -> int:
        """Collectives per step: the embedding broadcast, then every block's."""
        return (1 + self.n_layers * self.syncs_per_block) if self.n_chips > 1 else 0

    def link_bytes(self, rows: int = 1) -> dict[tuple[int, int], int]:
        """Bytes sent over each directed link (src, dst) in one step over `rows` tokens: what
        `slmc run --json` measures."""
        if self.numerics == "q8":
            # all-reduce-max of the group maxima; per fold the running sum goes down and comes back up
            # (with the int32 carry where a group spans chips), then the result is broadcast down
            fold = self.dim * (2 if self.q8_max_sync else 1) + self.dim
            up = rows * 4 * self.n_layers * (self.wo_groups + fold)
            down = CONTROL_BYTES + rows * 4 * self.dim + rows * 4 * self.n_layers * (self.wo_groups + fold + 2 * self.dim)
        else:  # fp32: float partial sums; int8: int64 partial sums and the int32 residual broadcast
            up = rows * (8 if self.numerics == "int8" else 4) * self.n_layers * 2 * self.dim
            down = CONTROL_BYTES + rows * 4 * self.dim + up
        out: dict[tuple[int, int], int] = {}
        for p, c in self.links:
            out[(c, p)] = up
            out[(p, c)] = down
        return out

    def to_dict(self) -> dict:
        return dict(n_chips=self.n_chips, fan_in=self.fan_in, numerics=self.numerics, depth=self.depth,
                    chips=[dict(chip=c.chip, heads=list(c.heads), kv_heads=list(c.kv_heads), ffn=list(c.ffn),
                                root=c.root, parent=c.parent, children=list(c.children)) for c in self.chips],
                    links=[list(link) for link in self.links], syncs_per_block=self.syncs_per_block,
                    syncs_per_step=self.syncs_per_step,
                    # q8's exact fold visits the chips one after another: 2 (N - 1) messages in sequence
                    sequential_hops_per_fold=2 * (self.n_chips - 1) if self.numerics == "q8" else 0,
                    q8_max_sync=self.q8_max_sync, wo_group=self.wo_group,
                    w2_group=self.w2_group, kv_duplicates=self.kv_duplicates,
                    replicated_bytes=self.replicated_bytes, extra_scale_bytes=self.extra_scale_bytes,
                    link_bytes_per_decode_step={f"{s}->{d}": b for (s, d), b in sorted(self.link_bytes(1).items())},
                    notes=list(self.notes))


def tree(n_chips: int, fan_in: int) -> tuple[list[int], list[list[int]]]:
    """Parent and ordered children of every chip: at level l the chips that are multiples of
    fan_in**l form consecutive groups of fan_in, and the first of a group receives from the
    others (the grouping of sim.partition_model.reduction_tree)."""
    if fan_in < 2:
        raise SlmcError(f"fan-in {fan_in} is below 2", "use --fan-in 2 or more")
    parent, children = [-1] * n_chips, [[] for _ in range(n_chips)]
    stride = 1
    while stride < n_chips:
        for p in range(0, n_chips, stride * fan_in):
            for j in range(1, fan_in):
                c = p + j * stride
                if c < n_chips:
                    parent[c] = p
                    children[p].append(c)
        stride *= fan_in
    return parent, children


def _heads(cfg: DecoderConfig, n: int) -> list[tuple[int, int]]:
    if n <= cfg.n_kv_heads:
        return [c.heads for c in analytic_partition(cfg, n, 2, "root").chips]
    # more chips than KV heads: each chip's query heads inside one KV group, so its attention is plain
    # multi-head attention over one cached KV head
    group, out = cfg.n_heads // cfg.n_kv_heads, []
    for kv in range(cfg.n_kv_heads):
        c0, c1 = _split(n, cfg.n_kv_heads, kv)
        for j in range(c1 - c0):
            a, b = _split(group, c1 - c0, j)
            out.append((kv * group + a, kv * group + b))
    return out


def weight_group(w: "object", cols: int) -> int:
    return w.group if isinstance(w, Q8Tensor) else group_for(cols)


def partition(cfg: DecoderConfig, n_chips: int, fan_in: int = 2, numerics: str = "fp32",
              wo_group: int | None = None, w2_group: int | None = None,
              block_norm_bytes: int | None = None) -> PartitionPlan:
    """The plan for a model of this shape; q8 groups default to quant/q8.py's choice."""
    if n_chips < 1:
        raise SlmcError(f"{n_chips} chips", "use one chip or more")
    parent, children = tree(n_chips, fan_in)
    hd, group = cfg.head_dim, cfg.n_heads // cfg.n_kv_heads
    heads = _heads(cfg, n_chips)
    q8 = numerics == "q8"
    w2g = (w2_group or group_for(cfg.hidden_dim)) if q8 else 0
    unit = w2g or 1
    ffn = [tuple(unit * b for b in _split(cfg.hidden_dim // unit, n_chips, i)) for i in range(n_chips)]
    chips = []
    for i, (h0, h1) in enumerate(heads):
        kv = (h0 // group, -(-h1 // group)) if h1 > h0 else (0, 0)
        chips.append(ChipPlan(i, (h0, h1), kv, ffn[i], i == 0, parent[i], tuple(children[i])))  # type: ignore[arg-type]
    wog = (wo_group or group_for(cfg.q_dim)) if q8 else 0
    bounds = [h * hd for c in chips for h in c.heads]
    span = q8 and n_chips > 1 and any(b % wog for b in bounds)
    notes = []
    for what, total, parts in (("heads", cfg.n_heads, [c.n_heads for c in chips]),
                               ("FFN hidden units", cfg.hidden_dim, [c.n_ffn for c in chips])):
        if len(set(parts)) > 1:
            notes.append(f"{what}: {total} over {n_chips} chips, {min(parts)} to {max(parts)} per chip")
    kv_dup = sum(c.n_kv_heads for c in chips) - cfg.n_kv_heads
    if kv_dup:
        notes.append(f"{kv_dup} KV head copies stored twice ({n_chips} chips > {cfg.n_kv_heads} KV heads)")
    if any(c.n_heads == 0 for c in chips):
        notes.append(f"{sum(c.n_heads == 0 for c in chips)} chips own no attention head: they add zero partials")
    if any(c.n_ffn == 0 for c in chips):
        notes.append(f"{sum(c.n_ffn == 0 for c in chips)} chips own no FFN slice: they add zero partials")
    if block_norm_bytes is None:
        block_norm_bytes = 4 * cfg.dim * 2 * cfg.n_layers * (2 if cfg.norm == "layer" else 1)
    extra = 0
    if span:
        touched = sum(len({h * hd // wog for h in range(*c.heads)} | {(c.heads[1] * hd - 1) // wog}) for c in chips
                      if c.n_heads)
        extra = 4 * cfg.dim * cfg.n_layers * (touched - cfg.q_dim // wog)
        notes.append(f"q8: a group of {wog} of Wo's input spans chips (heads of {hd}): one all-reduce-max of "
                     f"{cfg.q_dim // wog} float(s) per token per block before Wo; fp32 needs exactly two syncs per block")
    if n_chips > 1:
        notes.append(f"norm weights replicated: {block_norm_bytes:,} B on each chip but chip 0")
        if cfg.pos == "rope":  # computed from the configuration, not weights, but memory all the same
            notes.append(f"RoPE tables on every chip with a head: {cfg.seq_len * hd * (2 if numerics == 'int8' else 4):,} B each")
    if q8 and n_chips > 1:
        notes.append("q8: Wo and W2 partial sums are folded in one chip's order (fold_q8): bit-identical to one chip")
    if numerics == "int8" and n_chips > 1:
        notes.append("int8: Wo and W2 partial sums are int64, added over the chips before the shift: bit-identical "
                     "to one chip, two syncs per block")
    return PartitionPlan(n_chips, fan_in, numerics, cfg.dim, cfg.n_layers, hd, tuple(chips), wog, w2g, span,
                         kv_dup, block_norm_bytes if n_chips > 1 else 0, extra, tuple(notes))


def check(plan: PartitionPlan, cfg: DecoderConfig) -> None:
    """An independent validator, run before any code is emitted: every query head, FFN unit and
    (while N <= KV heads) KV head owned exactly once, each chip's KV heads exactly those its query
    heads use, q8 slices of W2 in whole groups, and a tree that reaches every chip once."""
    def once(ranges: list[tuple[int, int]], total: int, what: str) -> None:
        if sorted(i for a, b in ranges for i in range(a, b)) != list(range(total)):
            raise SlmcError(f"partition: {what} not owned exactly once", "this is a bug in slmc")
    once([c.heads for c in plan.chips], cfg.n_heads, "query heads")
    once([c.ffn for c in plan.chips], cfg.hidden_dim, "FFN units")
    if plan.n_chips <= cfg.n_kv_heads:
        once([c.kv_heads for c in plan.chips], cfg.n_kv_heads, "KV heads")
    group = cfg.n_heads // cfg.n_kv_heads
    for c in plan.chips:
        if set(range(*c.kv_heads)) != {h // group for h in range(*c.heads)}:
            raise SlmcError(f"partition: chip {c.chip}'s KV heads do not match its query heads", "this is a bug in slmc")
        if plan.w2_group and (c.ffn[0] % plan.w2_group or c.ffn[1] % plan.w2_group):
            raise SlmcError(f"partition: chip {c.chip}'s FFN slice splits a q8 group", "this is a bug in slmc")
    seen, todo = set(), [0]
    while todo:
        c = todo.pop()
        seen.add(c)
        todo += [k for k in plan.chips[c].children if plan.chips[k].parent == c and k not in seen]
    if seen != set(range(plan.n_chips)):
        raise SlmcError("partition: the reduction tree does not reach every chip once", "this is a bug in slmc")


def partition_model(model: DecoderModel, n_chips: int, fan_in: int = 2, numerics: str = "fp32") -> PartitionPlan:
    cfg = model.config
    if cfg.pos != "rope" and cfg.pos != "learned":
        raise SlmcError(f"position scheme '{cfg.pos}' cannot be partitioned", "use one chip")
    if cfg.n_experts:
        raise SlmcError("a mixture-of-experts model cannot be partitioned over chips yet",
                        "compile it for one chip (omit --chips)")
    lw = model.layers[0]
    norms = [w for layer in model.layers for w in (layer.attn_norm, layer.attn_norm_b, layer.ffn_norm, layer.ffn_norm_b)]
    plan = partition(cfg, n_chips, fan_in, numerics, weight_group(lw.wo, cfg.q_dim), weight_group(lw.w2, cfg.hidden_dim),
                     sum(int(w.nbytes) for w in norms if w is not None))
    check(plan, cfg)
    return plan
