#include "slmc_kernels.h"

/* swiglu_f32.c on the Cortex-M33, bit-identical to it with picolibc's expf: out = silu(g) * u in llama2.c's order,
 * v * (1.0f / (1.0f + expf(-v))) * u, with expf's common path inlined: picolibc's expf (newlib/libm/math/sf_exp.c,
 * fdlibm's float exp: argument reduction by ln2 in two parts, a degree-5 polynomial, k added to the exponent) in
 * its operations and their order, each product rounded before its sum as VMLA/VMLS round it (-ffp-contract=off).
 * Arguments outside 2^-23 <= |x| <= 88.72 (0x42b17217, expf's overflow bound; under it no underflow), NaNs and
 * k < -125 call expf itself. Saves the call, its special-case tests and the literal loads: about 45 instructions
 * an element instead of 67. */
static float sgd_expf(float x) {
    static const float halF[2] = {0.5f, -0.5f}, ln2HI[2] = {6.9313812256e-01f, -6.9313812256e-01f},
                       ln2LO[2] = {9.0580006145e-06f, -9.0580006145e-06f};
    const float invln2 = 1.4426950216e+00f, P1 = 1.6666667163e-01f, P2 = -2.7777778450e-03f,
                P3 = 6.6137559770e-05f, P4 = -1.6533901999e-06f, P5 = 4.1381369442e-08f;
    uint32_t sx;
    memcpy(&sx, &x, 4);
    uint32_t hx = sx & 0x7fffffffu, xsb = sx >> 31;
    if (hx < 0x34000000u || hx > 0x42b17217u) return expf(x);
    float hi = 0.0f, lo = 0.0f, t, c, y;
    int32_t k = 0;
    if (hx > 0x3eb17218u) {
        if (hx < 0x3F851592u) {
            hi = x - ln2HI[xsb];
            lo = ln2LO[xsb];
            k = 1 - (int32_t)xsb - (int32_t)xsb;
        } else {
            k = (int32_t)(invln2 * x + halF[xsb]);
            t = (float)k;
            hi = x - t * ln2HI[0];
            lo = t * ln2LO[0];
        }
        x = hi - lo;
    }
    t = x * x;
    c = x - t * (P1 + t * (P2 + t * (P3 + t * (P4 + t * P5))));
    if (k == 0) return 1.0f - ((x * c) / (c - 2.0f) - x);
    if (k < -125) {
        float x0;
        memcpy(&x0, &sx, 4);
        return expf(x0);
    }
    y = 1.0f - ((lo - (x * c) / (2.0f - c)) - hi);
    uint32_t hy;
    memcpy(&hy, &y, 4);
    hy += (uint32_t)k << 23;
    memcpy(&y, &hy, 4);
    return y;
}

void slmc_swiglu_f32_dsp(float *out, const float *g, const float *u, int count) {
    for (int i = 0; i < count; i++) {
        float v = g[i];
        v = v * (1.0f / (1.0f + sgd_expf(-v)));
        out[i] = v * u[i];
    }
}
