#include "slmc_kernels.h"
#include "slmc_parallel.h"

/* The matrix products of the RP2350's builds split over its two cores (slmc_parallel.h), as
 * parallel_llm.c splits the portable ones: blocks of SLMC_PAR_MCU_ROWS output rows per work item,
 * each core calling the build's serial kernel on its rows. Both weight orders slice at a multiple
 * of 4 rows: row-major, and "rows4" (blocks of 4 rows word-interleaved, their scales or multipliers
 * [group][row] per block, the rows after the last full block row-major), so rows r0.. start at
 * r0 * k weights and r0 * k / group scales in either. Every output is one row's dot product, done by
 * one core: the same bits as the serial build.
 * - q8 on the M33 (linear_q8_dsp.c): each core widens the activations into its own part of the
 *   scratch (2 * k bytes a token) and walks its rows;
 * - int8 (linear_i8.c, linear_i8_rv32.c): no scratch; int16 or int32 outputs (out_bits). */
#define SLMC_PAR_MCU_ROWS 8  /* linear_i8_rv32.c's pass; two of linear_q8_dsp.c's blocks */

typedef struct {
    slmc_linear_q8w_fn f;
    float *out;
    const int8_t *xq, *wq;
    const float *xs, *ws, *b;
    uint8_t *scratch;
    int stride, n, k, m, group;
} par_q8w;

static void par_q8w_task(void *p, int i0, int i1, int core) {
    const par_q8w *j = (const par_q8w *)p;
    int r0 = i0 * SLMC_PAR_MCU_ROWS, r1 = i1 * SLMC_PAR_MCU_ROWS < j->m ? i1 * SLMC_PAR_MCU_ROWS : j->m, ng = j->k / j->group;
    uint32_t *xw = (uint32_t *)(void *)(j->scratch + (size_t)core * j->stride);
    const int8_t *w = j->wq + (size_t)r0 * j->k;
    const float *ws = j->ws + (size_t)r0 * ng, *b = j->b ? j->b + r0 : NULL;
    for (int s = 0; s < j->n; s++)  /* out rows are m apart: one token per call keeps the slice contiguous */
        j->f(j->out + (size_t)s * j->m + r0, j->xq + (size_t)s * j->k, j->xs + (size_t)s * ng, w, ws, b, xw, 1, j->k,
             r1 - r0, j->group);
}

void slmc_par_linear_q8w(slmc_linear_q8w_fn fn, int stride, int site, float *out, const int8_t *xq, const float *xs,
                         const int8_t *wq, const float *ws, const float *b, void *scratch, int n, int k, int m, int group) {
    par_q8w j = {fn, out, xq, wq, xs, ws, b, (uint8_t *)scratch, stride, n, k, m, group};
    slmc_parallel_for(par_q8w_task, &j, (m + SLMC_PAR_MCU_ROWS - 1) / SLMC_PAR_MCU_ROWS, site);
}

typedef struct {
    slmc_linear_i8_fn f;
    void *out;
    const int16_t *x;
    const int8_t *q;
    const int32_t *mul;
    int n, rows, cols, group, shift, out_bits;
} par_i8;

static void par_i8_task(void *p, int i0, int i1, int core) {
    const par_i8 *j = (const par_i8 *)p;
    int r0 = i0 * SLMC_PAR_MCU_ROWS, r1 = i1 * SLMC_PAR_MCU_ROWS < j->rows ? i1 * SLMC_PAR_MCU_ROWS : j->rows;
    int ng = j->cols / j->group, size = j->out_bits == 16 ? 2 : 4;
    (void)core;
    for (int s = 0; s < j->n; s++)
        j->f((uint8_t *)j->out + ((size_t)s * j->rows + r0) * size, j->x + (size_t)s * j->cols, j->q + (size_t)r0 * j->cols,
             j->mul + (size_t)r0 * ng, 1, r1 - r0, j->cols, j->group, j->shift, j->out_bits);
}

void slmc_par_linear_i8(slmc_linear_i8_fn fn, int stride, int site, void *out, const int16_t *x, const int8_t *q,
                        const int32_t *m, int n, int rows, int cols, int group, int shift, int out_bits) {
    par_i8 j = {fn, out, x, q, m, n, rows, cols, group, shift, out_bits};
    (void)stride;
    slmc_parallel_for(par_i8_task, &j, (rows + SLMC_PAR_MCU_ROWS - 1) / SLMC_PAR_MCU_ROWS, site);
}
