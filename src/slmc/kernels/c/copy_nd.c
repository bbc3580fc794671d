#include "slmc_kernels.h"

#define SLMC_MAX_RANK 8
int slmc_nd_next(int32_t *idx, const int32_t *shape, int dims, ptrdiff_t *off, const int32_t *str, int ld, int nops);

/* The one data-movement kernel: copy a block of `shape` from x to out, each walked with its own
 * strides (str: out's then x's, rank each, in elements; 0 repeats, negative walks backwards).
 * Transpose, Expand, Slice, Concat, Split, Tile and Pad are all this copy with other strides.
 * Any element type: elem is its size in bytes. */
void slmc_copy_nd(void *out, const void *x, int elem, int rank, const int32_t *shape, const int32_t *str) {
    int32_t idx[SLMC_MAX_RANK] = {0};
    ptrdiff_t off[2] = {0, 0};
    int r = rank - 1, n = shape[r], so = str[r], sx = str[rank + r];
    do {
        int i;
        switch (elem) {
        case 1: { uint8_t *o = (uint8_t *)out + off[0]; const uint8_t *s = (const uint8_t *)x + off[1];
                  for (i = 0; i < n; i++) o[i * so] = s[i * sx]; } break;
        case 2: { uint16_t *o = (uint16_t *)out + off[0]; const uint16_t *s = (const uint16_t *)x + off[1];
                  for (i = 0; i < n; i++) o[i * so] = s[i * sx]; } break;
        case 4: { uint32_t *o = (uint32_t *)out + off[0]; const uint32_t *s = (const uint32_t *)x + off[1];
                  if (so == 1 && sx == 1) memcpy(o, s, (size_t)n * 4);
                  else for (i = 0; i < n; i++) o[i * so] = s[i * sx]; } break;
        default: { uint64_t *o = (uint64_t *)out + off[0]; const uint64_t *s = (const uint64_t *)x + off[1];
                  for (i = 0; i < n; i++) o[i * so] = s[i * sx]; } break;
        }
    } while (slmc_nd_next(idx, shape, r, off, str, rank, 2));
}

/* out[0..n) = *value (ConstantOfShape, the border of a constant Pad) */
void slmc_fill(void *out, const void *value, int elem, int n) {
    for (int i = 0; i < n; i++) memcpy((uint8_t *)out + (size_t)i * elem, value, (size_t)elem);
}
