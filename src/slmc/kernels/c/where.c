#include "slmc_kernels.h"

#define SLMC_MAX_RANK 8
int slmc_nd_next(int32_t *idx, const int32_t *shape, int dims, ptrdiff_t *off, const int32_t *str, int ld, int nops);

/* out = c ? x : y with broadcasting, any element type (elem bytes). str: out's, c's, x's and y's
 * strides, rank each. */
void slmc_where(void *out, const uint8_t *c, const void *x, const void *y, int elem, int rank, const int32_t *shape,
                const int32_t *str) {
    int32_t idx[SLMC_MAX_RANK] = {0};
    ptrdiff_t off[4] = {0, 0, 0, 0};
    int r = rank - 1, n = shape[r], sc = str[rank + r], sx = str[2 * rank + r], sy = str[3 * rank + r];
    do {
        const uint8_t *cc = c + off[1];
        int i;
        if (elem == 4) {
            uint32_t *o = (uint32_t *)out + off[0];
            const uint32_t *a = (const uint32_t *)x + off[2], *b = (const uint32_t *)y + off[3];
            for (i = 0; i < n; i++) o[i] = cc[i * sc] ? a[i * sx] : b[i * sy];
        } else {
            uint8_t *o = (uint8_t *)out + off[0] * elem;
            const uint8_t *a = (const uint8_t *)x + off[2] * elem, *b = (const uint8_t *)y + off[3] * elem;
            for (i = 0; i < n; i++)
                memcpy(o + (size_t)i * elem, cc[i * sc] ? a + (ptrdiff_t)i * sx * elem : b + (ptrdiff_t)i * sy * elem,
                       (size_t)elem);
        }
    } while (slmc_nd_next(idx, shape, r, off, str, rank, 4));
}
