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

int slmc_argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++) if (x[i] > x[best]) best = i;
    return best;
}

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
    /* keep candidates above (1 - topp) / (n - 1) like llama2.c, then insertion-sort them by
     * probability, descending (stable, no qsort callback, no malloc) */
    float cutoff = (1.0f - topp) / (float)(n - 1);
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (probs[i] < cutoff) continue;
        int j = m++;
        while (j > 0 && probs[idx[j - 1]] < probs[i]) { idx[j] = idx[j - 1]; j--; }
        idx[j] = i;
    }
    float cum = 0.0f;
    int last = m - 1;
    for (int i = 0; i < m; i++) { cum += probs[idx[i]]; if (cum > topp) { last = i; break; } }
    float r = coin * cum, cdf = 0.0f;
    for (int i = 0; i <= last; i++) { cdf += probs[idx[i]]; if (r < cdf) return idx[i]; }
    return idx[last];
}
