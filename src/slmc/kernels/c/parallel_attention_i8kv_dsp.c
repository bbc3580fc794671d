#include "slmc_kernels.h"
#include "slmc_parallel.h"

/* attention_i8kv_dsp.c (the int8 KV cache on the Cortex-M33) split over the cluster by KV heads: each core runs the
 * serial kernel's body on its KV heads and their query heads (for stories260K the paired-head asm path of
 * attention_i8kv_dsp_pair.c, one pair per KV head), with its own part of the scratch: the same operations in the
 * same order, so the same bits. */
void slmc_attention_i8kv_dsp_heads(float *out, const float *q, const int8_t *kc, const int8_t *vc, float *scratch, int n,
                                   int n_heads, int n_kv_heads, int hd, int pos, int window, float softcap, int kh0,
                                   int kh1);

typedef struct {
    float *out;
    const float *q;
    const int8_t *kc, *vc;
    uint8_t *scratch;
    int stride, n, n_heads, n_kv_heads, hd, pos, window;
    float softcap;
} par_att_i8kv;

static void par_att_i8kv_task(void *p, int kh0, int kh1, int core) {
    const par_att_i8kv *j = (const par_att_i8kv *)p;
    slmc_attention_i8kv_dsp_heads(j->out, j->q, j->kc, j->vc, (float *)(void *)(j->scratch + (size_t)core * j->stride),
                                  j->n, j->n_heads, j->n_kv_heads, j->hd, j->pos, j->window, j->softcap, kh0, kh1);
}

void slmc_par_attention_i8kv_dsp(int stride, int site, float *out, const float *q, const int8_t *kc, const int8_t *vc,
                                 void *scratch, int n, int n_heads, int n_kv_heads, int hd, int pos, int window,
                                 float softcap) {
    par_att_i8kv j = {out, q, kc, vc, (uint8_t *)scratch, stride, n, n_heads, n_kv_heads, hd, pos, window, softcap};
    slmc_parallel_for(par_att_i8kv_task, &j, n_kv_heads, site);
}
