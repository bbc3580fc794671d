"""What a node of a decoder step computes (Node.role), stamped by the builder (frontend/build.py) the way
it stamps Node.layer. The same operator plays different parts in a block: a `linear` is a query, key,
value, output, gate, up or down projection, or the classifier. The passes that treat them differently
read the role: int8 quantization picks each output's fixed-point format by it (passes/quantize_int8.py),
partitioning splits rows or columns by it (passes/partition.py), calibration groups its maxima by it.
"""

from __future__ import annotations

from enum import Enum


class Role(Enum):
    EMBED = "embed"            # token (and learned position) embedding: chip 0 only
    ATTN_NORM = "attn_norm"
    Q = "q"                    # projections: rows split by query heads ...
    K = "k"                    # ... and by KV heads
    V = "v"
    ROPE = "rope"              # rotations of q and k: shape and format follow the input
    QK_NORM = "qk_norm"        # qk-norm and q's attention scale: shape follows the input, like ROPE
    KV_WRITE = "kv_write"
    ATTENTION = "attention"
    O = "o"                    # output projection: columns split by heads, summed over the chips
    RESIDUAL = "residual"      # the residual stream's adds (and its multipliers)
    POST_NORM = "post_norm"    # norms of a sublayer's (summed) output before its add: every chip, like RESIDUAL
    FFN_NORM = "ffn_norm"
    GATE = "gate"              # FFN rows split by hidden slices
    UP = "up"
    FFN_ACT = "ffn_act"
    DOWN = "down"              # FFN columns split by hidden slices, summed over the chips
    ROUTER = "router"          # mixture of experts: the router's product and its top-k choice
    EXPERTS = "experts"        # the chosen experts' FFNs, weighted and summed
    FINAL_NORM = "final_norm"  # final norm and classifier: chip 0 only
    CLASSIFIER = "classifier"
