#include "slmc_kernels.h"

/* --kv-cache int8: the cache is [seq_len][n_kv_heads][head_dim + 2] bytes, per position and KV head one
 * record of head_dim int8 values and their scale as binary16 (slmc_kernels.h's slmc_i8kv_half: so attention_i8kv.c
 * reads a record's values and scale together, and the scales take half the bytes of float32 ones). Per record:
 * scale = max|x| / 127 in float, q = x / scale rounded half to even by adding and subtracting 1.5 * 2^23
 * (|x / scale| <= 127: exact, and no libm call), the scale stored rounded to binary16; an all-zero head gets
 * scale 0 and zeros. reference/kv_int8.py is the twin. */
void slmc_i8kv_quantize(int8_t *q, float *scale, const float *x, int hd) {
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

/* n new rows land at row pos; x is [n][n_kv_heads * hd] */
void slmc_kv_write_i8(int8_t *cache, const float *x, int pos, int n, int n_kv_heads, int hd) {
    int rec = hd + SLMC_I8KV_SCALE;
    for (int s = 0; s < n; s++)
        for (int kh = 0; kh < n_kv_heads; kh++) {
            int8_t *r = cache + ((size_t)(pos + s) * n_kv_heads + kh) * rec;
            float scale;
            slmc_i8kv_quantize(r, &scale, x + ((size_t)s * n_kv_heads + kh) * hd, hd);
            uint16_t h = slmc_i8kv_half(scale);
            memcpy(r + hd, &h, 2);
        }
}
