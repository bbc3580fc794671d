#include "slmc_kernels.h"

/* kv_write_i8.c on the Cortex-M33 (FPv5), bit-identical to it: a record per new row and KV head, head_dim int8
 * values by slmc_i8kv_quantize's single operations in its order (scale = max|x| / 127, the maximum from 0.0f by
 * VMAXNM, its compare for every non-NaN value; q = (x / scale + 1.5 * 2^23) - 1.5 * 2^23, truncated; a zero scale
 * gives zeros), then the scale as binary16 (slmc_i8kv_half). head_dim 8 (stories260K) in asm, straight-line: one
 * VLDM, the 8 values packed into two words by BFI and stored by two STRs (a record of 10 bytes may start at 2 mod 4:
 * the M33 stores unaligned words), about 90 instructions a record with the half conversion against kv_write_i8.c's
 * 200 (gcc 12 sends each int8 through the stack); other head_dims the portable loop. */
static void kvd_quantize(int8_t *q, float *scale, const float *x, int hd) {
    float amax = 0.0f;
    for (int i = 0; i < hd; i++) {
        float v = fabsf(x[i]);
        if (v > amax) amax = v;
    }
    float s = amax / 127.0f;
    *scale = s;
    for (int i = 0; i < hd; i++) {
        float r = s == 0.0f ? 0.0f : (x[i] / s + 12582912.0f) - 12582912.0f;
        q[i] = (int8_t)(int32_t)r;
    }
}

/* one record of 8: the two value words and the scale at r (10 bytes: at least 2-byte aligned) */
static inline __attribute__((always_inline)) void kvd_record8(int8_t *r, const float *x) {
#if defined(__ARM_FEATURE_DSP) && defined(__thumb2__) && defined(__ARM_FP) && defined(__GNUC__)
    register uint32_t p0 __asm__("r2"), p1 __asm__("r3");
    register float sc __asm__("s9");
    uint32_t t0, t1;
    __asm__ volatile("vldmia %[x], {s0-s7}\n\t"
            "vmov.f32 s8, %[z]\n\t"
            "vabs.f32 s10, s0\n\t" "vmaxnm.f32 s8, s8, s10\n\t"
            "vabs.f32 s10, s1\n\t" "vmaxnm.f32 s8, s8, s10\n\t"
            "vabs.f32 s10, s2\n\t" "vmaxnm.f32 s8, s8, s10\n\t"
            "vabs.f32 s10, s3\n\t" "vmaxnm.f32 s8, s8, s10\n\t"
            "vabs.f32 s10, s4\n\t" "vmaxnm.f32 s8, s8, s10\n\t"
            "vabs.f32 s10, s5\n\t" "vmaxnm.f32 s8, s8, s10\n\t"
            "vabs.f32 s10, s6\n\t" "vmaxnm.f32 s8, s8, s10\n\t"
            "vabs.f32 s10, s7\n\t" "vmaxnm.f32 s8, s8, s10\n\t"
            "vdiv.f32 s9, s8, %[c127]\n\t"
            "vcmp.f32 s9, #0\n\t"
            "vmrs   APSR_nzcv, fpscr\n\t"
            "bne    1f\n\t"
            "mov    %[p0], #0\n\t"
            "mov    %[p1], #0\n\t"
            "b      2f\n"
            "1:\n\t"
#define KVD_Q1(S) "vdiv.f32 " S ", " S ", s9\n\t" "vadd.f32 " S ", " S ", %[mg]\n\t" \
                  "vsub.f32 " S ", " S ", %[mg]\n\t" "vcvt.s32.f32 " S ", " S "\n\t"
            KVD_Q1("s0") KVD_Q1("s1") KVD_Q1("s2") KVD_Q1("s3") KVD_Q1("s4") KVD_Q1("s5") KVD_Q1("s6") KVD_Q1("s7")
#undef KVD_Q1
            "vmov   %[p0], %[t0], s0, s1\n\t"
            "bfi    %[p0], %[t0], #8, #8\n\t"
            "vmov   %[t0], %[t1], s2, s3\n\t"
            "bfi    %[p0], %[t0], #16, #8\n\t"
            "bfi    %[p0], %[t1], #24, #8\n\t"
            "vmov   %[p1], %[t0], s4, s5\n\t"
            "bfi    %[p1], %[t0], #8, #8\n\t"
            "vmov   %[t0], %[t1], s6, s7\n\t"
            "bfi    %[p1], %[t0], #16, #8\n\t"
            "bfi    %[p1], %[t1], #24, #8\n"
            "2:\n\t"
            "str    %[p0], [%[r]]\n\t"
            "str    %[p1], [%[r], #4]"
            : [p0] "=&r"(p0), [p1] "=&r"(p1), [t0] "=&r"(t0), [t1] "=&r"(t1), [sc] "=&t"(sc)
            : [x] "r"(x), [r] "r"(r), [z] "t"(0.0f), [c127] "t"(127.0f), [mg] "t"(12582912.0f)
            : "memory", "cc", "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s10");
    uint16_t h = slmc_i8kv_half(sc);
#else
    float scale;
    kvd_quantize(r, &scale, x, 8);
    uint16_t h = slmc_i8kv_half(scale);
#endif
    memcpy(r + 8, &h, 2);
}

/* n new rows land at row pos; x is [n][n_kv_heads * hd] */
void slmc_kv_write_i8_dsp(int8_t *cache, const float *x, int pos, int n, int n_kv_heads, int hd) {
    int rec = hd + SLMC_I8KV_SCALE;
    for (int s = 0; s < n; s++)
        for (int kh = 0; kh < n_kv_heads; kh++) {
            int8_t *r = cache + ((size_t)(pos + s) * n_kv_heads + kh) * rec;
            const float *xh = x + ((size_t)s * n_kv_heads + kh) * hd;
            if (hd == 8) {
                kvd_record8(r, xh);
            } else {
                float scale;
                kvd_quantize(r, &scale, xh, hd);
                uint16_t h = slmc_i8kv_half(scale);
                memcpy(r + hd, &h, 2);
            }
        }
}
