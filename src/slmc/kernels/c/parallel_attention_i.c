#include "slmc_kernels.h"
#include "slmc_parallel.h"

/* attention_i.c (-q int8's integer attention) split over the cluster by query heads: each core runs the serial
 * kernel's body on its heads with its own part of the scratch: the same integer operations, so the same bits. */
void slmc_attention_i_heads(int16_t *out, const int16_t *q, const int16_t *kc, const int16_t *vc, void *scratch,
                            const int32_t *lut, int n, int n_heads, int n_kv_heads, int head_dim, int pos, int seq_len,
                            int64_t c, int t_shift, int64_t t_cap, int q_shift, int q_max, int f_out, int f_v,
                            int window, const int32_t *tanh_lut, int64_t cap_m, int cap_shift, int64_t capq,
                            int step_log2, int range, int h0, int h1);

typedef struct {
    int16_t *out;
    const int16_t *q, *kc, *vc;
    uint8_t *scratch;
    const int32_t *lut, *tanh_lut;
    int64_t c, t_cap, cap_m, capq;
    int stride, n, n_heads, n_kv_heads, head_dim, pos, seq_len, t_shift, q_shift, q_max, f_out, f_v, window;
    int cap_shift, step_log2, range;
} par_att_i;

static void par_att_i_task(void *p, int h0, int h1, int core) {
    const par_att_i *j = (const par_att_i *)p;
    slmc_attention_i_heads(j->out, j->q, j->kc, j->vc, j->scratch + (size_t)core * j->stride, j->lut, j->n, j->n_heads,
                           j->n_kv_heads, j->head_dim, j->pos, j->seq_len, j->c, j->t_shift, j->t_cap, j->q_shift,
                           j->q_max, j->f_out, j->f_v, j->window, j->tanh_lut, j->cap_m, j->cap_shift, j->capq,
                           j->step_log2, j->range, h0, h1);
}

void slmc_par_attention_i(int stride, int site, int16_t *out, const int16_t *q, const int16_t *kc, const int16_t *vc,
                          void *scratch, const int32_t *lut, int n, int n_heads, int n_kv_heads, int head_dim, int pos,
                          int seq_len, int64_t c, int t_shift, int64_t t_cap, int q_shift, int q_max, int f_out,
                          int f_v, int window, const int32_t *tanh_lut, int64_t cap_m, int cap_shift, int64_t capq,
                          int step_log2, int range) {
    par_att_i j = {out, q, kc, vc, (uint8_t *)scratch, lut, tanh_lut, c, t_cap, cap_m, capq, stride, n, n_heads,
                   n_kv_heads, head_dim, pos, seq_len, t_shift, q_shift, q_max, f_out, f_v, window, cap_shift,
                   step_log2, range};
    slmc_parallel_for(par_att_i_task, &j, n_heads, site);
}
