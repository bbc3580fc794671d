#include "slmc_kernels.h"
#include "slmc_parallel.h"

/* The language-model kernels split over the cluster (slmc_parallel.h), most a thin wrapper that
 * calls the serial kernel of the build on a slice: matrix products by blocks of output rows, RoPE
 * by heads, SwiGLU by blocks of elements, the q8 quantizer by groups; RMSNorm (its scaling by blocks
 * of elements) repeats its kernel's arithmetic here; attention has files of its own
 * (parallel_attention_f32.c, parallel_attention_f16kv.c) that call its kernel's per-head body. A slice
 * computes exactly what the whole call computes for those outputs (every output is one dot
 * product or one element, done by one core), so the results are bit-identical to the serial build
 * on any number of cores. The first arguments are the serial kernel, the bytes of scratch each
 * core gets (the scratch holds one part per core) and the call's site. */

/* Output rows per work item: 8, the RV32 kernel's pass, even where that leaves cores idle: measured
 * on stories260K's 64x32 products, a 4-row slice (the kernel's remainder path) costs 3,250
 * instructions and an 8-row slice 2,929, so 8 cores on 4-row slices are slower than 4 on 8 rows. */
#define SLMC_PAR_ROWS 8
#define SLMC_PAR_ELEMS 8    /* elements per work item of the element-wise parts (stories260K: 64-wide rows on 8 cores) */

typedef struct {
    slmc_linear_q8s_fn fs;
    slmc_linear_q8_fn f;
    float *out;
    const int8_t *xq, *wq;
    const float *xs, *ws, *b;
    uint8_t *scratch;
    int stride, n, k, m, group, rows;
} par_q8;

static void par_q8_task(void *p, int i0, int i1, int core) {
    const par_q8 *j = (const par_q8 *)p;
    int r0 = i0 * j->rows, r1 = i1 * j->rows < j->m ? i1 * j->rows : j->m, ng = j->k / j->group;
    int16_t *xw = (int16_t *)(void *)(j->scratch + (size_t)core * j->stride);
    const int8_t *w = j->wq + (size_t)r0 * j->k;
    const float *ws = j->ws + (size_t)r0 * ng, *b = j->b ? j->b + r0 : NULL;
    for (int s = 0; s < j->n; s++) {  /* out rows are m apart: one token per call keeps the slice contiguous */
        float *o = j->out + (size_t)s * j->m + r0;
        const int8_t *xq = j->xq + (size_t)s * j->k;
        const float *xs = j->xs + (size_t)s * ng;
        if (j->fs) j->fs(o, xq, xs, w, ws, b, xw, 1, j->k, r1 - r0, j->group);
        else j->f(o, xq, xs, w, ws, b, 1, j->k, r1 - r0, j->group);
    }
}

void slmc_par_linear_q8s(slmc_linear_q8s_fn fn, int stride, int site, float *out, const int8_t *xq, const float *xs,
                         const int8_t *wq, const float *ws, const float *b, void *scratch, int n, int k, int m, int group) {
    par_q8 j = {fn, NULL, out, xq, wq, xs, ws, b, (uint8_t *)scratch, stride, n, k, m, group, SLMC_PAR_ROWS};
    slmc_parallel_for(par_q8_task, &j, (m + j.rows - 1) / j.rows, site);
}

void slmc_par_linear_q8(slmc_linear_q8_fn fn, int stride, int site, float *out, const int8_t *xq, const float *xs,
                        const int8_t *wq, const float *ws, const float *b, int n, int k, int m, int group) {
    par_q8 j = {NULL, fn, out, xq, wq, xs, ws, b, NULL, stride, n, k, m, group, SLMC_PAR_ROWS};
    slmc_parallel_for(par_q8_task, &j, (m + j.rows - 1) / j.rows, site);
}

typedef struct {
    slmc_linear_f32_fn f;
    float *out;
    const float *x, *w, *b;
    int n, k, m, rows;
} par_f32;

static void par_f32_task(void *p, int i0, int i1, int core) {
    const par_f32 *j = (const par_f32 *)p;
    int r0 = i0 * j->rows, r1 = i1 * j->rows < j->m ? i1 * j->rows : j->m;
    (void)core;
    for (int s = 0; s < j->n; s++)
        j->f(j->out + (size_t)s * j->m + r0, j->x + (size_t)s * j->k, j->w + (size_t)r0 * j->k, j->b ? j->b + r0 : NULL,
             1, j->k, r1 - r0);
}

void slmc_par_linear_f32(slmc_linear_f32_fn fn, int stride, int site, float *out, const float *x, const float *w,
                         const float *b, int n, int k, int m) {
    par_f32 j = {fn, out, x, w, b, n, k, m, SLMC_PAR_ROWS};
    (void)stride;
    slmc_parallel_for(par_f32_task, &j, (m + j.rows - 1) / j.rows, site);
}

/* RMSNorm: the sum of squares of a row is one reduction, kept on core 0 in rmsnorm_f32.c's order;
 * the scaling that follows is split by blocks of elements over all rows. The same float operations
 * as rmsnorm_f32.c, so the same bits (a decode step has one row, so this is what splits at all). */
#define SLMC_PAR_NORM_ROWS 64

typedef struct {
    float *out;
    const float *x, *w;
    const float *inv;
    int dim, count;
} par_norm;

static void par_norm_task(void *p, int i0, int i1, int core) {
    const par_norm *j = (const par_norm *)p;
    int e0 = i0 * SLMC_PAR_ELEMS, e1 = i1 * SLMC_PAR_ELEMS < j->count ? i1 * SLMC_PAR_ELEMS : j->count;
    (void)core;
    for (int e = e0; e < e1; e++) j->out[e] = j->w[e % j->dim] * (j->inv[e / j->dim] * j->x[e]);
}

void slmc_par_rmsnorm_f32(slmc_rmsnorm_f32_fn fn, int stride, int site, float *out, const float *x, const float *w,
                          int n, int dim, float eps) {
    float inv[SLMC_PAR_NORM_ROWS];
    (void)stride;
    if (n > SLMC_PAR_NORM_ROWS) {  /* longer prompt steps: whole rows per core */
        for (int r0 = 0; r0 < n; r0 += SLMC_PAR_NORM_ROWS) {
            int rn = n - r0 < SLMC_PAR_NORM_ROWS ? n - r0 : SLMC_PAR_NORM_ROWS;
            slmc_par_rmsnorm_f32(fn, stride, site, out + (size_t)r0 * dim, x + (size_t)r0 * dim, w, rn, dim, eps);
        }
        return;
    }
    for (int r = 0; r < n; r++) {
        const float *xr = x + (size_t)r * dim;
        float ss = 0.0f;
        for (int j = 0; j < dim; j++) ss += xr[j] * xr[j];
        ss /= (float)dim;
        ss += eps;
        inv[r] = 1.0f / sqrtf(ss);
    }
    par_norm j = {out, x, w, inv, dim, n * dim};
    slmc_parallel_for(par_norm_task, &j, (n * dim + SLMC_PAR_ELEMS - 1) / SLMC_PAR_ELEMS, site);
}

/* Element-wise and per-group kernels, split by blocks of elements or of q8 groups: each output is
 * computed by the same code from the same inputs, on whichever core. */

typedef struct {
    slmc_swiglu_f32_fn f;
    float *out;
    const float *g, *u;
    int count;
} par_swiglu;

static void par_swiglu_task(void *p, int i0, int i1, int core) {
    const par_swiglu *j = (const par_swiglu *)p;
    int e0 = i0 * SLMC_PAR_ELEMS, e1 = i1 * SLMC_PAR_ELEMS < j->count ? i1 * SLMC_PAR_ELEMS : j->count;
    (void)core;
    j->f(j->out + e0, j->g + e0, j->u + e0, e1 - e0);
}

void slmc_par_swiglu_f32(slmc_swiglu_f32_fn fn, int stride, int site, float *out, const float *g, const float *u,
                         int count) {
    par_swiglu j = {fn, out, g, u, count};
    (void)stride;
    slmc_parallel_for(par_swiglu_task, &j, (count + SLMC_PAR_ELEMS - 1) / SLMC_PAR_ELEMS, site);
}

typedef struct {
    slmc_quantize_q8_fn f;
    int8_t *q;
    float *s;
    const float *x;
    int group;
} par_quant;

static void par_quant_task(void *p, int r0, int r1, int core) {  /* r: a q8 group, rows one after another */
    const par_quant *j = (const par_quant *)p;
    (void)core;
    j->f(j->q + (size_t)r0 * j->group, j->s + r0, j->x + (size_t)r0 * j->group, 1, (r1 - r0) * j->group, j->group);
}

void slmc_par_quantize_q8(slmc_quantize_q8_fn fn, int stride, int site, int8_t *q, float *s, const float *x, int n,
                          int k, int group) {
    par_quant j = {fn, q, s, x, group};
    (void)stride;
    slmc_parallel_for(par_quant_task, &j, n * (k / group), site);
}

typedef struct {
    slmc_rope_f32_fn f;
    float *out;
    const float *x, *c, *s;
    int features, hd, rot, pos, interleaved;
} par_rope;

static void par_rope_task(void *p, int i0, int i1, int core) {  /* item: (token, head), tokens one after another */
    const par_rope *j = (const par_rope *)p;
    int heads = j->features / j->hd;
    (void)core;
    for (int i = i0; i < i1; i++) {
        size_t off = (size_t)(i / heads) * j->features + (size_t)(i % heads) * j->hd;
        j->f(j->out + off, j->x + off, j->c, j->s, 1, j->hd, j->hd, j->rot, j->pos + i / heads, j->interleaved);
    }
}

void slmc_par_rope_f32(slmc_rope_f32_fn fn, int stride, int site, float *out, const float *x, const float *cos_t,
                       const float *sin_t, int n, int features, int hd, int rot, int pos, int interleaved) {
    par_rope j = {fn, out, x, cos_t, sin_t, features, hd, rot, pos, interleaved};
    (void)stride;
    slmc_parallel_for(par_rope_task, &j, n * (features / hd), site);
}
