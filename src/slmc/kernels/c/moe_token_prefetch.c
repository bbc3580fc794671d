#include "slmc_kernels.h"

void slmc_expert_prefetch(uint8_t *pool, int32_t *table, int slots, int slot_bytes, const int32_t *plan, int n_pred,
                          int m, int first, int n_experts, const uint8_t *const *src, const int32_t *bytes, int parts);

/* The layers before the expert predictor's input (passes/expert_predict.py): their experts predicted from the
 * token id alone, a table the trainer filled with each token's most frequent choices of those layers' routers.
 * plan (the output, [n_layers][m]) = plan_table[token]; with an expert cache (pool not NULL) those experts are
 * loaded into slots marked for their layers (expert_cache.c) as the step starts, ahead of layer 0's use. A
 * token outside the table plans nothing (a plan of zeros, no load). One row: a decode step. */
void slmc_moe_token_prefetch(int32_t *plan, const int32_t *tokens, const int32_t *plan_table, int vocab,
                             int n_layers, int m, int n_experts, uint8_t *pool, int32_t *table, int slots,
                             int slot_bytes, const uint8_t *const *src, const int32_t *bytes, int parts) {
    int32_t t = tokens[0];
    if (t < 0 || t >= vocab) {
        for (int i = 0; i < n_layers * m; i++) plan[i] = 0;
        return;
    }
    const int32_t *row = plan_table + (size_t)t * n_layers * m;
    if (pool) slmc_expert_prefetch(pool, table, slots, slot_bytes, row, n_layers, m, 0, n_experts, src, bytes, parts);
    /* the copy after the call: no tail call, so instruction counts attribute the loads to this kernel */
    for (int i = 0; i < n_layers * m; i++) plan[i] = row[i];
}
