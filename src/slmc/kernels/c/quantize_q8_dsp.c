#include "slmc_kernels.h"

/* quantize_q8.c for the Cortex-M33 (FPv5: VMAXNM, VRINTA), bit-identical to it: per group scale = max|x| / 127
 * and q = roundf(x / scale), an all-zero group scale 0 and zeros. The maximum is taken four lanes at a time and
 * then across them (VMAXNM, the same maximum as quantize_q8.c's compare for every non-NaN value, and NaNs are
 * passed over by both); the zero-scale test is made once per group, not per value, and the values go to memory
 * by STRB from core registers (gcc 12 sends quantize_q8.c's int8 conversion through the stack): 22 instructions
 * per value there, about 7 here. Groups that are not a multiple of 4 take quantize_q8.c's loop (its copy below). */
void slmc_quantize_q8_dsp(int8_t *q, float *s, const float *x, int n, int k, int group) {
    int ng = k / group;
    if (group == 4) { /* one group a word (stories260K's w2 input, k = 172): straight-line asm, no inner loops */
#if defined(__ARM_FEATURE_DSP) && defined(__thumb2__) && defined(__ARM_FP) && defined(__GNUC__)
        const float *xe = x + (size_t)4 * n * ng;
        for (; x < xe; x += 4, q += 4, s++) {
            uint32_t w, t0, t1;
            /* s0-s3 the values, s4 the maximum from 0.0f, s5 the scale; VRINTA is roundf; a zero scale: zeros */
            __asm__ volatile("vldmia %[x], {s0-s3}\n\t"
                             "vabs.f32 s6, s0\n\t"
                             "vmaxnm.f32 s4, %[z], s6\n\t"
                             "vabs.f32 s6, s1\n\t"
                             "vmaxnm.f32 s4, s4, s6\n\t"
                             "vabs.f32 s6, s2\n\t"
                             "vmaxnm.f32 s4, s4, s6\n\t"
                             "vabs.f32 s6, s3\n\t"
                             "vmaxnm.f32 s4, s4, s6\n\t"
                             "vdiv.f32 s5, s4, %[c127]\n\t"
                             "vstr   s5, [%[s]]\n\t"
                             "vcmp.f32 s5, #0\n\t"
                             "vmrs   APSR_nzcv, fpscr\n\t"
                             "mov    %[w], #0\n\t"
                             "beq    1f\n\t"
                             "vdiv.f32 s0, s0, s5\n\t"
                             "vdiv.f32 s1, s1, s5\n\t"
                             "vdiv.f32 s2, s2, s5\n\t"
                             "vdiv.f32 s3, s3, s5\n\t"
                             "vrinta.f32 s0, s0\n\t"
                             "vrinta.f32 s1, s1\n\t"
                             "vrinta.f32 s2, s2\n\t"
                             "vrinta.f32 s3, s3\n\t"
                             "vcvt.s32.f32 s0, s0\n\t"
                             "vcvt.s32.f32 s1, s1\n\t"
                             "vcvt.s32.f32 s2, s2\n\t"
                             "vcvt.s32.f32 s3, s3\n\t"
                             "vmov   %[w], %[t0], s0, s1\n\t"
                             "bfi    %[w], %[t0], #8, #8\n\t"
                             "vmov   %[t0], %[t1], s2, s3\n\t"
                             "bfi    %[w], %[t0], #16, #8\n\t"
                             "bfi    %[w], %[t1], #24, #8\n"
                             "1:\n\t"
                             "str    %[w], [%[q]]"
                             : [w] "=&r"(w), [t0] "=&r"(t0), [t1] "=&r"(t1)
                             : [x] "r"(x), [q] "r"(q), [s] "r"(s), [z] "t"(0.0f), [c127] "t"(127.0f)
                             : "memory", "cc", "s0", "s1", "s2", "s3", "s4", "s5", "s6");
        }
        return;
#else
        for (int r = 0; r < n * ng; r++, x += 4, q += 4) {
            float a = x[0], b = x[1], c = x[2], d = x[3];
            float m = fmaxf(fmaxf(fmaxf(fmaxf(0.0f, fabsf(a)), fabsf(b)), fabsf(c)), fabsf(d));
            float scale = m / 127.0f;
            s[r] = scale;
            uint32_t w = 0;
            if (scale != 0.0f) {
                int32_t ia = (int32_t)roundf(a / scale), ib = (int32_t)roundf(b / scale);
                int32_t ic = (int32_t)roundf(c / scale), id = (int32_t)roundf(d / scale);
                w = ((uint32_t)ia & 0xFFu) | ((uint32_t)ib & 0xFFu) << 8 | ((uint32_t)ic & 0xFFu) << 16 | (uint32_t)id << 24;
            }
            memcpy(q, &w, 4);
        }
        return;
#endif
    }
    for (int r = 0; r < n * ng; r++) {
        const float *xg = x + (size_t)r * group;
        int8_t *qg = q + (size_t)r * group;
        if (group % 4) {
            float wmax = 0.0f;
            for (int i = 0; i < group; i++) {
                float v = fabsf(xg[i]);
                if (v > wmax) wmax = v;
            }
            float scale = wmax / 127.0f;
            s[r] = scale;
            for (int i = 0; i < group; i++) qg[i] = scale == 0.0f ? 0 : (int8_t)roundf(xg[i] / scale);
            continue;
        }
        float m0 = 0.0f, m1 = 0.0f, m2 = 0.0f, m3 = 0.0f;
        for (int i = 0; i < group; i += 4) {
            m0 = fmaxf(m0, fabsf(xg[i])), m1 = fmaxf(m1, fabsf(xg[i + 1]));
            m2 = fmaxf(m2, fabsf(xg[i + 2])), m3 = fmaxf(m3, fabsf(xg[i + 3]));
        }
        float scale = fmaxf(fmaxf(m0, m1), fmaxf(m2, m3)) / 127.0f;
        s[r] = scale;
        if (scale == 0.0f) {
            memset(qg, 0, (size_t)group);
            continue;
        }
        for (int i = 0; i < group; i += 4) {
            int32_t a = (int32_t)roundf(xg[i] / scale), b = (int32_t)roundf(xg[i + 1] / scale);
            int32_t c = (int32_t)roundf(xg[i + 2] / scale), d = (int32_t)roundf(xg[i + 3] / scale);
            qg[i] = (int8_t)a, qg[i + 1] = (int8_t)b, qg[i + 2] = (int8_t)c, qg[i + 3] = (int8_t)d;
        }
    }
}
