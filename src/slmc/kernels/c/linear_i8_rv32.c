#include "slmc_kernels.h"

/* linear_i8.c for plain RV32IM, bit-identical to it (the same int32 sum per group, the same int64
 * multiply-accumulate and rounding shift). Weights and multipliers come in the "rows4" blob order
 * (quant/int8.py pack_rows4, chosen at compile time for this kernel): rows in blocks of four,
 * [block][k/4][row][4 bytes], so the four rows' next weights sit at fixed offsets from one pointer
 * and each int16 activation is loaded once for four rows: 4 lh, 16 lb, 16 mul, 16 add per 16 MACs.
 * Rows after the last full block follow row-major. Groups are multiples of 4 (the graph builder gives
 * other groups the row-major order and the portable kernel). */
void slmc_linear_i8_rv32(void *out, const int16_t *x, const int8_t *q, const int32_t *m, int n, int rows, int cols,
                         int group, int shift, int out_bits) {
    int ng = cols / group, nb = rows / 4;
    for (int i = 0; i < n; i++) {
        const int16_t *xi = x + (size_t)i * cols;
        const int8_t *pw = q;
        const int32_t *pm = m;
        for (int blk = 0; blk < nb; blk++) {
            int64_t c0 = 0, c1 = 0, c2 = 0, c3 = 0;
            const int16_t *xp = xi;
            for (int g = 0; g < ng; g++) {
                int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
                for (int k = 0; k < group; k += 4, pw += 16, xp += 4) {
                    int32_t x0 = xp[0], x1 = xp[1], x2 = xp[2], x3 = xp[3];
                    a0 += x0 * pw[0] + x1 * pw[1] + x2 * pw[2] + x3 * pw[3];
                    a1 += x0 * pw[4] + x1 * pw[5] + x2 * pw[6] + x3 * pw[7];
                    a2 += x0 * pw[8] + x1 * pw[9] + x2 * pw[10] + x3 * pw[11];
                    a3 += x0 * pw[12] + x1 * pw[13] + x2 * pw[14] + x3 * pw[15];
                }
                c0 += (int64_t)a0 * pm[0];
                c1 += (int64_t)a1 * pm[1];
                c2 += (int64_t)a2 * pm[2];
                c3 += (int64_t)a3 * pm[3];
                pm += 4;
            }
            size_t at = (size_t)i * rows + (size_t)blk * 4;
            slmc_i8_store(out, at, c0, shift, out_bits);
            slmc_i8_store(out, at + 1, c1, shift, out_bits);
            slmc_i8_store(out, at + 2, c2, shift, out_bits);
            slmc_i8_store(out, at + 3, c3, shift, out_bits);
        }
        for (int r = nb * 4; r < rows; r++, pw += cols, pm += ng)
            slmc_i8_store(out, (size_t)i * rows + r, slmc_i8_row(xi, pw, pm, cols, group), shift, out_bits);
    }
}
