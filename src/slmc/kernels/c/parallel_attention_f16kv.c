#include "slmc_kernels.h"
#include "slmc_parallel.h"

/* attention_f16kv.c split over the cluster by KV heads: each core runs the serial kernel's body on its
 * KV heads (converting each cached row once for the query heads that share it), with its own part of
 * the scratch: the same float operations in the same order, so the same bits. */
void slmc_attention_f16kv_heads(float *out, const float *q, const uint16_t *kc, const uint16_t *vc, float *att,
                                int n, int n_heads, int n_kv_heads, int hd, int pos, int window, float softcap,
                                int kh0, int kh1);

typedef struct {
    float *out;
    const float *q;
    const uint16_t *kc, *vc;
    uint8_t *att;
    int stride, n, n_heads, n_kv_heads, hd, pos, window;
    float softcap;
} par_att16;

static void par_att16_task(void *p, int kh0, int kh1, int core) {
    const par_att16 *j = (const par_att16 *)p;
    slmc_attention_f16kv_heads(j->out, j->q, j->kc, j->vc, (float *)(void *)(j->att + (size_t)core * j->stride), j->n,
                               j->n_heads, j->n_kv_heads, j->hd, j->pos, j->window, j->softcap, kh0, kh1);
}

void slmc_par_attention_f16kv(int stride, int site, float *out, const float *q, const uint16_t *kc, const uint16_t *vc,
                              void *att, int n, int n_heads, int n_kv_heads, int hd, int pos, int window, float softcap) {
    par_att16 j = {out, q, kc, vc, (uint8_t *)att, stride, n, n_heads, n_kv_heads, hd, pos, window, softcap};
    slmc_parallel_for(par_att16_task, &j, n_kv_heads, site);
}
