#include "slmc_kernels.h"
#include <arm_acle.h>

/* matmul_integer.c for Cortex-M33 (Armv8-M DSP extension), int8 B (the registry sends uint8 B to the portable
 * kernel): every output is the same exact int32 sum of (a - a_zp) * (b - b_zp[j]), two products per SMLAD. A row
 * of A minus its zero point is widened once into scratch as int16 pairs (a_p, a_p+1); B stays as stored ([k, n],
 * rows of n bytes): a word of row p and one of row p+1 at column j make, by PKHBT/PKHTB and SXTB16 (ROR #8), the
 * pairs (b_p,j+c, b_p+1,j+c) of four columns, so 2 rows x 4 columns cost 2 loads, 2 packs, 4 extends and 4 SMLADs.
 * B's zero points come off at the end: sum (a - za) b - zb sum (a - za). Scratch: 2 * ((k + 1) / 2) * 2 bytes. */

static inline uint32_t ld32(const void *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

void slmc_matmul_integer_dsp(int32_t *y, const void *a, int at, const void *w, int wt, const void *az, const void *wz,
                             int nwz, size_t batch, size_t m, size_t k, size_t n, int w_batched, void *scratch) {
    int32_t za = az ? (int32_t)slmc_ldt(az, at, 0) : 0;
    size_t k2 = (k + 1) / 2;
    uint32_t *ap = (uint32_t *)scratch;
    (void)wt;
    for (size_t bi = 0; bi < batch; bi++) {
        const int8_t *wb = (const int8_t *)w + (w_batched ? bi * k * n : 0);
        for (size_t i = 0; i < m; i++) {
            size_t a0 = (bi * m + i) * k;
            int32_t s = 0;
            for (size_t p = 0; p < 2 * k2; p += 2) {
                int32_t v0 = (int32_t)slmc_ldt(a, at, a0 + p) - za, v1 = p + 1 < k ? (int32_t)slmc_ldt(a, at, a0 + p + 1) - za : 0;
                s += v0 + v1;
                ap[p / 2] = (uint16_t)v0 | (uint32_t)(uint16_t)v1 << 16;
            }
            int32_t *yr = y + (bi * m + i) * n;
            size_t j = 0;
            for (; j + 4 <= n; j += 4) {
                uint32_t c0 = 0, c1 = 0, c2 = 0, c3 = 0;
                const int8_t *b = wb + j;
                size_t p = 0;
                for (; p + 2 <= k; p += 2, b += 2 * n) {
                    uint32_t r0 = ld32(b), r1 = ld32(b + n), x = ap[p / 2];
                    uint32_t lo = (r0 & 0xffffu) | (r1 << 16), hi = (r0 >> 16) | (r1 & 0xffff0000u);
                    c0 = __smlad(x, __sxtb16(lo), c0);
                    c1 = __smlad(x, __sxtb16((lo >> 8) | (lo << 24)), c1);
                    c2 = __smlad(x, __sxtb16(hi), c2);
                    c3 = __smlad(x, __sxtb16((hi >> 8) | (hi << 24)), c3);
                }
                if (p < k) { /* an odd k: the last row pairs with zero */
                    int32_t x = (int16_t)(ap[p / 2] & 0xffffu);
                    c0 += (uint32_t)(x * b[0]);
                    c1 += (uint32_t)(x * b[1]);
                    c2 += (uint32_t)(x * b[2]);
                    c3 += (uint32_t)(x * b[3]);
                }
                uint32_t acc[4] = {c0, c1, c2, c3};
                for (size_t t = 0; t < 4; t++) {
                    int32_t zw = wz ? ((const int8_t *)wz)[nwz > 1 ? j + t : 0] : 0;
                    yr[j + t] = (int32_t)(acc[t] - (uint32_t)(zw * s));
                }
            }
            for (; j < n; j++) { /* the columns after the last four */
                int32_t zw = wz ? ((const int8_t *)wz)[nwz > 1 ? j : 0] : 0;
                uint32_t acc = 0;
                for (size_t p = 0; p < k; p++) {
                    int32_t x = (int16_t)(p % 2 ? ap[p / 2] >> 16 : ap[p / 2] & 0xffffu);
                    acc += (uint32_t)(x * wb[p * n + j]);
                }
                yr[j] = (int32_t)(acc - (uint32_t)(zw * s));
            }
        }
    }
}
