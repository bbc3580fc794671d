#include "slmc_kernels.h"

/* -q int8 RoPE on int16 q or k: cos/sin tables [seq_len][rot_dim/2] with `frac` fractional bits; the first
 * rot_dim features of each head turn (partial rotary), the rest pass through; pairs (2j, 2j+1) when
 * interleaved (llama2.c), else (j, j + rot_dim/2) (HF rotate_half). */
void slmc_rope_i(int16_t *out, const int16_t *x, const int16_t *cos_t, const int16_t *sin_t, int n, int cols,
                 int head_dim, int rot_dim, int pos, int interleaved, int frac) {
    int half = rot_dim / 2;
    for (int i = 0; i < n; i++) {
        const int16_t *c = cos_t + (size_t)(pos + i) * half, *s = sin_t + (size_t)(pos + i) * half;
        if (interleaved && rot_dim == head_dim && frac <= 14) { /* llama2.c's whole-head pairs, in int32 */
            const int16_t *xp = x + (size_t)i * cols;
            int16_t *op = out + (size_t)i * cols;
            int32_t rnd = frac > 0 ? 1 << (frac - 1) : 0;
            for (int h = 0; h < cols; h += head_dim)
                for (int j = 0; j < half; j++, xp += 2, op += 2) {
                    int32_t u = xp[0], v = xp[1], cj = c[j], sj = s[j];
                    int32_t y0 = (u * cj - v * sj + rnd) >> frac, y1 = (u * sj + v * cj + rnd) >> frac;
                    op[0] = (int16_t)(y0 < -32768 ? -32768 : y0 > 32767 ? 32767 : y0);
                    op[1] = (int16_t)(y1 < -32768 ? -32768 : y1 > 32767 ? 32767 : y1);
                }
            continue;
        }
        for (int h = 0; h < cols; h += head_dim) {
            for (int j = rot_dim; j < head_dim; j++) out[(size_t)i * cols + h + j] = x[(size_t)i * cols + h + j];
            for (int j = 0; j < half; j++) {
                int a = interleaved ? h + 2 * j : h + j, b = interleaved ? a + 1 : a + half;
                int32_t u = x[(size_t)i * cols + a], v = x[(size_t)i * cols + b];
                if (frac <= 14) { /* |cos|, |sin| <= 2^frac: each sum of two int16 products fits int32 */
                    int32_t rnd = frac > 0 ? 1 << (frac - 1) : 0;
                    out[(size_t)i * cols + a] = slmc_sat16((u * c[j] - v * s[j] + rnd) >> frac);
                    out[(size_t)i * cols + b] = slmc_sat16((u * s[j] + v * c[j] + rnd) >> frac);
                    continue;
                }
                out[(size_t)i * cols + a] = slmc_sat16(slmc_rshift_round((int64_t)u * c[j] - (int64_t)v * s[j], frac));
                out[(size_t)i * cols + b] = slmc_sat16(slmc_rshift_round((int64_t)u * s[j] + (int64_t)v * c[j], frac));
            }
        }
    }
}
