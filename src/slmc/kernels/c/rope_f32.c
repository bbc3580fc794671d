#include "slmc_kernels.h"

/* Rotary positions from precomputed cos/sin tables [seq_len][rot/2] (const, in flash): no powf,
 * cosf or sinf at run time. interleaved: pairs (2i, 2i+1) as in llama2.c; else (i, i + rot/2) as in HF.
 * Partial rotary (GPT-NeoX, Phi, StableLM): only the first rot of each head's hd features turn, the
 * rest pass through (copied after the head's pairs; out may equal x). */
void slmc_rope_f32(float *out, const float *x, const float *cos_t, const float *sin_t,
                   int n, int features, int hd, int rot, int pos, int interleaved) {
    int half = rot / 2;
    for (int s = 0; s < n; s++) {
        const float *c = cos_t + (size_t)(pos + s) * half, *sn = sin_t + (size_t)(pos + s) * half;
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
