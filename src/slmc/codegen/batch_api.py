"""The API of a batched build (slmc compile --batch B, passes/batch.py) in model.h / model.c:
slmc_step runs up to B rows, each the token of some sequence at that sequence's position in its own KV slot,
through one call of the step graph (each weight read once for all rows); slmc_step_rows does the same for rows
of which only some want logits (the others skip the final norm and the classifier). slmc_decode and slmc_prefill stay,
for one sequence in slot 0, so a batched build also runs main_llm.c's way."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from slmc.codegen.layers import LayerTable
from slmc.codegen.llm_api import LlmInfo, llm_header
from slmc.cquote import c_comment, comment
from slmc.errors import SlmcError
from slmc.ir import Graph, Node, Value
from slmc.plan.plan import MemoryPlan


@dataclass(frozen=True)
class WantRows:
    """slmc_step_rows in the step function: before the nodes after the blocks that only make logits
    (passes/batch.py logits_tail), the rows whose logits are wanted move to the front of what those nodes read,
    in order, and the nodes run over them alone (`n` becomes their count). Row i of a row-wise node computes the
    same bits whichever rows run beside it, so a wanted row's logits are those of the all-rows step."""

    param: str               # the step function's `want` parameter (NULL: every row)
    first: Node              # the first node of the tail
    reads: tuple[Value, ...]  # the rows of activations the tail reads from before it
    rows: int

    @staticmethod
    def of(graph: Graph, param: str) -> "WantRows":
        from slmc.passes.batch import logits_tail
        from slmc.plan.lifetimes import storage_root

        tail, reads = logits_tail(graph)
        if not tail or any(storage_root(v).nbytes != v.nbytes for v in reads):
            raise SlmcError(f"the batched step '{graph.name}' has no row-wise nodes after its blocks that only make "
                            "the logits, so slmc_step_rows cannot skip them", "this is a bug in slmc")
        return WantRows(param, tail[0], tuple(reads), graph.inputs[0].shape[0])

    def lines(self, expr: Callable[[Value], str]) -> list[str]:
        moves = [f"memcpy((uint8_t *){expr(v)} + (size_t)slmc_m * {v.nbytes // self.rows}, "
                 f"(const uint8_t *){expr(v)} + (size_t)slmc_i * {v.nbytes // self.rows}, {v.nbytes // self.rows});"
                 for v in self.reads]
        return [f"    if ({self.param}) {{ /* only the rows whose logits are wanted go on, to the front in order */",
                "        int slmc_m = 0;",
                "        for (int slmc_i = 0; slmc_i < n; slmc_i++) {",
                f"            if (!{self.param}[slmc_i]) continue;",
                "            if (slmc_m != slmc_i) { /* rows slmc_m < slmc_i: apart */",
                *(f"                {m}" for m in moves),
                "            }",
                "            slmc_m++;",
                "        }",
                "        n = slmc_m;",
                "    }",
                "    if (n == 0) return;"]


def batch_header(m: LlmInfo) -> list[str]:
    return llm_header(m) + [
        "",
        f"#define SLMC_BATCH {m.batch} /* KV-cache slots: sequences served at once */",
        f"#define SLMC_ROWS {m.rows or m.batch} /* rows one slmc_step runs at most (the step's row budget) */",
        "#define SLMC_ERR_SLOT (-5) /* a slot outside 0 .. SLMC_BATCH - 1 */",
        "/* Process n rows (1 <= n <= SLMC_ROWS): row i is tokens[i] at position pos[i] of the sequence whose",
        "   KV cache is slot slot[i]; writes n rows of SLMC_VOCAB_SIZE logits. Rows may belong to different",
        "   sequences, or several to one sequence's prompt (consecutive positions, in order); a row sees",
        "   positions 0 .. pos[i] of its slot, which this call or earlier ones wrote. Every row is checked",
        "   (NULL, n, then slot, pos, token of each row) before any state is touched. */",
        "int slmc_step(const int *tokens, const int *pos, const int *slot, int n, float *logits);",
        "/* As slmc_step, but only the rows i with want[i] != 0 get logits: the j-th of them (in row order) gets its",
        "   SLMC_VOCAB_SIZE logits at logits + j * SLMC_VOCAB_SIZE, bit-identical to what slmc_step writes for that",
        "   row; logits holds as many rows as are wanted (it may be NULL when none is). The other rows still advance",
        "   their sequences (their KV slots are written) but skip the final norm and the classifier. want NULL:",
        "   every row, as slmc_step. */",
        "int slmc_step_rows(const int *tokens, const int *pos, const int *slot, int n, const unsigned char *want,",
        "                   float *logits);",
    ]


def batch_api(graphs: list[Graph], plan: MemoryPlan, m: LlmInfo, table: LayerTable) -> list[str]:
    (g,) = graphs
    in_table = table.states()
    states = sorted({(v.name, v.nbytes) for v in g.states() if v.name not in in_table})
    out = [f"const SlmcConfig slmc_config = {{{m.dim}, {m.hidden_dim}, {m.n_layers}, {m.n_heads}, {m.n_kv_heads}, "
           f"{m.vocab_size}, {m.seq_len}, {m.prefill_chunk}}};", "", "void slmc_reset(void) {"]
    out += table.reset_lines()
    out += [f"    memset(slmc_arena + {plan.offset_of(n)}, 0, {b}); {comment(c_comment(n))}" for n, b in states]
    call = ["    slmc_graph_step(t, p, s, n, want, logits);"]
    if m.logits_frac >= 0:  # integer logits, written into the caller's buffer, turned into floats in place
        call = ["    slmc_graph_step(t, p, s, n, want, (int32_t *)(void *)logits);",
                "    for (size_t i = 0; i < (size_t)wanted * SLMC_VOCAB_SIZE; i++) {",
                "        int32_t v;", "        memcpy(&v, &logits[i], sizeof v);",
                f"        logits[i] = (float)v * 0x1p-{m.logits_frac}f;", "    }"]
    return out + [
        "}", "",
        "/* the rows as the step graph reads them (int32_t: `int` is not int32_t on every target), checked first */",
        "static int slmc_rows(int32_t *t, int32_t *p, int32_t *s, const int *tokens, const int *pos, const int *slot, int n) {",
        "    for (int i = 0; i < n; i++) {",
        "        if (slot[i] < 0 || slot[i] >= SLMC_BATCH) return SLMC_ERR_SLOT;",
        "        if (pos[i] < 0 || pos[i] >= SLMC_SEQ_LEN) return SLMC_ERR_POS;",
        "        if (tokens[i] < 0 || tokens[i] >= SLMC_VOCAB_SIZE) return SLMC_ERR_TOKEN;",
        "        t[i] = tokens[i]; p[i] = pos[i]; s[i] = slot[i];",
        "    }",
        "    return SLMC_OK;",
        "}", "",
        "int slmc_step_rows(const int *tokens, const int *pos, const int *slot, int n, const unsigned char *want,",
        "                   float *logits) {",
        "    if (!tokens || !pos || !slot) return SLMC_ERR_NULL;",
        "    if (n < 1 || n > SLMC_ROWS) return SLMC_ERR_COUNT;",
        "    int wanted = n;",
        "    if (want) {",
        "        wanted = 0;",
        "        for (int i = 0; i < n; i++) wanted += want[i] != 0;",
        "    }",
        "    if (wanted && !logits) return SLMC_ERR_NULL;",
        "    int32_t t[SLMC_ROWS], p[SLMC_ROWS], s[SLMC_ROWS];",
        "    int rc = slmc_rows(t, p, s, tokens, pos, slot, n);",
        "    if (rc != SLMC_OK) return rc;",
        *call,
        "    return SLMC_OK;",
        "}", "",
        "int slmc_step(const int *tokens, const int *pos, const int *slot, int n, float *logits) {",
        "    if (!logits) return SLMC_ERR_NULL;",
        "    return slmc_step_rows(tokens, pos, slot, n, NULL, logits);",
        "}", "",
        "int slmc_decode(int token, int pos, float *logits) {",
        "    int slot = 0;",
        "    return slmc_step(&token, &pos, &slot, 1, logits);",
        "}", "",
        "/* one sequence's prompt in slot 0, SLMC_ROWS positions per step */",
        "int slmc_prefill(const int32_t *tokens, int n, int pos, float *logits) {",
        "    if (!tokens || !logits) return SLMC_ERR_NULL;",
        "    if (n < 1) return SLMC_ERR_COUNT;",
        "    if (pos < 0 || pos >= SLMC_SEQ_LEN || n > SLMC_SEQ_LEN - pos) return SLMC_ERR_POS;",
        "    for (int i = 0; i < n; i++)",
        "        if (tokens[i] < 0 || tokens[i] >= SLMC_VOCAB_SIZE) return SLMC_ERR_TOKEN;",
        "    for (int i = 0; i < n; i += SLMC_ROWS) {",
        "        int c = n - i < SLMC_ROWS ? n - i : SLMC_ROWS, tk[SLMC_ROWS], ps[SLMC_ROWS], sl[SLMC_ROWS];",
        "        for (int j = 0; j < c; j++) { tk[j] = tokens[i + j]; ps[j] = pos + i + j; sl[j] = 0; }",
        "        (void)slmc_step(tk, ps, sl, c, logits + (size_t)i * SLMC_VOCAB_SIZE);",
        "    }",
        "    return SLMC_OK;",
        "}",
    ]
