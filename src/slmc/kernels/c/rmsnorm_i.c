#include "slmc_kernels.h"

/* -q int8 RMSNorm: x int32 with f_x fractional bits, w int16 (f_w), out int16 or int32 (out_bits; f_out):
 * rms = isqrt(sum(x^2) / dim + eps) in x's format, out = (x * w * 2^f_out) / (rms * 2^f_w) rounded.
 * n rows of dim features (qk-norm per head: n * heads rows of head_dim, the same weight for each);
 * int32 out: a post-norm's output on its way to the residual stream, divided at f_out - up fractional bits
 * (so x * w * 2^(f_out - up) fits int64) and shifted up by `up`.
 * The division (slmc_rdiv, exact) is by one divisor per row: its reciprocal inv = floor((2^64 - 1) / d) is
 * taken once, then each quotient q = floor(N / d) comes from the high word of N * inv, which is q, q - 1
 * or q - 2 (N * inv / 2^64 > N / d - 1 - N / 2^64), and at most two corrections: exact, without a 64-bit
 * division per feature (a libgcc call of about 150 instructions on RV32). */

/* the high 64 bits of a * b, on 32-bit halves */
static inline uint64_t umulh64(uint64_t a, uint64_t b) {
    uint32_t al = (uint32_t)a, ah = (uint32_t)(a >> 32), bl = (uint32_t)b, bh = (uint32_t)(b >> 32);
    uint64_t ll = (uint64_t)al * bl, lh = (uint64_t)al * bh, hl = (uint64_t)ah * bl, hh = (uint64_t)ah * bh;
    uint64_t mid = (ll >> 32) + (uint32_t)lh + (uint32_t)hl; /* < 3 * 2^32: no overflow */
    return hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
}

/* One row to int16 without the 64-bit reciprocal (the common case: up = 0, int16 out), the same values.
 * half = rms 2^(f_w - 1) exactly, so the power of two c = min(f_out, f_w - 1) leaves both terms of the quotient:
 * q = floor((|x w| 2^f_out + half) / (rms 2^f_w)) = floor(A / B) with A = |x w| 2^(f_out - c) + rms 2^(f_w - 1 - c)
 * and B = rms 2^(f_w - c). Where B < 2^32 and A fits: q >= 2^15 saturates (A >= 2^15 B), else q < 2^15 is one
 * Knuth step (TAOCP 4.3.1, Theorem B) in base 2^16 with B normalised to Bn = B 2^s: qh = floor((A 2^s >> 16) /
 * (Bn >> 16)) is q, q + 1 or q + 2, and the remainder A - qh B (int64) corrects it. Returns 0 where B or A is
 * too wide for that; the caller then divides as before. */
static inline __attribute__((always_inline)) void norm16_row(int16_t *o, const int32_t *xr, const int16_t *w, int dim,
                                                             int a_sh, uint32_t B, uint32_t K, int s, uint32_t v1,
                                                             const int ASH, const int SBIG) {
    uint32_t sat_hi = B >> 17, sat_lo = B << 15; /* B 2^15 */
    for (int j = 0; j < dim; j++) {
        int32_t x = xr[j], wj = w[j], neg = (x ^ wj) >> 31;
        uint32_t sx = (uint32_t)(x >> 31), sw = (uint32_t)(wj >> 31);
        uint64_t P = (uint64_t)(((uint32_t)x ^ sx) - sx) * (((uint32_t)wj ^ sw) - sw);
        uint32_t lo = (uint32_t)P, hi = (uint32_t)(P >> 32);
        if (ASH) { /* 1 <= a_sh <= 16 */
            hi = (hi << a_sh) | (lo >> (32 - a_sh));
            lo <<= a_sh;
        }
        lo += K;
        hi += lo < K;
        if (hi > sat_hi || (hi == sat_hi && lo >= sat_lo)) { /* q >= 2^15 */
            o[j] = (int16_t)(neg ? -32768 : 32767);
            continue;
        }
        /* A 2^s >> 16 < 2^31 */
        uint32_t u = SBIG ? lo << (s - 16) : (lo >> (16 - s)) | (hi << (16 + s));
        uint32_t qh = u / v1;
        if (qh > 32767) qh = 32767; /* q < 2^15 <= qh keeps qh - q <= 2 */
        int64_t r = (int64_t)((((uint64_t)hi << 32) | lo) - (uint64_t)qh * B);
        while (r < 0) {
            qh--;
            r += B;
        }
        o[j] = (int16_t)(((int32_t)qh ^ neg) - neg);
    }
}

static int norm16(void *out, int i, const int32_t *xr, const int16_t *w, int dim, uint64_t rms, int f_w, int f_out) {
    int c = f_out < f_w - 1 ? f_out : f_w - 1, a_sh = f_out - c, b_sh = f_w - 1 - c;
    if (a_sh > 16 || b_sh > 31 || (rms << (b_sh + 1)) >> 32 != 0) return 0; /* |x w| < 2^46: A < 2^63 */
    uint32_t B = (uint32_t)(rms << (b_sh + 1)), K = B >> 1; /* K = rms 2^b_sh */
    int s = 0;
    while (!(B << s >> 31)) s++; /* B >= 2 */
    uint32_t v1 = (B << s) >> 16;
    int16_t *o = (int16_t *)out + (size_t)i * dim;
    if (a_sh == 0 && s < 16) norm16_row(o, xr, w, dim, a_sh, B, K, s, v1, 0, 0);
    else if (a_sh == 0) norm16_row(o, xr, w, dim, a_sh, B, K, s, v1, 0, 1);
    else if (s < 16) norm16_row(o, xr, w, dim, a_sh, B, K, s, v1, 1, 0);
    else norm16_row(o, xr, w, dim, a_sh, B, K, s, v1, 1, 1);
    return 1;
}

void slmc_rmsnorm_i(void *out, const int32_t *x, const int16_t *w, int n, int dim, int64_t eps, int f_w,
                    int f_out, int up, int out_bits) {
    for (int i = 0; i < n; i++) {
        const int32_t *xr = x + (size_t)i * dim;
        uint64_t ss = 0;
        for (int j = 0; j < dim; j++) ss += (uint64_t)((int64_t)xr[j] * xr[j]);
        uint64_t ms = (dim & (dim - 1)) ? ss / (uint64_t)dim : ss >> __builtin_ctz((unsigned)dim); /* no libgcc call */
        int64_t rms = (int64_t)slmc_isqrt(ms + (uint64_t)eps);
        if (rms < 1) rms = 1;
        uint64_t d = (uint64_t)rms << f_w, half = d / 2;
        if (out_bits == 16 && up == 0 && f_w >= 1 && f_out >= 0 &&
            norm16(out, i, xr, w, dim, (uint64_t)rms, f_w, f_out))
            continue;
        uint64_t inv = UINT64_MAX / d;
        for (int j = 0; j < dim; j++) {
            int64_t num = (int64_t)xr[j] * w[j] * ((int64_t)1 << (f_out - up));
            uint64_t nn = (uint64_t)(num < 0 ? -num : num) + half, q = umulh64(nn, inv), r = nn - q * d;
            while (r >= d) { q++; r -= d; }
            int64_t v = num < 0 ? -(int64_t)q : (int64_t)q;
            slmc_i8_store(out, (size_t)i * dim + j, v * ((int64_t)1 << up), 0, out_bits);
        }
    }
}
