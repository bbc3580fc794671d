/* Shared by every slmc kernel: fixed-width types and the row-count convention.
 * Activations are [n, features] row-major; n is the number of valid tokens at run time. */
#ifndef SLMC_KERNELS_H
#define SLMC_KERNELS_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <math.h>

/* One output of an fp32 matrix product: eight accumulators, summed in this fixed order (linear_f32.c; and
 * linear_swiglu_f32.c, so the fused FFN pair rounds exactly as linear_f32 does). */
static inline float slmc_dot_f32(const float *wr, const float *xr, int k) {
    float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f, a4 = 0.0f, a5 = 0.0f, a6 = 0.0f, a7 = 0.0f;
    int j = 0;
    for (; j + 8 <= k; j += 8) {
        a0 += wr[j] * xr[j];
        a1 += wr[j + 1] * xr[j + 1];
        a2 += wr[j + 2] * xr[j + 2];
        a3 += wr[j + 3] * xr[j + 3];
        a4 += wr[j + 4] * xr[j + 4];
        a5 += wr[j + 5] * xr[j + 5];
        a6 += wr[j + 6] * xr[j + 6];
        a7 += wr[j + 7] * xr[j + 7];
    }
    for (; j < k; j++) a0 += wr[j] * xr[j];
    return ((a0 + a4) + (a1 + a5)) + ((a2 + a6) + (a3 + a7));
}

/* fp32 a * b + c rounded once on every target: the FPU's fused multiply-add where the compiler has one
 * (__FP_FAST_FMAF: the M33's VFMA, -march=native hosts), else the exact product in double with the sum
 * rounded to odd there (TwoSum's error says which way), then to float; picolibc's soft-float fmaf on RV32
 * rounds twice, and the onnxruntime-exact kernels (kernels/onnx_ort.py) need one rounding. */
static inline float slmc_fmaf(float a, float b, float c) {
#if defined(__FP_FAST_FMAF)
    return fmaf(a, b, c);
#else
    /* (soft-float targets: the error term only where the double sum lies on a tie of normal floats, where the
     * two roundings can disagree; elsewhere rounding the double sum gives the single rounding) */
    double p = (double)a * (double)b, s = p + (double)c;
    union { double d; uint64_t u; } v;
    v.d = s;
    if ((v.u & 0x1fffffffu) != 0x10000000u && (v.u & 0x7ff0000000000000u) >= 0x3810000000000000u) return (float)s;
    double bb = s - p, err = (p - (s - bb)) + ((double)c - bb);
    if (err != 0.0 && !(v.u & 1u) && s - s == 0.0) v.u += ((err > 0.0) == (s > 0.0)) ? 1u : (uint64_t)-1;
    return (float)v.d;
#endif
}

/* Integer helpers of the -q int8 kernels (quant/int8.py); reference/int_llm_ops.py is their twin. */
static inline int64_t slmc_rshift_round(int64_t v, int s) { return s > 0 ? (v + ((int64_t)1 << (s - 1))) >> s : v; }
static inline int64_t slmc_rdiv(int64_t n, int64_t d) { /* d > 0; half away from zero */
    int64_t q = ((n < 0 ? -n : n) + d / 2) / d;
    return n < 0 ? -q : q;
}
static inline uint64_t slmc_isqrt(uint64_t n) { /* exact floor square root */
    uint64_t r = 0, b = (uint64_t)1 << 62;
    while (b > n) b >>= 2;
    while (b) {
        if (n >= r + b) { n -= r + b; r = (r >> 1) + b; } else r >>= 1;
        b >>= 2;
    }
    return r;
}
static inline int16_t slmc_sat16(int64_t v) { return (int16_t)(v < -32768 ? -32768 : v > 32767 ? 32767 : v); }
static inline int32_t slmc_sat32(int64_t v) { return (int32_t)(v < INT32_MIN ? INT32_MIN : v > INT32_MAX ? INT32_MAX : v); }
/* lut[i] + (lut[i+1] - lut[i]) * f / 256, rounded half up; f in 0..255 */
static inline int32_t slmc_lut_interp(const int32_t *lut, int32_t i, int32_t f) {
    return lut[i] + (((lut[i + 1] - lut[i]) * f + 128) >> 8);
}
/* -q int8 matrix products (linear_i8*.c): one row of int8 weights against int16 activations, an int32 sum
 * per group times the group's multiplier, summed in int64; and the final rounding shift and saturation. */
static inline int64_t slmc_i8_row(const int16_t *x, const int8_t *w, const int32_t *m, int cols, int group) {
    int64_t acc = 0;
    for (int g = 0; g < cols / group; g++) {
        int32_t a = 0;
        for (int k = g * group; k < (g + 1) * group; k++) a += (int32_t)x[k] * w[k];
        acc += (int64_t)a * m[g];
    }
    return acc;
}
static inline void slmc_i8_store(void *out, size_t at, int64_t acc, int shift, int out_bits) {
    int64_t y = slmc_rshift_round(acc, shift);
    if (out_bits == 16) ((int16_t *)out)[at] = slmc_sat16(y);
    else ((int32_t *)out)[at] = slmc_sat32(y);
}
/* -q int8 soft-capping (softcap_i.c, attention_i.c): z is v / cap in Q16; cap * tanh(z) in v's format
 * (capq: cap in it), tanh from a Q15 table over [-range, range) in steps of 2^-step_log2, interpolated */
static inline int64_t slmc_softcap_q(int64_t z, const int32_t *lut, int64_t capq, int step_log2, int range) {
    int64_t lo = -((int64_t)range << 16), hi = ((int64_t)range << 16) - 1;
    int64_t p = ((z < lo ? lo : z > hi ? hi : z) - lo) << step_log2;
    int64_t th = slmc_lut_interp(lut, (int32_t)(p >> 16), (int32_t)(((p & 0xFFFF) << 8) >> 16));
    return slmc_rshift_round(th * capq, 15);
}
static inline int64_t slmc_isqrt64(int64_t v) { return (int64_t)slmc_isqrt((uint64_t)v); }
/* arithmetic shift right (gcc shifts signed values arithmetically); shifts past the width give 0 or -1 */
static inline int64_t slmc_shr(int64_t v, int64_t s) { return s >= 63 ? (v < 0 ? -1 : 0) : v >> s; }

/* Element i of an integer tensor whose type is given by a code (cast.c's: 2 i8, 3 u8, 4 i16, 5 u16,
 * 6 i32, 7 u32, 8 i64): one Deeploy kernel serves every storage type the importer proves (the switch is
 * loop-invariant, so the branch is always predicted). Values are computed in int64. */
static inline int64_t slmc_ldt(const void *p, int t, size_t i) {
    switch (t) {
    case 2: return ((const int8_t *)p)[i];
    case 3: return ((const uint8_t *)p)[i];
    case 4: return ((const int16_t *)p)[i];
    case 5: return ((const uint16_t *)p)[i];
    case 6: return ((const int32_t *)p)[i];
    case 7: return ((const uint32_t *)p)[i];
    default: return ((const int64_t *)p)[i];
    }
}

/* The last step of onnxruntime's quantizing kernels (MlasQuantizeLinear, MlasRequantizeOutput): clamp v to
 * [lo - zp, hi - zp] in float, round half to even, add zp. Adding and subtracting 1.5 * 2^23 leaves the
 * integer nearest to v (ties to even) under IEEE's default rounding, for |v| < 2^22, which the clamp ensures;
 * no libm call, so it is the same on every target. A NaN gives zp. */
static inline int32_t slmc_quant_round(float v, int32_t zp, int32_t lo, int32_t hi) {
    float flo = (float)(lo - zp), fhi = (float)(hi - zp);
    if (v != v) v = 0.0f;
    if (v < flo) v = flo;
    if (v > fhi) v = fhi;
    return (int32_t)((v + 12582912.0f) - 12582912.0f) + zp;
}

/* nearbyintf of v, ties to even, as x86's conversion gives it (onnxruntime's scalar loops: QLinearMul,
 * QLinearSoftmax, QLinearAveragePool): |v| >= 2^31 or NaN gives INT32_MIN; no libm call. */
static inline int64_t slmc_round_even(float v) {
    if (!(fabsf(v) < 2147483648.0f)) return INT32_MIN;
    if (fabsf(v) < 8388608.0f) {
        float big = v < 0.0f ? -8388608.0f : 8388608.0f;
        return (int64_t)((v + big) - big);
    }
    return (int64_t)v;
}

/* q saturated to 8 bits and stored: t 2 int8, 3 uint8 */
static inline void slmc_store_q8(void *y, int t, size_t i, int64_t q) {
    int64_t lo = t == 2 ? -128 : 0, hi = t == 2 ? 127 : 255;
    q = q < lo ? lo : q > hi ? hi : q;
    if (t == 2) ((int8_t *)y)[i] = (int8_t)q;
    else ((uint8_t *)y)[i] = (uint8_t)q;
}

/* --kv-cache int8's float steps (attention_i8kv.c and attention_i8kv_dsp.c, reference/kv_int8.py): 2^x for
 * x <= 0, x clamped at -125, n = trunc(x), f = x - n in (-1, 0], 2^f by a degree-4 polynomial with 2^0 = 1
 * exactly (relative error under 4e-6), then n added to its exponent (exact: the result is normal); no libm, so
 * every target computes the same bits. */
#define SLMC_I8KV_LOG2E 1.44269504f
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline float slmc_i8kv_exp2(float x) {
    x = fmaxf(x, -125.0f);
    int32_t n = (int32_t)x;
    float f = x - (float)n;
    float p = 0.006831980310380459f;
    p = p * f + 0.05322372913360596f;
    p = p * f + 0.23945681750774384f;
    p = p * f + 0.6930635571479797f;
    p = p * f + 1.0f;
    uint32_t bits;
    memcpy(&bits, &p, 4);
    bits += (uint32_t)n << 23;
    memcpy(&p, &bits, 4);
    return p;
}

/* cap * tanh(score / cap), tanh(y) = sign(y) (1 - e) / (1 + e) with e = 2^((-2|y|) * log2(e)) */
static inline float slmc_i8kv_softcap(float score, float cap) {
    float y = score / cap, e = slmc_i8kv_exp2((-2.0f * fabsf(y)) * SLMC_I8KV_LOG2E), r = (1.0f - e) / (1.0f + e);
    return (y < 0.0f ? -r : r) * cap;
}

/* --kv-cache int8's record: head_dim int8 values, then their scale as IEEE binary16 (SLMC_I8KV_SCALE bytes,
 * little-endian, not aligned). float -> half rounds to nearest even (subnormal halves below 2^-14, infinity from
 * 65520 up, NaN keeps its top payload bits or 0x7c01: numpy's float32 -> float16, the twin's); half -> float is
 * exact. Integer code, the same bits on every target (kv_write_f16.c's conversion). */
#define SLMC_I8KV_SCALE 2
static inline uint16_t slmc_i8kv_half(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
    if (ax >= 0x38800000u && ax < 0x477ff000u)
        return (uint16_t)(sign | ((ax + 0x0fffu + ((ax >> 13) & 1u) - 0x38000000u) >> 13));
    if (ax >= 0x7f800000u) {
        uint32_t h = 0x7c00u + (ax > 0x7f800000u ? ((ax & 0x7fffffu) >> 13) : 0u);
        return (uint16_t)(sign | (h == 0x7c00u && ax > 0x7f800000u ? 0x7c01u : h));
    }
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);
    if (ax <= 0x33000000u) return (uint16_t)sign;
    uint32_t e = ax >> 23, m = (ax & 0x7fffffu) | 0x800000u, sh = 126u - e;
    uint32_t q = m >> sh, rem = m & ((1u << sh) - 1u), half = 1u << (sh - 1u);
    if (rem > half || (rem == half && (q & 1u))) q++;
    return (uint16_t)(sign | q);
}

static inline float slmc_i8kv_unhalf(const int8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu, x;
    if (e == 0x1fu) x = sign | 0x7f800000u | (m << 13);
    else if (e) x = sign | ((e + 112u) << 23) | (m << 13);
    else if (!m) x = sign;
    else { /* subnormal: m * 2^-24, normalised */
        e = 113u;
        while (!(m & 0x400u)) m <<= 1, e--;
        x = sign | (e << 23) | ((m & 0x3ffu) << 13);
    }
    float f;
    memcpy(&f, &x, 4);
    return f;
}

/* the value fits the output type: the importer proved its range */
static inline void slmc_stt(void *p, int t, size_t i, int64_t v) {
    switch (t) {
    case 2: ((int8_t *)p)[i] = (int8_t)v; break;
    case 3: ((uint8_t *)p)[i] = (uint8_t)v; break;
    case 4: ((int16_t *)p)[i] = (int16_t)v; break;
    case 5: ((uint16_t *)p)[i] = (uint16_t)v; break;
    case 6: ((int32_t *)p)[i] = (int32_t)v; break;
    case 7: ((uint32_t *)p)[i] = (uint32_t)v; break;
    default: ((int64_t *)p)[i] = v;
    }
}
#if defined(__x86_64__) && defined(__GNUC__)
#include <stdlib.h>
/* 1 where the CPU has AVX-512F and SLMC_NO_AVX512 is not in the environment (the tests turn the path off with it);
   the x86-64 kernels with an AVX-512 path ask once each */
static inline int slmc_x86_avx512f(void) {
    __builtin_cpu_init();
    return !getenv("SLMC_NO_AVX512") && __builtin_cpu_supports("avx512f");
}
#endif

#endif
