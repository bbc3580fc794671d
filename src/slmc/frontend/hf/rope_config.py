"""config.json's RoPE parameters -> (theta, RopeScaling), read the way transformers 5 standardises them:
`rope_parameters` (transformers >= 5), else `rope_scaling` with a top-level `rope_theta` (earlier files);
`rope_scaling` wins where both are present, as in convert_rope_params_to_dict."""

from __future__ import annotations

from slmc.frontend.decoder import RopeScaling
from slmc.frontend.hf.fields import Fields
from slmc.frontend.rope import longrope_attention_factor, yarn_attention_factor

SCALINGS = ("linear", "dynamic", "llama3", "yarn", "longrope")


def read_rope(f: Fields, head_dim: int, max_pos: int, aliases: dict[str, str] | None = None,
              kinds: tuple[str, ...] = SCALINGS, partial_ok: bool = False) -> tuple[float, RopeScaling, list[str]]:
    """theta, the scaling, and a note for the model when it is scaled. `aliases`: a family's old names
    for a kind (Phi-3 reads "su" and "yarn" as longrope); `kinds`: the scalings the family's code accepts;
    `partial_ok`: the family rotates partial_rotary_factor of each head (read by partial_rotary())."""
    top_theta = f.num("rope_theta", 10000.0)
    p = f.within("rope_scaling") if f.obj("rope_scaling") else f.within("rope_parameters")
    theta = p.num("rope_theta", top_theta)
    kind = p.str("rope_type", p.str("type", "default"))
    kind = (aliases or {}).get(kind, kind)
    partial = p.num("partial_rotary_factor", f.num("partial_rotary_factor", 1.0))
    if partial != 1.0 and not partial_ok:
        raise f.refuse(f"partial rotary (partial_rotary_factor {partial:g}) is not supported: slmc rotates whole "
                       "heads", "use a model that rotates the whole head")
    if kind == "default":
        return theta, RopeScaling(), []
    if kind not in kinds:
        raise f.refuse(f"RoPE scaling {kind!r} is not supported (slmc has {', '.join(kinds)})",
                       "use a model without that rope_scaling")
    # Phi-3 keeps the pretraining length outside the RoPE parameters, and there it wins (standardize_rope_params)
    orig = f.int("original_max_position_embeddings", 0) or p.int("original_max_position_embeddings", max_pos)
    if kind == "linear":
        s = RopeScaling("linear", p.num("factor"))
    elif kind == "dynamic":
        s = RopeScaling("dynamic", p.num("factor"), max_pos)
    elif kind == "llama3":
        s = RopeScaling("llama3", p.num("factor"), orig, low_freq_factor=p.num("low_freq_factor"),
                        high_freq_factor=p.num("high_freq_factor"))
    elif kind == "yarn":
        factor = p.num("factor", max_pos / orig)
        af = p.num("attention_factor") if p.has("attention_factor") else yarn_attention_factor(
            factor, p.num("mscale", 0.0) if p.has("mscale") else None,
            p.num("mscale_all_dim", 0.0) if p.has("mscale_all_dim") else None)
        s = RopeScaling("yarn", factor, orig, beta_fast=p.num("beta_fast", 32.0), beta_slow=p.num("beta_slow", 1.0),
                        truncate=p.bool("truncate", True), attention_factor=af)
    else:  # longrope
        factor = p.num("factor", max_pos / orig)
        p.nums("long_factor", head_dim // 2)  # checked though unused: a context past orig is refused
        af = p.num("attention_factor") if p.has("attention_factor") else longrope_attention_factor(factor, orig)
        s = RopeScaling("longrope", factor, orig, attention_factor=af,
                        short_factor=p.nums("short_factor", head_dim // 2))
    note = f"RoPE scaling {kind} (factor {s.factor:g}) computed as transformers does"
    return theta, s, [note]


def partial_rotary(f: Fields, head_dim: int) -> int:
    """The rotated features of each head: int(head_dim * partial_rotary_factor), as transformers computes it
    (rope_parameters' factor wins over the top-level one); 0 where that is the whole head."""
    p = f.within("rope_scaling") if f.obj("rope_scaling") else f.within("rope_parameters")
    factor = p.num("partial_rotary_factor", f.num("partial_rotary_factor", 1.0))
    rot = int(head_dim * factor)
    if factor > 1.0 or rot < 2 or rot % 2:
        raise f.bad("partial_rotary_factor", factor, f"a fraction of the head size {head_dim} giving an even width")
    return 0 if rot == head_dim else rot
