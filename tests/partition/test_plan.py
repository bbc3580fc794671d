"""The partition pass (plan/partition.py): ownership, synchronisations, GQA rules, uneven splits."""

import pytest

from slmc.errors import SlmcError
from slmc.frontend.decoder import DecoderConfig
from slmc.plan.partition import CONTROL_BYTES, check, partition, tree
from slmc.sim.partition_model import partition as analytic_partition
from slmc.sim.partition_model import reduction_tree

S260K = DecoderConfig(dim=64, hidden_dim=172, n_layers=5, n_heads=8, n_kv_heads=4, vocab_size=512, seq_len=512)
MHA = DecoderConfig(dim=96, hidden_dim=256, n_layers=2, n_heads=6, n_kv_heads=6, vocab_size=100, seq_len=32)
GQA2 = DecoderConfig(dim=64, hidden_dim=128, n_layers=2, n_heads=8, n_kv_heads=2, vocab_size=100, seq_len=32)


def _covers_once(ranges: list[tuple[int, int]], total: int) -> bool:
    owned = [i for a, b in ranges for i in range(a, b)]
    return sorted(owned) == list(range(total))


@pytest.mark.parametrize("cfg", [S260K, MHA, GQA2])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 8])
@pytest.mark.parametrize("numerics", ["fp32", "q8"])
def test_every_row_and_column_owned_exactly_once(cfg, n, numerics):
    p = partition(cfg, n, 2, numerics)
    hd = cfg.head_dim
    # Wq rows and Wo columns: by query heads; W1/W3 rows and W2 columns: by FFN slices
    assert _covers_once([(c.heads[0] * hd, c.heads[1] * hd) for c in p.chips], cfg.q_dim)
    assert _covers_once([c.ffn for c in p.chips], cfg.hidden_dim)
    # Wk/Wv rows and the KV cache: once while N <= KV heads, else each copy is counted
    kv_rows = [(c.kv_heads[0], c.kv_heads[1]) for c in p.chips]
    if n <= cfg.n_kv_heads:
        assert _covers_once(kv_rows, cfg.n_kv_heads) and p.kv_duplicates == 0
    else:
        assert sum(b - a for a, b in kv_rows) - cfg.n_kv_heads == p.kv_duplicates
    # each chip's query heads use exactly its KV heads
    group = cfg.n_heads // cfg.n_kv_heads
    for c in p.chips:
        assert {h // group for h in range(*c.heads)} == set(range(*c.kv_heads))
    assert [c.root for c in p.chips] == [True] + [False] * (n - 1)  # embedding, final norm, classifier: chip 0


def test_gqa_kv_heads_never_duplicated_until_n_exceeds_them():
    for n in (1, 2):
        assert partition(GQA2, n).kv_duplicates == 0
    p = partition(GQA2, 4)   # 2 chips per KV head, each with 2 of its 4 query heads
    assert p.kv_duplicates == 2 and [c.heads for c in p.chips] == [(0, 2), (2, 4), (4, 6), (6, 8)]
    assert [c.kv_heads for c in p.chips] == [(0, 1), (0, 1), (1, 2), (1, 2)]
    assert any("stored twice" in n for n in p.notes)
    p3 = partition(GQA2, 3)  # a chip never straddles two KV groups: its attention stays one kernel call
    assert [c.heads for c in p3.chips] == [(0, 4), (4, 6), (6, 8)] and p3.kv_duplicates == 1


def test_same_split_as_the_analytic_model_where_it_applies():
    for cfg, n in ((S260K, 2), (S260K, 4), (S260K, 8), (MHA, 3), (GQA2, 4)):
        a, p = analytic_partition(cfg, n, 2, "root"), partition(cfg, n)
        assert [c.heads for c in a.chips] == [c.heads for c in p.chips]
        assert [c.ffn for c in a.chips] == [c.ffn for c in p.chips]
        assert p.depth == a.depth


def test_uneven_split_is_reported():
    p = partition(S260K, 3)
    assert [c.n_heads for c in p.chips] == [2, 2, 4]  # whole KV groups: 4 KV heads over 3 chips
    assert [c.n_ffn for c in p.chips] == [57, 57, 58]
    assert any(n.startswith("heads: 8 over 3 chips") for n in p.notes)
    assert any(n.startswith("FFN hidden units: 172 over 3 chips") for n in p.notes)


def test_more_chips_than_heads_leaves_some_without_attention():
    p = partition(MHA, 8)
    assert sum(c.n_heads == 0 for c in p.chips) == 2
    assert any("own no attention head" in n for n in p.notes)


def test_sync_count_per_block():
    assert partition(S260K, 1).syncs_per_block == 0
    for n in (2, 3, 4, 8):
        assert partition(S260K, n, 2, "fp32").syncs_per_block == 2
        assert partition(S260K, n, 2, "fp32").syncs_per_step == 1 + 2 * 5
        # q8: stories260K's Wo input is one group of 64 over heads of 8: the group maxima need one more
        q = partition(S260K, n, 2, "q8")
        assert q.q8_max_sync and q.syncs_per_block == 3 and q.wo_groups == 1
    # heads of 32 with groups of 32: aligned, so q8 needs no extra sync
    aligned = DecoderConfig(dim=128, hidden_dim=256, n_layers=2, n_heads=4, n_kv_heads=4, vocab_size=64, seq_len=16)
    q = partition(aligned, 4, 2, "q8", wo_group=32)
    assert not q.q8_max_sync and q.syncs_per_block == 2


def test_q8_slices_are_aligned_to_the_groups():
    for n in (2, 3, 4, 8):
        p = partition(S260K, n, 2, "q8")
        assert p.w2_group == 4 and all(c.ffn[0] % 4 == 0 and c.ffn[1] % 4 == 0 for c in p.chips)


@pytest.mark.parametrize("n,fan_in", [(2, 2), (3, 2), (4, 2), (8, 2), (9, 3), (16, 4), (7, 3), (64, 4)])
def test_reduction_tree_matches_the_analytic_grouping(n, fan_in):
    parent, children = tree(n, fan_in)
    assert parent[0] == -1 and all(0 <= parent[c] < c for c in range(1, n))
    assert all(parent[c] == p for p in range(n) for c in children[p])
    # per level, how many children each parent receives from: the analytic model's tree
    levels = reduction_tree(n, fan_in)
    stride, got = 1, []
    while stride < n:
        per_parent = [sum(1 for c in children[p] if (c - p) < stride * fan_in and (c - p) % stride == 0
                          and (c - p) // stride < fan_in and c - p >= stride) for p in range(0, n, stride * fan_in)]
        got.append(tuple(per_parent))
        stride *= fan_in
    assert tuple(got) == levels


def test_link_bytes_follow_the_plan():
    p = partition(S260K, 4, 2, "fp32")
    b = p.link_bytes(1)
    assert set(b) == {(0, 1), (1, 0), (0, 2), (2, 0), (2, 3), (3, 2)}
    up = 5 * 2 * 64 * 4                                   # two all-reduces of dim floats per block
    assert b[(1, 0)] == up and b[(0, 1)] == CONTROL_BYTES + 64 * 4 + up
    assert p.link_bytes(16)[(1, 0)] == 16 * up
    q = partition(S260K, 2, 2, "q8").link_bytes(1)
    # per block: one group maximum each way; the fold of Wo carries the running sum and the int32
    # dots of the split group down and back up, W2's fold the running sum, then both results go down
    assert q[(1, 0)] == 5 * 4 * (1 + 2 * 64 + 64)
    assert q[(0, 1)] == CONTROL_BYTES + 64 * 4 + 5 * 4 * (1 + 2 * 64 + 64 + 2 * 64)


def test_bad_arguments():
    with pytest.raises(SlmcError):
        partition(S260K, 0)
    with pytest.raises(SlmcError):
        partition(S260K, 2, 1)


@pytest.mark.parametrize("cfg", [S260K, MHA, GQA2])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 8, 9])
def test_every_plan_passes_the_independent_check(cfg, n):
    for numerics in ("fp32", "q8"):
        check(partition(cfg, n, 3, numerics), cfg)


def test_the_check_catches_a_broken_plan():
    from dataclasses import replace

    p = partition(S260K, 2)
    bad = replace(p, chips=(replace(p.chips[0], ffn=(0, 80)), p.chips[1]))
    with pytest.raises(SlmcError, match="FFN units"):
        check(bad, S260K)
