"""The expert cache's slot table replayed in Python, token by token (kernels/c/expert_cache.c's rules): what the
generated C counts only as run totals, per token, for pictures (benchmarks/moe.py). The benchmark checks that
the replay's totals equal the C run's counters, so the two descriptions of the policy cannot drift apart.

Input per token: the experts every layer's router chose (layer order, each row best first) and, with the
predictor, its plan (the experts of layers first .. first + n_pred - 1, best first), issued when layer `first`
starts, and with its token table, the plan of layers 0 .. first - 1, issued as the step starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TokenLoads:
    misses: int = 0        # loads at use (a stall each)
    prefetches: int = 0    # loads the predictor issued ahead of use
    hits: int = 0
    prefetch_hits: int = 0


@dataclass
class SlotTable:
    slots: int
    policy: str                     # "none" | "lru" | "predictor"
    n_experts: int
    tags: list[int] = field(default_factory=list)    # tag + 1 per slot, 0 empty
    used: list[int] = field(default_factory=list)
    marks: list[int] = field(default_factory=list)   # first tag of the layer it was prefetched for + 1, or 0
    clock: int = 0

    def __post_init__(self) -> None:
        self.tags, self.used, self.marks = [0] * self.slots, [0] * self.slots, [0] * self.slots

    def _victim(self) -> int:
        free = [s for s in range(self.slots) if not self.marks[s]] or list(range(self.slots))
        return min(free, key=lambda s: (self.used[s], s))

    def fetch(self, layer: int, e: int, t: TokenLoads) -> None:
        tag0 = layer * self.n_experts
        tag = tag0 + e
        self.clock += 1
        hit = -1
        for s in range(self.slots):
            if self.policy != "none" and self.tags[s] == tag + 1:
                hit = s
            if self.marks[s] and self.marks[s] - 1 < tag0:
                self.marks[s] = 0
        if hit >= 0:
            t.hits += 1
            t.prefetch_hits += bool(self.marks[hit])
            self.marks[hit], self.used[hit] = 0, self.clock
            return
        s = self._victim()
        self.marks[s], self.used[s], self.tags[s] = 0, self.clock, tag + 1
        t.misses += 1

    def prefetch(self, first: int, plan: list[list[int]], t: TokenLoads) -> None:
        self.marks = [0] * self.slots
        for p, experts in enumerate(plan):
            tag0 = (first + p) * self.n_experts
            for e in experts:
                held = [s for s in range(self.slots) if self.tags[s] == tag0 + e + 1]
                s = held[-1] if held else self._victim()
                if not held:
                    self.tags[s] = tag0 + e + 1
                    t.prefetches += 1
                self.marks[s] = tag0 + 1
                self.clock += 1
                self.used[s] = self.clock


def replay(chosen: list[list[list[int]]], slots: int, policy: str, n_experts: int,
           plans: list[list[list[int]]] | None = None, first: int = 0,
           token_plans: list[list[list[int]]] | None = None) -> list[TokenLoads]:
    """Per token, its loads and hits: chosen[token][layer] the router's experts, plans[token] the predictor's,
    token_plans[token] the token table's (layers 0 .., issued as the step starts)."""
    table, out = SlotTable(slots, policy, n_experts), []
    for i, layers in enumerate(chosen):
        t = TokenLoads()
        if token_plans is not None:
            table.prefetch(0, token_plans[i], t)
        for lay, experts in enumerate(layers):
            if plans is not None and lay == first:
                table.prefetch(first, plans[i], t)
            for e in experts:
                table.fetch(lay, e, t)
        out.append(t)
    return out
