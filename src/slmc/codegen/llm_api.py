"""The language-model API of model.h / model.c, as llama2.c's run.c offers it: the config, slmc_reset (a
fresh KV cache), slmc_decode (one token) and slmc_prefill (a prompt, in chunks of the prompt step), each
checking its arguments before it touches any state."""

from __future__ import annotations

from dataclasses import dataclass

from slmc.codegen.layers import LayerTable
from slmc.cquote import c_comment, comment
from slmc.ir import Graph
from slmc.plan.plan import MemoryPlan


@dataclass(frozen=True)
class LlmInfo:
    """What the language-model API in model.h needs to know."""

    dim: int
    hidden_dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    vocab_size: int
    seq_len: int
    prefill_chunk: int
    logits_frac: int = -1     # >= 0: the decode graph's logits are int32 with this many fractional bits (-q int8)
    batch: int = 0            # > 0: this many KV slots, one per sequence (codegen/batch_api.py)
    rows: int = 0             # the rows one step graph runs (1..batch)


def llm_header(m: LlmInfo) -> list[str]:
    return [
        f"#define SLMC_DIM {m.dim}", f"#define SLMC_HIDDEN_DIM {m.hidden_dim}", f"#define SLMC_N_LAYERS {m.n_layers}",
        f"#define SLMC_N_HEADS {m.n_heads}", f"#define SLMC_N_KV_HEADS {m.n_kv_heads}",
        f"#define SLMC_VOCAB_SIZE {m.vocab_size}", f"#define SLMC_SEQ_LEN {m.seq_len}",
        f"#define SLMC_PREFILL_CHUNK {m.prefill_chunk} /* tokens per prompt step; 0: prompts go through decode */",
        "",
        "typedef struct { int dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len, prefill_chunk; } SlmcConfig;",
        "extern const SlmcConfig slmc_config;",
        "",
        "/* Forget every position: zeroes the KV cache. */",
        "void slmc_reset(void);",
        "",
        "/* What slmc_decode and slmc_prefill return: they check their arguments before touching any state, so",
        "   a call that fails leaves the KV cache as it was. Checked in the order NULL, n, pos, tokens. */",
        "#define SLMC_OK 0",
        "#define SLMC_ERR_TOKEN (-1) /* a token outside 0 .. SLMC_VOCAB_SIZE - 1 */",
        "#define SLMC_ERR_POS (-2)   /* pos outside 0 .. SLMC_SEQ_LEN - 1, or pos + n beyond SLMC_SEQ_LEN */",
        "#define SLMC_ERR_COUNT (-3) /* n < 1 */",
        "#define SLMC_ERR_NULL (-4)  /* tokens or logits is NULL */",
        "/* Process `token` at position `pos` (0 <= pos < SLMC_SEQ_LEN); writes SLMC_VOCAB_SIZE logits. */",
        "int slmc_decode(int token, int pos, float *logits);",
        "/* Process n tokens at positions pos .. pos+n-1; writes n rows of SLMC_VOCAB_SIZE logits. */",
        "int slmc_prefill(const int32_t *tokens, int n, int pos, float *logits);",
    ]


# (float)v * 2^-frac: without an FPU (RV32IMAC) soft-float's int-to-float and multiply cost about 160
# instructions a logit; this is the same rounding (to nearest, ties to even) in integer steps, about 25
FIX_TO_FLOAT = [
    "#if defined(__riscv) && !defined(__riscv_flen)",
    "static float slmc_fix_to_float(int32_t v, int frac) {",
    "    uint32_t a = v < 0 ? 0u - (uint32_t)v : (uint32_t)v, bits = 0;",
    "    if (a) {",
    "        int e = 31;  /* a shifted up to bit 31 in five steps (no libgcc __clzsi2 call without Zbb) */",
    "        if (!(a >> 16)) { a <<= 16; e -= 16; }",
    "        if (!(a >> 24)) { a <<= 8; e -= 8; }",
    "        if (!(a >> 28)) { a <<= 4; e -= 4; }",
    "        if (!(a >> 30)) { a <<= 2; e -= 2; }",
    "        if (!(a >> 31)) { a <<= 1; e -= 1; }",
    "        uint32_t mant = a >> 8, rem = a << 24, half = 0x80000000u;  /* 24 bits; the bits shifted out */",
    "        if (rem > half || (rem == half && (mant & 1))) mant++;  /* rem = 0 where e <= 23 */",
    "        if (mant >> 24) { mant >>= 1; e++; }",
    "        bits = (v < 0 ? 0x80000000u : 0u) | (uint32_t)(e - frac + 127) << 23 | (mant & 0x7FFFFFu);",
    "    }",
    "    float f;",
    "    memcpy(&f, &bits, sizeof f);",
    "    return f;",
    "}",
    "#define SLMC_FIX_TO_FLOAT(v, frac, scale) slmc_fix_to_float(v, frac)",
    "#else",
    "#define SLMC_FIX_TO_FLOAT(v, frac, scale) ((float)(v) * (scale))",
    "#endif",
    "",
]


def llm_api(graphs: list[Graph], plan: MemoryPlan, m: LlmInfo, table: LayerTable) -> list[str]:
    in_table = table.states()
    states = sorted({(v.name, v.nbytes) for g in graphs for v in g.states() if v.name not in in_table})
    out = [f"const SlmcConfig slmc_config = {{{m.dim}, {m.hidden_dim}, {m.n_layers}, {m.n_heads}, {m.n_kv_heads}, "
           f"{m.vocab_size}, {m.seq_len}, {m.prefill_chunk}}};", "", "void slmc_reset(void) {"]
    out += table.reset_lines()
    out += [f"    memset(slmc_arena + {plan.offset_of(n)}, 0, {b}); {comment(c_comment(n))}" for n, b in states]
    # a chip of a partitioned model other than chip 0 has no logits (codegen/chips.py): it only follows
    lg = ", logits" if graphs[0].outputs else ""
    decode = [f"    slmc_graph_decode(&t, pos, 1{lg});", *([] if lg else ["    (void)logits;"])]
    if m.logits_frac >= 0 and lg:  # integer logits, written into the caller's buffer, turned into floats in place
        decode = ["    slmc_graph_decode(&t, pos, 1, (int32_t *)(void *)logits);",
                  "    for (int i = 0; i < SLMC_VOCAB_SIZE; i++) {",
                  "        int32_t v = ((const int32_t *)(void *)logits)[i];  /* as the graph wrote it */",
                  f"        logits[i] = SLMC_FIX_TO_FLOAT(v, {m.logits_frac}, 0x1p-{m.logits_frac}f);", "    }"]
        out[:0] = FIX_TO_FLOAT
    # The graph indexes the embedding table with the token and the KV cache with the position, with no
    # check of its own: out of range they would read and write outside both. One compare and branch each
    # (the compiler folds `x < 0 || x >= N` into one unsigned compare); a chip with no logits takes NULL.
    null = "!logits" if lg else ""
    out += ["}", "", "int slmc_decode(int token, int pos, float *logits) {",
            *([f"    if ({null}) return SLMC_ERR_NULL;"] if null else []),
            "    if (pos < 0 || pos >= SLMC_SEQ_LEN) return SLMC_ERR_POS;",
            "    if (token < 0 || token >= SLMC_VOCAB_SIZE) return SLMC_ERR_TOKEN;",
            "    int32_t t = token;",
            *decode, "    return SLMC_OK;", "}", "",
            "int slmc_prefill(const int32_t *tokens, int n, int pos, float *logits) {",
            f"    if (!tokens{' || ' + null if null else ''}) return SLMC_ERR_NULL;",
            "    if (n < 1) return SLMC_ERR_COUNT;",
            "    if (pos < 0 || pos >= SLMC_SEQ_LEN || n > SLMC_SEQ_LEN - pos) return SLMC_ERR_POS;",
            "    /* every token before any is processed: a bad one leaves the KV cache as it was */",
            "    for (int i = 0; i < n; i++)",
            "        if (tokens[i] < 0 || tokens[i] >= SLMC_VOCAB_SIZE) return SLMC_ERR_TOKEN;"]
    if m.prefill_chunk:
        out += ["    for (int i = 0; i < n; i += SLMC_PREFILL_CHUNK) {",
                "        int c = n - i < SLMC_PREFILL_CHUNK ? n - i : SLMC_PREFILL_CHUNK;",
                f"        slmc_graph_prefill(tokens + i, pos + i, c{lg and lg + ' + (size_t)i * SLMC_VOCAB_SIZE'});", "    }"]
    else:  # checked above: slmc_decode cannot fail here
        row = " + (size_t)i * SLMC_VOCAB_SIZE" if lg else ""  # no offset on a chip's NULL logits
        out += [f"    for (int i = 0; i < n; i++) (void)slmc_decode(tokens[i], pos + i, logits{row});"]
    return out + ["    return SLMC_OK;", "}"]
