#include "slmc_kernels.h"
#include <arm_acle.h>

/* linear_i8.c for Cortex-M33 (Armv8-M DSP extension), bit-identical to it: the same exact int32 sum
 * per group (integer adds in any order give the same sum), the same int64 multiply-accumulate and
 * rounding shift. Weights and multipliers come in the "rows4" blob order (quant/int8.py pack_rows4):
 * rows in blocks of four, [block][k/4][row][4 bytes]. The int16 activations of a row are regrouped
 * once into scratch (2 * cols bytes) as halfword pairs (x0,x2) and (x1,x3) per 4 columns: what SXTB16
 * and SXTB16 ROR #8 make of a weight word, so two SMLADs add a word's 4 products. */
static inline uint32_t ld32(const int8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4); /* one LDR: Armv8-M mainline allows unaligned word loads */
    return v;
}

static inline int32_t mac4(int32_t acc, uint32_t e, uint32_t o, uint32_t w) {
    acc = __smlad(e, __sxtb16(w), acc);
    return __smlad(o, __sxtb16((w >> 8) | (w << 24)), acc);
}

void slmc_linear_i8_dsp(void *out, const int16_t *x, const int8_t *q, const int32_t *m, void *scratch, int n,
                        int rows, int cols, int group, int shift, int out_bits) {
    uint32_t *xw = (uint32_t *)scratch;
    int ng = cols / group, nb = rows / 4;
    for (int i = 0; i < n; i++) {
        const int16_t *xi = x + (size_t)i * cols;
        for (int k = 0; k < cols; k += 4) {
            xw[k / 2] = (uint16_t)xi[k] | (uint32_t)(uint16_t)xi[k + 2] << 16;
            xw[k / 2 + 1] = (uint16_t)xi[k + 1] | (uint32_t)(uint16_t)xi[k + 3] << 16;
        }
        const int8_t *pw = q;
        const int32_t *pm = m;
        for (int blk = 0; blk < nb; blk++) {
            int64_t c0 = 0, c1 = 0, c2 = 0, c3 = 0;
            const uint32_t *xp = xw;
            for (int g = 0; g < ng; g++) {
                int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
                for (int k = 0; k < group; k += 4, pw += 16, xp += 2) {
                    uint32_t e = xp[0], o = xp[1];
                    a0 = mac4(a0, e, o, ld32(pw));
                    a1 = mac4(a1, e, o, ld32(pw + 4));
                    a2 = mac4(a2, e, o, ld32(pw + 8));
                    a3 = mac4(a3, e, o, ld32(pw + 12));
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
