/* The fork/join API of a multi-core build (slmc compile --cores N): one call splits n_items work
 * items over the cluster's SLMC_CORES cores in contiguous, equal-sized ranges (core c gets items
 * [n*c/C, n*(c+1)/C)), runs them, and returns when all are done. Kernels split only across
 * independent outputs (rows of a matrix product, heads of attention, rows of a norm), never inside
 * a dot product, so a build on any number of cores computes the same bits as the serial one.
 * `site` numbers the call in model.c: the per-core instruction counts are kept per site. */
#ifndef SLMC_PARALLEL_H
#define SLMC_PARALLEL_H
#include <stdint.h>

#ifndef SLMC_CORES
#define SLMC_CORES 1
#endif
#ifndef SLMC_PAR_SITES
#define SLMC_PAR_SITES 1
#endif

typedef void (*slmc_task_fn)(void *ctx, int item0, int item1, int core);

void slmc_parallel_for(slmc_task_fn fn, void *ctx, int n_items, int site);

/* The serial kernels the parallel wrappers of parallel_llm.c call on a slice of their outputs. */
typedef void (*slmc_linear_q8s_fn)(float *, const int8_t *, const float *, const int8_t *, const float *,
                                   const float *, int16_t *, int, int, int, int);
typedef void (*slmc_linear_q8w_fn)(float *, const int8_t *, const float *, const int8_t *, const float *,
                                   const float *, uint32_t *, int, int, int, int);  /* linear_q8_dsp.c */
typedef void (*slmc_linear_i8_fn)(void *, const int16_t *, const int8_t *, const int32_t *, int, int, int, int, int,
                                  int);  /* linear_i8.c, linear_i8_rv32.c */
typedef void (*slmc_linear_q8_fn)(float *, const int8_t *, const float *, const int8_t *, const float *,
                                  const float *, int, int, int, int);
typedef void (*slmc_linear_f32_fn)(float *, const float *, const float *, const float *, int, int, int);
typedef void (*slmc_rmsnorm_f32_fn)(float *, const float *, const float *, int, int, float);
typedef void (*slmc_swiglu_f32_fn)(float *, const float *, const float *, int);
typedef void (*slmc_quantize_q8_fn)(int8_t *, float *, const float *, int, int, int);
typedef void (*slmc_rope_f32_fn)(float *, const float *, const float *, const float *, int, int, int, int, int, int);
#endif
