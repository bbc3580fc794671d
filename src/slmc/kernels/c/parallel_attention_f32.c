#include "slmc_kernels.h"
#include "slmc_parallel.h"

/* attention_f32.c split over the cluster by heads: each core runs the serial kernel's body on its
 * heads, with its own score row in its part of the scratch: the same float operations in the same
 * order, so the same bits. */
void slmc_attention_f32_heads(float *out, const float *q, const float *kc, const float *vc, float *att,
                              int n, int n_heads, int n_kv_heads, int hd, int pos, int window, float softcap,
                                int h0, int h1);

typedef struct {
    float *out;
    const float *q, *kc, *vc;
    uint8_t *att;
    int stride, n, n_heads, n_kv_heads, hd, pos, window;
    float softcap;
} par_att;

static void par_att_task(void *p, int h0, int h1, int core) {
    const par_att *j = (const par_att *)p;
    slmc_attention_f32_heads(j->out, j->q, j->kc, j->vc, (float *)(void *)(j->att + (size_t)core * j->stride), j->n,
                             j->n_heads, j->n_kv_heads, j->hd, j->pos, j->window, j->softcap, h0, h1);
}

void slmc_par_attention_f32(int stride, int site, float *out, const float *q, const float *kc, const float *vc,
                            void *att, int n, int n_heads, int n_kv_heads, int hd, int pos, int window, float softcap) {
    par_att j = {out, q, kc, vc, (uint8_t *)att, stride, n, n_heads, n_kv_heads, hd, pos, window, softcap};
    slmc_parallel_for(par_att_task, &j, n_heads, site);
}
