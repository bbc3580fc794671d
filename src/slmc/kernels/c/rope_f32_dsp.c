#include "slmc_kernels.h"

/* rope_f32.c on the Cortex-M33, bit-identical to it (the same products, difference and sum per pair:
 * o0 = v0 * c - v1 * s, o1 = v0 * s + v1 * c). Interleaved pairs over whole heads of 8 (stories260K): the
 * position's 4 cos and 4 sin stay in registers for every head, and a head is loaded and stored whole, about 7
 * instructions a pair against rope_f32.c's 25 and its per-head set-up; any other shape runs rope_f32.c's loop
 * (its copy below). out may equal x: each head is read whole before it is written. */
void slmc_rope_f32_dsp(float *out, const float *x, const float *cos_t, const float *sin_t,
                       int n, int features, int hd, int rot, int pos, int interleaved) {
    int half = rot / 2;
    for (int s = 0; s < n; s++) {
        const float *c = cos_t + (size_t)(pos + s) * half, *sn = sin_t + (size_t)(pos + s) * half;
        if (interleaved && hd == 8 && rot == 8) {
            const float c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3], s0 = sn[0], s1 = sn[1], s2 = sn[2], s3 = sn[3];
            const float *v = x + (size_t)s * features, *ve = v + features;
            float *o = out + (size_t)s * features;
            for (; v < ve; v += 8, o += 8) {
                float a0 = v[0], a1 = v[1], a2 = v[2], a3 = v[3], a4 = v[4], a5 = v[5], a6 = v[6], a7 = v[7];
                float r0 = a0 * c0 - a1 * s0, r1 = a0 * s0 + a1 * c0, r2 = a2 * c1 - a3 * s1, r3 = a2 * s1 + a3 * c1;
                float r4 = a4 * c2 - a5 * s2, r5 = a4 * s2 + a5 * c2, r6 = a6 * c3 - a7 * s3, r7 = a6 * s3 + a7 * c3;
                o[0] = r0, o[1] = r1, o[2] = r2, o[3] = r3, o[4] = r4, o[5] = r5, o[6] = r6, o[7] = r7;
            }
            continue;
        }
        for (int h = 0; h < features; h += hd) {
            const float *v = x + (size_t)s * features + h;
            float *o = out + (size_t)s * features + h;
            for (int i = 0; i < half; i++) {
                int i0 = interleaved ? 2 * i : i, i1 = interleaved ? 2 * i + 1 : i + half;
                float v0 = v[i0], v1 = v[i1];
                o[i0] = v0 * c[i] - v1 * sn[i];
                o[i1] = v0 * sn[i] + v1 * c[i];
            }
            for (int i = rot; i < hd; i++) o[i] = v[i];
        }
    }
}
