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

void slmc_rmsnorm_i(void *out, const int32_t *x, const int16_t *w, int n, int dim, int64_t eps, int f_w,
                    int f_out, int up, int out_bits) {
    for (int i = 0; i < n; i++) {
        const int32_t *xr = x + (size_t)i * dim;
        uint64_t ss = 0;
        for (int j = 0; j < dim; j++) ss += (uint64_t)((int64_t)xr[j] * xr[j]);
        uint64_t ms = (dim & (dim - 1)) ? ss / (uint64_t)dim : ss >> __builtin_ctz((unsigned)dim); /* no libgcc call */
        int64_t rms = (int64_t)slmc_isqrt(ms + (uint64_t)eps);
        if (rms < 1) rms = 1;
        uint64_t d = (uint64_t)rms << f_w, half = d / 2, inv = UINT64_MAX / d;
        for (int j = 0; j < dim; j++) {
            int64_t num = (int64_t)xr[j] * w[j] * ((int64_t)1 << (f_out - up));
            uint64_t nn = (uint64_t)(num < 0 ? -num : num) + half, q = umulh64(nn, inv), r = nn - q * d;
            while (r >= d) { q++; r -= d; }
            int64_t v = num < 0 ? -(int64_t)q : (int64_t)q;
            slmc_i8_store(out, (size_t)i * dim + j, v * ((int64_t)1 << up), 0, out_bits);
        }
    }
}
