#include "slmc_kernels.h"

/* Token selection, as in llama2.c: argmax at temperature 0, else softmax(logits / T), then
 * sampling from the smallest set of tokens whose probability reaches top-p (nucleus), drawn with
 * a seeded xorshift generator. probs and idx are caller scratch of vocab entries. */
static uint32_t slmc_random_u32(uint64_t *state) {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return (uint32_t)((*state * 0x2545F4914F6CDD1Dull) >> 32);
}

static float slmc_random_f32(uint64_t *state) { return (slmc_random_u32(state) >> 8) / 16777216.0f; }

/* a comes before b: higher probability first, lower id first among equals */
static int slmc_before(const float *p, int a, int b) { return p[a] > p[b] || (p[a] == p[b] && a < b); }

/* restore the heap below `root` (the element that comes last in the order sits on top) */
static void slmc_sift(int *h, int root, int end, const float *p) {
    while (2 * root + 1 < end) {
        int child = 2 * root + 1;
        if (child + 1 < end && slmc_before(p, h[child], h[child + 1])) child++;
        if (!slmc_before(p, h[root], h[child])) return;
        int t = h[root]; h[root] = h[child]; h[child] = t;
        root = child;
    }
}

#if defined(__SSE2__)
#include <emmintrin.h>
#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#include <stdlib.h>
/* AVX-512 in one pass: 4 x 16 lanes, each keeping its subsequence's largest value and that value's first index
 * (replaced only by a greater one, so never by a NaN), as the loop keeps them; then the largest of the lanes and
 * the smallest index among the lanes holding it (+0 and -0 compare equal there, as in the loop): the loop's index.
 * A NaN x[0] stays the loop's best (nothing compares greater): 0. */
__attribute__((target("avx512f"))) static int slmc_argmax512(const float *x, int n) {
    if (x[0] != x[0]) return 0;
    const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    __m512 b[4];
    __m512i bi[4];
    for (int a = 0; a < 4; a++) b[a] = _mm512_set1_ps(-INFINITY), bi[a] = _mm512_setzero_si512();
    for (int i = 0; i < n; i += 64)
        for (int a = 0; a < 4; a++) {
            int j = i + 16 * a, left = n - j;
            __mmask16 m = left >= 16 ? (__mmask16)0xFFFF : left > 0 ? (__mmask16)((1u << left) - 1) : 0;
            __m512 v = _mm512_maskz_loadu_ps(m, x + j);
            __mmask16 gt = _mm512_mask_cmp_ps_mask(m, v, b[a], _CMP_GT_OQ);
            b[a] = _mm512_mask_mov_ps(b[a], gt, v);
            bi[a] = _mm512_mask_mov_epi32(bi[a], gt, _mm512_add_epi32(iota, _mm512_set1_epi32(j)));
        }
    float lv[64];
    int li[64];
    for (int a = 0; a < 4; a++) _mm512_storeu_ps(lv + 16 * a, b[a]), _mm512_storeu_si512(li + 16 * a, bi[a]);
    float best = -INFINITY;
    for (int t = 0; t < 64; t++) if (lv[t] > best) best = lv[t];
    int at = n;
    for (int t = 0; t < 64; t++) if (lv[t] == best && li[t] < at) at = li[t];
    return at;
}

static int slmc_argmax_path(void) { /* 1: AVX-512 (slmc_x86_avx512f); asked once */
    static int path = -1;
    if (path < 0) path = slmc_x86_avx512f();
    return path;
}
#endif

/* x86-64 hosts: the same index in two vector passes (a batched step takes the argmax of every row's 32,000
 * logits; the loop below waits on x[best] for every element). The largest value first, as the loop keeps it:
 * maxps(x, m) is x > m ? x : m, so a NaN never wins and a NaN x[0] stays (then 0, as the loop gives); then
 * the first index whose value equals it, which is the loop's: every value before that index compares less. */
int slmc_argmax(const float *x, int n) {
#if defined(__GNUC__) && defined(__x86_64__)
    if (n >= 65 && slmc_argmax_path()) return slmc_argmax512(x, n);
#endif
    int i = 1;
    float best = x[0], lane[8];
    if (n >= 9) {
        __m128 m0 = _mm_set1_ps(x[0]), m1 = m0;
        for (; i + 8 <= n; i += 8) {
            m0 = _mm_max_ps(_mm_loadu_ps(x + i), m0);
            m1 = _mm_max_ps(_mm_loadu_ps(x + i + 4), m1);
        }
        _mm_storeu_ps(lane, m0);
        _mm_storeu_ps(lane + 4, m1);
        for (int t = 0; t < 8; t++) if (lane[t] > best) best = lane[t];
    }
    for (; i < n; i++) if (x[i] > best) best = x[i];
    if (best != best) return 0;
    __m128 b = _mm_set1_ps(best);
    for (i = 0; i + 4 <= n; i += 4) {
        int hit = _mm_movemask_ps(_mm_cmpeq_ps(_mm_loadu_ps(x + i), b));
        if (hit) return i + __builtin_ctz((unsigned)hit);
    }
    for (; x[i] != best; i++) {}
    return i;
}
#else
int slmc_argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++) if (x[i] > x[best]) best = i;
    return best;
}
#endif

int slmc_sample(const float *logits, int n, float temperature, float topp, uint64_t *rng, float *probs, int *idx) {
    if (temperature == 0.0f) return slmc_argmax(logits, n);
    float mx = logits[slmc_argmax(logits, n)], sum = 0.0f;
    for (int i = 0; i < n; i++) { probs[i] = expf((logits[i] - mx) / temperature); sum += probs[i]; }
    for (int i = 0; i < n; i++) probs[i] /= sum;
    float coin = slmc_random_f32(rng);
    if (topp <= 0.0f || topp >= 1.0f) {
        float cdf = 0.0f;
        for (int i = 0; i < n; i++) { cdf += probs[i]; if (coin < cdf) return i; }
        return n - 1;
    }
    /* keep candidates above (1 - topp) / (n - 1) like llama2.c, then heap-sort them by descending
     * probability, ties by ascending id: a total order, so the result is exactly the numpy twin's stable
     * sort, in O(m log m) with no malloc and no qsort callback state */
    float cutoff = (1.0f - topp) / (float)(n - 1);
    int m = 0;
    for (int i = 0; i < n; i++) if (probs[i] >= cutoff) idx[m++] = i;
    if (m == 0) return slmc_argmax(probs, n);
    for (int start = m / 2 - 1; start >= 0; start--) slmc_sift(idx, start, m, probs);
    for (int end = m - 1; end > 0; end--) {
        int t = idx[0]; idx[0] = idx[end]; idx[end] = t;
        slmc_sift(idx, 0, end, probs);
    }
    float cum = 0.0f;
    int last = m - 1;
    for (int i = 0; i < m; i++) { cum += probs[idx[i]]; if (cum > topp) { last = i; break; } }
    float r = coin * cum, cdf = 0.0f;
    for (int i = 0; i <= last; i++) { cdf += probs[idx[i]]; if (r < cdf) return idx[i]; }
    return idx[last];
}
