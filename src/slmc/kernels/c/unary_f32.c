#include "slmc_kernels.h"

/* Elementwise float functions, one loop per op (the switch sits outside the loop). alpha, beta and
 * gamma are the ONNX attributes of the ops that have them. op codes (kernels/onnx.py UNARY):
 *  0 Neg  1 Abs  2 Sign  3 Relu  4 Sqrt  5 Reciprocal  6 Exp  7 Log  8 Tanh  9 Erf  10 Sigmoid
 * 11 Cos 12 Sin 13 Tan 14 Asin 15 Acos 16 Atan 17 Sinh 18 Cosh 19 Asinh 20 Acosh 21 Atanh 22 Floor
 * 23 Ceil 24 Round 25 Softplus 26 Softsign 27 LeakyRelu 28 Elu 29 Selu 30 Celu 31 ThresholdedRelu
 * 32 HardSigmoid 33 HardSwish 34 Mish 35 Gelu (erf) 36 Gelu (tanh) */
static float softplus(float x) { return x > 20.0f ? x : log1pf(expf(x)); }

void slmc_unary_f32(float *out, const float *x, int n, int op, float alpha, float beta, float gamma) {
    int i;
    switch (op) {
    case 0: for (i = 0; i < n; i++) out[i] = -x[i]; break;
    case 1: for (i = 0; i < n; i++) out[i] = fabsf(x[i]); break;
    case 2: for (i = 0; i < n; i++) out[i] = x[i] > 0.0f ? 1.0f : x[i] < 0.0f ? -1.0f : x[i]; break;
    case 3: for (i = 0; i < n; i++) out[i] = x[i] > 0.0f ? x[i] : 0.0f; break;
    case 4: for (i = 0; i < n; i++) out[i] = sqrtf(x[i]); break;
    case 5: for (i = 0; i < n; i++) out[i] = 1.0f / x[i]; break;
    case 6: for (i = 0; i < n; i++) out[i] = expf(x[i]); break;
    case 7: for (i = 0; i < n; i++) out[i] = logf(x[i]); break;
    case 8: for (i = 0; i < n; i++) out[i] = tanhf(x[i]); break;
    case 9: for (i = 0; i < n; i++) out[i] = erff(x[i]); break;
    case 10: for (i = 0; i < n; i++) out[i] = 1.0f / (1.0f + expf(-x[i])); break;
    case 11: for (i = 0; i < n; i++) out[i] = cosf(x[i]); break;
    case 12: for (i = 0; i < n; i++) out[i] = sinf(x[i]); break;
    case 13: for (i = 0; i < n; i++) out[i] = tanf(x[i]); break;
    case 14: for (i = 0; i < n; i++) out[i] = asinf(x[i]); break;
    case 15: for (i = 0; i < n; i++) out[i] = acosf(x[i]); break;
    case 16: for (i = 0; i < n; i++) out[i] = atanf(x[i]); break;
    case 17: for (i = 0; i < n; i++) out[i] = sinhf(x[i]); break;
    case 18: for (i = 0; i < n; i++) out[i] = coshf(x[i]); break;
    case 19: for (i = 0; i < n; i++) out[i] = asinhf(x[i]); break;
    case 20: for (i = 0; i < n; i++) out[i] = acoshf(x[i]); break;
    case 21: for (i = 0; i < n; i++) out[i] = atanhf(x[i]); break;
    case 22: for (i = 0; i < n; i++) out[i] = floorf(x[i]); break;
    case 23: for (i = 0; i < n; i++) out[i] = ceilf(x[i]); break;
    case 24: for (i = 0; i < n; i++) out[i] = rintf(x[i]); break; /* half to even, as ONNX */
    case 25: for (i = 0; i < n; i++) out[i] = softplus(x[i]); break;
    case 26: for (i = 0; i < n; i++) out[i] = x[i] / (1.0f + fabsf(x[i])); break;
    case 27: for (i = 0; i < n; i++) out[i] = x[i] < 0.0f ? alpha * x[i] : x[i]; break;
    case 28: for (i = 0; i < n; i++) out[i] = x[i] < 0.0f ? alpha * expm1f(x[i]) : x[i]; break;
    case 29: for (i = 0; i < n; i++) out[i] = gamma * (x[i] <= 0.0f ? alpha * expm1f(x[i]) : x[i]); break;
    case 30: for (i = 0; i < n; i++) {
            float v = alpha * expm1f(x[i] / alpha);
            out[i] = (x[i] > 0.0f ? x[i] : 0.0f) + (v < 0.0f ? v : 0.0f);
        } break;
    case 31: for (i = 0; i < n; i++) out[i] = x[i] > alpha ? x[i] : 0.0f; break;
    case 32: for (i = 0; i < n; i++) out[i] = fmaxf(0.0f, fminf(1.0f, alpha * x[i] + beta)); break;
    case 33: for (i = 0; i < n; i++) out[i] = x[i] * fmaxf(0.0f, fminf(1.0f, x[i] / 6.0f + 0.5f)); break;
    case 34: for (i = 0; i < n; i++) out[i] = x[i] * tanhf(softplus(x[i])); break;
    case 35: for (i = 0; i < n; i++) out[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f)); break;
    case 36: for (i = 0; i < n; i++) {
            float v = x[i];
            out[i] = 0.5f * v * (1.0f + tanhf(0.79788456080286536f * (v + 0.044715f * v * v * v)));
        } break;
    }
}

/* Clip: lo and hi point at one value each, or are NULL (no bound). Like numpy, max(x, lo) first. */
void slmc_clip_f32(float *out, const float *x, int n, const float *lo, const float *hi) {
    /* bounds read once (out may alias them as far as the compiler knows); a missing bound is an infinity,
     * which no value, NaN included, is beyond */
    float l = lo ? *lo : -INFINITY, u = hi ? *hi : INFINITY;
    for (int i = 0; i < n; i++) {
        float v = x[i];
        if (v < l) v = l;
        if (v > u) v = u;
        out[i] = v;
    }
}
