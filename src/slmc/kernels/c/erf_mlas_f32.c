#include "slmc_kernels.h"

#if defined(__GNUC__) && !defined(__clang__)
/* host-native builds pass -ffp-contract=fast: onnxruntime's products and sums here are not fused */
#pragma GCC optimize("fp-contract=off")
#endif

/* Erf as onnxruntime's CPU provider computes it on x86-64 (MLAS's FMA3 kernel, one lane at a time): an odd
 * polynomial in x^2 below 0.921875, 1 - exp(-p(|x|)) above, |x| clamped at 3.925 (onnxruntime 1.32's
 * constant), every multiply-add fused. slmc_fmaf is one rounding on every target (slmc_kernels.h), and the
 * build passes -ffp-contract=off, so nothing else is fused. Checked bit for bit
 * against onnxruntime 1.32 on 8 million inputs (tests/onnx/test_ort_numerics.py). Gelu (approximate
 * 'none', ONNX's and com.microsoft's) is onnxruntime's 0.5 * x * (erf(x * 0.70710678f) + 1) on this erf. */
typedef union { float f; uint32_t u; } slmc_erf_bits;

static float mlas_erf(float x) {
    static const float sp[6] = {-5.99104969e-4f, 4.99339588e-3f, -2.67667342e-2f, 1.12818025e-1f,
                                -3.76124859e-1f, 1.28379151e-1f};
    static const float bp[7] = {1.72948930e-5f, -3.83208680e-4f, 3.88393435e-3f, -2.42545605e-2f,
                                1.06777847e-1f, 6.34846687e-1f, 1.28717512e-1f};
    static const float ep[7] = {1.38319808e-3f, 8.37550033e-3f, 4.16689515e-2f, 1.66664466e-1f,
                                4.99999851e-1f, 1.0f, 1.0f};
    const float upper = 3.925f, split = 0.921875f, lower = -88.3762626647949f;
    const float log2e = 1.44269504088896341f, ln2_hi = -6.93145752e-1f, ln2_lo = -1.42860677e-6f;
    const float round_c = 1.25829120e+7f; /* 1.5 * 2^23: adding it rounds to an integer */
    slmc_erf_bits v = {x};
    uint32_t sign = v.u & 0x80000000u;
    float a = fabsf(x);
    a = a < upper ? a : upper; /* vminps: a NaN gives the bound */
    float s = a * a;
    float r = sp[0];
    for (int k = 1; k < 6; k++) r = slmc_fmaf(r, s, sp[k]);
    r = slmc_fmaf(r, a, a);
    int big = split <= a;
    float small = big ? 0.0f : r;
    float ab = big ? a : 0.0f;
    float rb = bp[0];
    for (int k = 1; k < 7; k++) rb = slmc_fmaf(rb, ab, bp[k]);
    rb = -slmc_fmaf(rb, ab, ab);
    rb = rb > lower ? rb : lower; /* vmaxps */
    float e = slmc_fmaf(log2e, rb, round_c) - round_c;
    float f = slmc_fmaf(e, ln2_hi, rb);
    f = slmc_fmaf(e, ln2_lo, f);
    float y = ep[0];
    for (int k = 1; k < 7; k++) y = slmc_fmaf(y, f, ep[k]);
    slmc_erf_bits p;
    p.u = (uint32_t)((int32_t)e + 127) << 23; /* 2^e */
    y = 1.0f - y * p.f;
    slmc_erf_bits o = {big ? y : small}; /* the branch not taken is +0 in MLAS, so its OR is a select */
    o.u |= sign;
    return o.f;
}

void slmc_erf_mlas_f32(float *out, const float *x, int n) {
    for (int i = 0; i < n; i++) out[i] = mlas_erf(x[i]);
}

void slmc_gelu_mlas_f32(float *out, const float *x, int n) {
    for (int i = 0; i < n; i++) {
        float v = x[i];
        out[i] = 0.5f * v * (mlas_erf(v * 0.70710678118654752f) + 1.0f);
    }
}
