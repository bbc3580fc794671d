#include "slmc_kernels.h"
#if defined(__riscv) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-schedule-insns") /* gcc's first scheduling pass spills q and the sums */
#endif

/* -q int8 attention over positions 0..pos+i for row i, per head (grouped-query: head h reads KV head
 * h / (n_heads / n_kv_heads)), in int32 arithmetic (RV32 has no cheap int64; numpy twin:
 * reference/int_llm_ops.py attention_i, constants from passes/quantize_int8.py attention_attrs).
 * - q is narrowed once per head: qn = clamp(rshift_round(q, q_shift), -q_max, q_max), q_max =
 *   floor((2^31 - 1) / (head_dim * 2^15)). Proof that the score s = sum qn * k fits int32: |k| <= 2^15
 *   (int16), so |s| <= head_dim * q_max * 2^15 <= 2^31 - 1 (attention_attrs checks it at compile time).
 * - softmax: e = 2^(-u) for t = max - s below t_cap (else 0; max - s < 2^32 as both are int32), u =
 *   ((t << t_shift) * c) >> 32 in Q16 (one mulhu; c < 2^32 folds log2(e) / sqrt(head_dim) and the formats),
 *   from a 257-entry Q15 table of 2^(-i/256) with linear interpolation and a right shift by the integer part.
 * - normalised once: p = (e * inv + 2^31) >> 32 with inv = floor((2^47 - 1) / sum(e)), so sum(p) <=
 *   2^15 + npos/2; the max's e is 2^15, so 2^15 <= sum(e) <= 2^15 * npos < 2^31 and inv < 2^32.
 * - out = sum(p * v) >> (15 + f_v - f_out), rounded: |sum(p * v)| <= 2^15 (2^15 + npos/2) < 2^31 for
 *   npos <= 65534 (attention_attrs checks seq_len).
 * scratch: int32 per position (scores, then e), then int32 per head dimension. window > 0: row i sees only
 * its last `window` positions. tanh_lut (soft-capping, Gemma 2; NULL: none): each score s becomes
 * cap * tanh(s / cap) in its own format, s / cap in Q16 being (s * cap_m) >> cap_shift (slmc_softcap_q). */
/* round(v / 2^s), halves up (slmc_rshift_round) in int32 for every int32 v: floor(v / 2^s) plus bit s - 1 of v;
 * s >= 32 gives 0 (|v| < 2^31 <= 2^(s-1)), s <= 0 leaves v */
static inline int32_t rshift_round32(int32_t v, int s) {
    if (s <= 0) return v;
    if (s >= 32) return 0;
    return (v >> s) + ((v >> (s - 1)) & 1);
}

/* CAP: soft-capping (tanh_lut) may be on; TS: t_shift may be nonzero. Without either (the common case) the
 * scores take two positions per step. The product pass skips every e below e_min = ceil(2^31 / inv), exactly
 * the e whose p = (e * inv + 2^31) >> 32 is 0 (e = 0 from t_cap on among them). */
static inline __attribute__((always_inline)) void att_head(
    int16_t *o, const int16_t *qh, const int16_t *kc, const int16_t *vc, int32_t *sc, int32_t *qn, int32_t *num,
    const int32_t *lut, int kv_dim, int first, int last, uint32_t c, int t_shift, uint32_t t_cap, int q_shift,
    int32_t q_max, int o_shift, const int32_t *tanh_lut, int64_t cap_m, int cap_shift, int64_t capq,
    int step_log2, int range, const int hd, const int CAP, const int TS) {
#pragma GCC unroll 16
    for (int d = 0; d < hd; d++) {
        int32_t v = q_shift ? (qh[d] + (1 << q_shift >> 1)) >> q_shift : qh[d];
        qn[d] = v > q_max ? q_max : v < -q_max ? -q_max : v;
    }
    int32_t mx = INT32_MIN;
    const int16_t *k = kc + (size_t)first * kv_dim;
    int t = first;
    if (!CAP && hd <= 8)
        for (const int16_t *k1 = k + kv_dim; t < last; t += 2, k += 2 * kv_dim, k1 += 2 * kv_dim) {
#if defined(__GNUC__)
            __asm__("" : "+r"(k1)); /* a pointer of its own: gcc would add the row offset before each load */
#endif
            int32_t s0 = 0, s1 = 0;
#pragma GCC unroll 16
            for (int d = 0; d < hd; d++) {
                s0 += qn[d] * k[d];
                s1 += qn[d] * k1[d];
            }
            sc[t] = s0;
            sc[t + 1] = s1;
            if (s0 > mx) mx = s0;
            if (s1 > mx) mx = s1;
        }
    for (; t <= last; t++, k += kv_dim) {
        int32_t s = 0;
#pragma GCC unroll 16
        for (int d = 0; d < hd; d++) s += qn[d] * k[d];
        if (CAP && tanh_lut)
            s = (int32_t)slmc_softcap_q(slmc_rshift_round((int64_t)s * cap_m, cap_shift), tanh_lut, capq, step_log2,
                                        range);
        sc[t] = s;
        if (s > mx) mx = s;
    }
    uint32_t sum = 0;
    for (t = first; t <= last; t++) {
        uint32_t tt = (uint32_t)mx - (uint32_t)sc[t];
        int32_t e = 0; /* e = 0 from t_cap on (there u >= 16 in Q16 unless attention_attrs clipped t_cap) */
        if (tt < t_cap) {
            uint32_t u = (uint32_t)(((uint64_t)(TS ? tt << t_shift : tt) * c) >> 32);
            /* tt < t_cap, the first tt whose u reaches 16 in Q16 (or, where attention_attrs clipped t_cap to
             * 2^32 - 1, c < 2^20 and u < c): the integer part is at most 15 */
            uint32_t nint = u >> 16, r = u & 0xFFFF;
            e = slmc_lut_interp(lut, (int32_t)(r >> 8), (int32_t)(r & 0xFF)) >> nint;
        }
        sc[t] = e;
        sum += (uint32_t)e;
    }
    uint32_t inv = (uint32_t)((((uint64_t)1 << 47) - 1) / sum), e_min = 0x7FFFFFFFu / inv + 1;
#pragma GCC unroll 16
    for (int d = 0; d < hd; d++) num[d] = 0;
    const int16_t *v = vc + (size_t)first * kv_dim;
    t = first;
    if (!CAP && hd <= 8) /* two positions a step, as the scores */
        for (const int16_t *v1 = v + kv_dim; t < last; t += 2, v += 2 * kv_dim, v1 += 2 * kv_dim) {
#if defined(__GNUC__)
            __asm__("" : "+r"(v1));
#endif
            uint32_t e0 = (uint32_t)sc[t], e1 = (uint32_t)sc[t + 1];
            if (e0 >= e_min) {
                int32_t p = (int32_t)((uint32_t)(((uint64_t)e0 * inv) >> 32) + ((e0 * inv) >> 31));
#pragma GCC unroll 16
                for (int d = 0; d < hd; d++) num[d] += p * v[d];
            }
            if (e1 >= e_min) {
                int32_t p = (int32_t)((uint32_t)(((uint64_t)e1 * inv) >> 32) + ((e1 * inv) >> 31));
#pragma GCC unroll 16
                for (int d = 0; d < hd; d++) num[d] += p * v1[d];
            }
        }
    for (; t <= last; t++, v += kv_dim) {
        uint32_t e = (uint32_t)sc[t], lo = e * inv; /* p = (e * inv + 2^31) >> 32: the carry is lo's top bit */
        if (e < e_min) continue; /* p = 0: far from the max, common in long contexts */
        int32_t p = (int32_t)((uint32_t)(((uint64_t)e * inv) >> 32) + (lo >> 31));
#pragma GCC unroll 16
        for (int d = 0; d < hd; d++) num[d] += p * v[d];
    }
#pragma GCC unroll 16
    for (int d = 0; d < hd; d++) {
        int32_t y = rshift_round32(num[d], o_shift);
        o[d] = (int16_t)(y < -32768 ? -32768 : y > 32767 ? 32767 : y);
    }
}

/* the common case (no soft-cap, t_shift 0, head_dim 8 or 16): every head of every row in a function of its own;
 * inlined into the general head loop, gcc spills the sums */
#define SLMC_ATT_FAST(NAME, HD) \
    static __attribute__((noinline)) void NAME(int16_t *out, const int16_t *q, const int16_t *kc, const int16_t *vc, \
                                               int32_t *sc, const int32_t *lut, int n, int n_heads, int rep, \
                                               int pos, int window, uint32_t c, uint32_t t_cap, int q_shift, \
                                               int32_t q_max, int o_shift, int kv_dim, int h0, int h1) { \
        int32_t qa[16], na[16]; \
        for (int i = 0; i < n; i++) { \
            int last = pos + i, first = window > 0 && last >= window ? last - window + 1 : 0; \
            for (int h = h0; h < h1; h++) \
                att_head(out + ((size_t)i * n_heads + h) * HD, q + ((size_t)i * n_heads + h) * HD, \
                         kc + (h / rep) * HD, vc + (h / rep) * HD, sc, qa, na, lut, kv_dim, first, last, c, 0, t_cap, \
                         q_shift, q_max, o_shift, NULL, 0, 0, 0, 0, 0, HD, 0, 0); \
        } \
    }
SLMC_ATT_FAST(att_heads8, 8)
SLMC_ATT_FAST(att_heads16, 16)
#undef SLMC_ATT_FAST

/* query heads h0..h1-1 of every token row (each head reads only its own query and its KV head's columns): the
 * serial kernel takes them all; a multi-core build (parallel_attention_i.c) gives each core a range, with its own
 * scratch, and the bits are the serial kernel's */
static inline __attribute__((always_inline)) void att_heads(
    int16_t *out, const int16_t *q, const int16_t *kc, const int16_t *vc, void *scratch, const int32_t *lut, int n,
    int n_heads, int n_kv_heads, int head_dim, int pos, int seq_len, int64_t c, int t_shift, int64_t t_cap, int q_shift,
    int q_max, int f_out, int f_v, int window, const int32_t *tanh_lut, int64_t cap_m, int cap_shift, int64_t capq,
    int step_log2, int range, int h0, int h1) {
    int32_t *sc = (int32_t *)scratch, *num = sc + seq_len + (seq_len & 1), *qn = num + head_dim;
    int32_t qa[16], na[16]; /* unrolled sizes: locals, which gcc keeps in registers */
    int kv_dim = n_kv_heads * head_dim, rep = n_heads / n_kv_heads, o_shift = 15 + f_v - f_out;
    if (!tanh_lut && t_shift == 0 && (head_dim == 8 || head_dim == 16)) {
        (head_dim == 8 ? att_heads8 : att_heads16)(out, q, kc, vc, sc, lut, n, n_heads, rep, pos, window, (uint32_t)c,
                                                   (uint32_t)t_cap, q_shift, q_max, o_shift, kv_dim, h0, h1);
        return;
    }
    for (int i = 0; i < n; i++) {
        int last = pos + i, first = window > 0 && last >= window ? last - window + 1 : 0;
        for (int h = h0; h < h1; h++) {
            const int16_t *qh = q + (size_t)i * n_heads * head_dim + (size_t)h * head_dim;
            const int16_t *kh = kc + (h / rep) * head_dim, *vh = vc + (h / rep) * head_dim;
            int16_t *o = out + (size_t)i * n_heads * head_dim + (size_t)h * head_dim;
#define SLMC_ATT_HEAD(Q, N, HD, CAP) att_head(o, qh, kh, vh, sc, Q, N, lut, kv_dim, first, last, (uint32_t)c, \
                                   t_shift, (uint32_t)t_cap, q_shift, q_max, o_shift, tanh_lut, cap_m, cap_shift, \
                                   capq, step_log2, range, HD, CAP, CAP)
            /* the common head sizes with their loops unrolled (q and the sums in registers) */
            if (!tanh_lut && t_shift == 0) SLMC_ATT_HEAD(qn, num, head_dim, 0);
            else if (head_dim == 8) SLMC_ATT_HEAD(qa, na, 8, 1);
            else if (head_dim == 16) SLMC_ATT_HEAD(qa, na, 16, 1);
            else SLMC_ATT_HEAD(qn, num, head_dim, 1);
#undef SLMC_ATT_HEAD
        }
    }
}

void slmc_attention_i(int16_t *out, const int16_t *q, const int16_t *kc, const int16_t *vc, void *scratch,
                      const int32_t *lut, int n, int n_heads, int n_kv_heads, int head_dim, int pos, int seq_len,
                      int64_t c, int t_shift, int64_t t_cap, int q_shift, int q_max, int f_out, int f_v, int window,
                      const int32_t *tanh_lut, int64_t cap_m, int cap_shift, int64_t capq, int step_log2, int range) {
    att_heads(out, q, kc, vc, scratch, lut, n, n_heads, n_kv_heads, head_dim, pos, seq_len, c, t_shift, t_cap, q_shift,
              q_max, f_out, f_v, window, tanh_lut, cap_m, cap_shift, capq, step_log2, range, 0, n_heads);
}

void slmc_attention_i_heads(int16_t *out, const int16_t *q, const int16_t *kc, const int16_t *vc, void *scratch,
                            const int32_t *lut, int n, int n_heads, int n_kv_heads, int head_dim, int pos, int seq_len,
                            int64_t c, int t_shift, int64_t t_cap, int q_shift, int q_max, int f_out, int f_v,
                            int window, const int32_t *tanh_lut, int64_t cap_m, int cap_shift, int64_t capq,
                            int step_log2, int range, int h0, int h1) {
    att_heads(out, q, kc, vc, scratch, lut, n, n_heads, n_kv_heads, head_dim, pos, seq_len, c, t_shift, t_cap, q_shift,
              q_max, f_out, f_v, window, tanh_lut, cap_m, cap_shift, capq, step_log2, range, h0, h1);
}
