#include "slmc_kernels.h"

/* -q int8 attention over positions 0..pos+i for row i, per head (grouped-query: head h reads KV head
 * h / (n_heads / n_kv_heads)). Scores are exact int64 dot products of int16 q and k; the softmax is
 * 2^(-u) with u = ((max - s) * c) >> c_shift in Q16 (c folds log2(e) / sqrt(head_dim) and the formats),
 * taken from a 257-entry Q15 table of 2^(-i/256) with linear interpolation and a right shift by the
 * integer part; out = sum(e * v) / sum(e) in the output format (f_out; v has f_v). scratch: int32 per
 * position, then int64 per head dimension. window > 0: row i sees only its last `window` positions.
 * tanh_lut (soft-capping, Gemma 2; NULL: none): each score s becomes cap * tanh(s / cap) in its own format,
 * s / cap in Q16 being (s * cap_m) >> cap_shift (slmc_softcap_q); c then holds log2(e) and the formats only. */
void slmc_attention_i(int16_t *out, const int16_t *q, const int16_t *kc, const int16_t *vc, void *scratch,
                      const int32_t *lut, int n, int n_heads, int n_kv_heads, int head_dim, int pos, int seq_len,
                      int64_t c, int c_shift, int64_t t_cap, int f_out, int f_v, int window, const int32_t *tanh_lut,
                      int64_t cap_m, int cap_shift, int64_t capq, int step_log2, int range) {
    int32_t *e = (int32_t *)scratch;
    int64_t *num = (int64_t *)(e + seq_len + (seq_len & 1));
    int kv_dim = n_kv_heads * head_dim, rep = n_heads / n_kv_heads;
    for (int i = 0; i < n; i++) {
        int last = pos + i, first = window > 0 && last >= window ? last - window + 1 : 0;
        for (int h = 0; h < n_heads; h++) {
            const int16_t *qh = q + (size_t)i * n_heads * head_dim + (size_t)h * head_dim;
            int off = (h / rep) * head_dim;
            int64_t mx = INT64_MIN;
            for (int t = first; t <= last; t++) {
                const int16_t *k = kc + (size_t)t * kv_dim + off;
                int64_t s = 0;
                for (int d = 0; d < head_dim; d++) s += (int64_t)qh[d] * k[d];
                if (tanh_lut) s = slmc_softcap_q(slmc_rshift_round(s * cap_m, cap_shift), tanh_lut, capq, step_log2, range);
                if (s > mx) mx = s;
            }
            /* second pass: the scores again (cheaper in RAM than an int64 per position), then 2^(-u) */
            int64_t sum = 0;
            for (int t = first; t <= last; t++) {
                const int16_t *k = kc + (size_t)t * kv_dim + off;
                int64_t s = 0;
                for (int d = 0; d < head_dim; d++) s += (int64_t)qh[d] * k[d];
                if (tanh_lut) s = slmc_softcap_q(slmc_rshift_round(s * cap_m, cap_shift), tanh_lut, capq, step_log2, range);
                int64_t tt = mx - s;
                if (tt > t_cap) tt = t_cap;
                int64_t u = (tt * c) >> c_shift;
                int32_t nint = (int32_t)(u >> 16), r = (int32_t)(u & 0xFFFF);
                int32_t v = slmc_lut_interp(lut, r >> 8, r & 0xFF);
                e[t] = nint > 30 ? 0 : v >> nint;
                sum += e[t];
            }
            for (int d = 0; d < head_dim; d++) num[d] = 0;
            for (int t = first; t <= last; t++) {
                const int16_t *v = vc + (size_t)t * kv_dim + off;
                for (int d = 0; d < head_dim; d++) num[d] += (int64_t)e[t] * v[d];
            }
            int64_t den = sum * ((int64_t)1 << f_v);
            int16_t *o = out + (size_t)i * n_heads * head_dim + (size_t)h * head_dim;
            for (int d = 0; d < head_dim; d++) o[d] = slmc_sat16(slmc_rdiv(num[d] * ((int64_t)1 << f_out), den));
        }
    }
}
