#include "slmc_kernels.h"
#include <stdlib.h>
#include <string.h>
#if defined(__GNUC__) && !defined(__clang__)
/* the same bits under host-native's -ffp-contract=fast too: no multiply-add is fused into one rounding */
#pragma GCC optimize("fp-contract=off")
#endif

/* linear_q8.c for the n rows of a batched host step (slmc compile --batch, x86-64), bit-identical to it (and
 * to linear_q8_sse2.c) row by row, over weights in the "rows16" order (quant/q8.py pack_rows16, written by
 * the q8 pass only where this kernel runs): output rows in blocks of 16, [block][k/4][row][4 bytes], so one
 * 64-byte vector holds 16 outputs' next 4 weights, one output per 32-bit lane; scales [block][group][row];
 * the rows after the last block row-major. Per group and token row the 4 activation bytes are broadcast and
 * VPDPBUSD adds (w + 128) * x over 4 bytes into each output's int32 lane (the weights flipped to unsigned in
 * registers, once per vector for all token rows; the lane starts at -128 * sum(x) of the group, so it ends
 * at the exact sum of w * x). The group sum is then converted, times the weight scale, times the activation
 * scale, and added to the output's float accumulator, group after group: linear_q8.c's operations in its
 * order, 16 outputs at a time. Each weight vector is loaded once for up to 8 token rows. Paths, checked at run
 * time (SLMC_NO_AVX512, SLMC_NO_VNNI, SLMC_NO_AVX2, SLMC_NO_SSE2 in the environment turn one off, for tests/batch):
 * AVX-512 VNNI (16 lanes), AVX-VNNI or AVX2 (two halves of 8 lanes; AVX2 sums |x| * w * sign(x) by pairs in
 * int16, at most 2 * 128 * 127, then in int32 as linear_q8_sse2_rows.c does; q8 weights lie in [-127, 127]),
 * SSE2 (4 outputs at a time, pmaddwd on int16), and plain C over the same order on any other machine. Groups are
 * multiples of 4 (the q8 pass stores this order only then). scratch: 4 * n * k bytes (-128 * sum(x) per token
 * row and group, int32, and on the AVX-512 path the row's sums of 4 bytes after them, then the activations
 * interleaved by 4 bytes, n * k bytes; SSE2: the activations as int16, each 4 twice). */

/* output rows i0 .. i1 - 1 (after the last block: row-major) of every token row, one at a time: linear_q8.c's loop */
static void r16_tail(float *out, const int8_t *xq, const float *xs, const int8_t *wq, const float *ws, const float *b,
                     int n, int k, int m, int group, int i0, int i1) {
    int ng = k / group;
    for (int i = i0; i < i1; i++)
        for (int s = 0; s < n; s++) {
            float val = 0.0f;
            for (int g = 0; g < ng; g++) {
                int32_t iv = 0;
                for (int j = g * group; j < (g + 1) * group; j++) iv += (int32_t)xq[(size_t)s * k + j] * wq[(size_t)i * k + j];
                val += ((float)iv) * ws[(size_t)i * ng + g] * xs[(size_t)s * ng + g];
            }
            out[(size_t)s * m + i] = val + (b ? b[i] : 0.0f);
        }
}

/* the blocks in plain C, 16 outputs of a token row at a time (loops over the 16 lanes the compiler may vectorise,
 * SSE2 on any x86-64): per output the same operations in the same order */
static void r16_blocks(float *out, const int8_t *xq, const float *xs, const int8_t *wq, const float *ws, const float *b,
                       int n, int k, int m, int group) {
    int ng = k / group;
    for (int i = 0; i + 16 <= m; i += 16) {
        const int8_t *wb = wq + (size_t)i * k;
        const float *wsb = ws + (size_t)i * ng;
        for (int s = 0; s < n; s++) {
            const int8_t *x = xq + (size_t)s * k;
            float val[16] = {0};
            for (int g = 0; g < ng; g++) {
                int32_t iv[16] = {0};
                for (int j = g * group; j < (g + 1) * group; j += 4) {
                    const int8_t *w = wb + (size_t)j * 16;  /* 16 outputs x 4 bytes */
                    int32_t x0 = x[j], x1 = x[j + 1], x2 = x[j + 2], x3 = x[j + 3];
                    for (int r = 0; r < 16; r++)
                        iv[r] += x0 * w[4 * r] + x1 * w[4 * r + 1] + x2 * w[4 * r + 2] + x3 * w[4 * r + 3];
                }
                float xsg = xs[(size_t)s * ng + g];
                for (int r = 0; r < 16; r++) val[r] += ((float)iv[r]) * wsb[(size_t)g * 16 + r] * xsg;
            }
            for (int r = 0; r < 16; r++) out[(size_t)s * m + i + r] = val[r] + (b ? b[i + r] : 0.0f);
        }
    }
}

#if defined(__GNUC__) && defined(__SSE2__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>  /* SSE2 in every x86-64 build; the wider paths in functions with their own target */

static inline int32_t r16_x4(const int8_t *p) { /* 4 activation bytes as one int32 (to broadcast) */
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

#define R16_512 __attribute__((target("avx512f,avx512bw,avx512vnni")))
/* token rows s0 .. s0 + R - 1 (R: 1..8, a constant in each copy) times the 16 output rows of the block at wb */
/* the rows' accumulators are named variables, and VPDPBUSD is written in asm with the activations' 4 bytes as a
 * broadcast memory operand: gcc 12 compiled the intrinsic over acc[8] with a register copy per instruction and a
 * stack spill inside the loop (13% slower at 8 rows); the instruction, and so every bit, is the same */
#ifndef R16_AHEAD  /* the weights are prefetched this many bytes ahead: the 9.2 MB classifier streams from memory,
                      where the hardware prefetcher alone left it 20% slower at 8 rows than weights already in L2 */
#define R16_AHEAD 2048
#endif
#define R16_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
R16_512 static inline __attribute__((always_inline)) void r16_block512(
    float *out, const int8_t *xb, const float *xs, const int32_t *xc, const int8_t *wb, const float *wsb,
    const float *b, int s0, int k, int m, int ng, int group, int i, const int R) {
    const __m512i flip = _mm512_set1_epi32((int)0x80808080u);
#define R16_DECL(S) __m512 v##S = _mm512_setzero_ps(); __m512i a##S = _mm512_setzero_si512(), b##S = a##S;
    R16_ROWS(R16_DECL)
#undef R16_DECL
    const int nq = group / 4;
    for (int g = 0; g < ng; g++) {
        const int8_t *wg = wb + (size_t)g * group * 16;
        int j0 = g * group, q = 0;
#define R16_INIT(S) if (R > S) a##S = _mm512_set1_epi32(xc[(size_t)(s0 + S) * ng + g]), b##S = _mm512_setzero_si512();
        R16_ROWS(R16_INIT)
#undef R16_INIT
#define R16_MAC(A, S, W, J) if (R > S) __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(A##S) : "v"(W), "m"(*(const int32_t *)(xb + (size_t)(J) * R + 4 * S)));
        /* two exact int32 sums per row (even and odd steps), added at the end of the group: half the chain of
         * dependent VPDPBUSDs (5 cycles each), so 8 rows keep both vector ports busy */
        for (; q + 2 <= nq; q += 2) {
            __m512i w = _mm512_xor_si512(_mm512_loadu_si512((const void *)(wg + (size_t)q * 64)), flip);
            __m512i w2 = _mm512_xor_si512(_mm512_loadu_si512((const void *)(wg + (size_t)q * 64 + 64)), flip);
            int j = j0 + 4 * q;
            _mm_prefetch((const char *)(wg + (size_t)q * 64 + R16_AHEAD), _MM_HINT_T0);
            _mm_prefetch((const char *)(wg + (size_t)q * 64 + 64 + R16_AHEAD), _MM_HINT_T0);
#define R16_MAC2(S) R16_MAC(a, S, w, j) R16_MAC(b, S, w2, j + 4)
            R16_ROWS(R16_MAC2)
#undef R16_MAC2
        }
        if (q < nq) {
            __m512i w = _mm512_xor_si512(_mm512_loadu_si512((const void *)(wg + (size_t)q * 64)), flip);
            int j = j0 + 4 * q;
#define R16_MAC1(S) R16_MAC(a, S, w, j)
            R16_ROWS(R16_MAC1)
#undef R16_MAC1
        }
#undef R16_MAC
#define R16_ADD(S) if (R > S) a##S = _mm512_add_epi32(a##S, b##S);
        R16_ROWS(R16_ADD)
#undef R16_ADD
        __m512 wsv = _mm512_loadu_ps(wsb + (size_t)g * 16);
#define R16_SCALE(S) if (R > S) v##S = _mm512_add_ps(v##S, _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(a##S), wsv), \
                                                                       _mm512_set1_ps(xs[(size_t)(s0 + S) * ng + g])));
        R16_ROWS(R16_SCALE)
#undef R16_SCALE
    }
    __m512 bv = b ? _mm512_loadu_ps(b + i) : _mm512_setzero_ps();
#define R16_STORE(S) if (R > S) _mm512_storeu_ps(out + (size_t)(s0 + S) * m + i, _mm512_add_ps(v##S, bv));
    R16_ROWS(R16_STORE)
#undef R16_STORE
}

R16_512 static void r16_avx512(float *out, const int8_t *xq, const float *xs, const int32_t *xc, const int8_t *wq,
                               const float *ws, const float *b, int n, int k, int m, int group, int8_t *xi) {
    int ng = k / group;
    /* each block of up to 8 token rows' activations interleaved by 4 bytes ([k/4][rows][4]), so that one pointer
     * and constant displacements reach every row's next 4 bytes (8 row pointers stepped in the loop cost 8 integer
     * adds per 16 VPDPBUSDs, on the ports the vector work needs) */
    for (int s = 0; s < n; s += 8) {
        int r = n - s < 8 ? n - s : 8;
        if (r == 1) break;  /* one row: its own bytes are that order (read in place below) */
        for (int q = 0; q < k / 4; q++)
            for (int t = 0; t < r; t++) memcpy(xi + (size_t)s * k + ((size_t)q * r + t) * 4, xq + (size_t)(s + t) * k + 4 * q, 4);
    }
    for (int i = 0; i + 16 <= m; i += 16) {
        const int8_t *wb = wq + (size_t)i * k;
        const float *wsb = ws + (size_t)i * ng;
        for (int s = 0; s < n; s += 8) {
            switch (n - s < 8 ? n - s : 8) {
#define R16_CASE(R) case R: r16_block512(out, (R == 1 ? xq : xi) + (size_t)s * k, xs, xc, wb, wsb, b, s, k, m, ng, group, i, R); break;
                R16_CASE(1) R16_CASE(2) R16_CASE(3) R16_CASE(4) R16_CASE(5) R16_CASE(6) R16_CASE(7) R16_CASE(8)
#undef R16_CASE
            }
        }
    }
}

/* AVX-VNNI: (w + 128) * x by fours into int32 lanes from -128 * sum(x); AVX2: |x| * (w * sign(x)) by pairs
 * (vpmaddubsw), then pairs of those (vpmaddwd by 1), from 0 */
#define R16_MAC_vnni(A, W, X) A = _mm256_dpbusd_avx_epi32(A, _mm256_xor_si256(W, flip), X)
#define R16_MAC_avx2(A, W, X) A = _mm256_add_epi32(A, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(X), \
                                                                      _mm256_sign_epi8(W, X)), ones))
#define R16_START_vnni(S, G) _mm256_set1_epi32(xc[(size_t)(s0 + (S)) * ng + (G)])
#define R16_START_avx2(S, G) _mm256_setzero_si256()

/* r16_half_S: token rows s0 .. s0 + R - 1 (R: 1..4) times the 8 output rows of half h of the block at wb */
#define R16_DEFINE256(S, TARGET)                                                                                    \
    __attribute__((target(TARGET))) static inline __attribute__((always_inline)) void r16_half_##S(               \
        float *out, const int8_t *xq, const float *xs, const int32_t *xc, const int8_t *wb, const float *wsb,      \
        const float *b, int s0, int k, int m, int ng, int group, int i, int h, const int R) {                      \
        const __m256i flip = _mm256_set1_epi32((int)0x80808080u), ones = _mm256_set1_epi16(1);                    \
        __m256 v[4];                                                                                               \
        __m256i acc[4];                                                                                            \
        (void)flip, (void)ones, (void)xc;                                                                          \
        _Pragma("GCC unroll 4") for (int s = 0; s < R; s++) v[s] = _mm256_setzero_ps();                            \
        for (int g = 0; g < ng; g++) {                                                                             \
            const int8_t *wg = wb + (size_t)g * group * 16 + 32 * h, *xg = xq + (size_t)s0 * k + (size_t)g * group; \
            _Pragma("GCC unroll 4") for (int s = 0; s < R; s++) acc[s] = R16_START_##S(s, g);                      \
            for (int q = 0; q < group / 4; q++) {                                                                  \
                __m256i w = _mm256_loadu_si256((const __m256i *)(wg + (size_t)q * 64));                            \
                _Pragma("GCC unroll 4") for (int s = 0; s < R; s++)                                                \
                    R16_MAC_##S(acc[s], w, _mm256_set1_epi32(r16_x4(xg + (size_t)s * k + 4 * q)));                 \
            }                                                                                                      \
            __m256 wsv = _mm256_loadu_ps(wsb + (size_t)g * 16 + 8 * h);                                            \
            _Pragma("GCC unroll 4") for (int s = 0; s < R; s++)                                                    \
                v[s] = _mm256_add_ps(v[s], _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(acc[s]), wsv),           \
                                                         _mm256_set1_ps(xs[(size_t)(s0 + s) * ng + g])));          \
        }                                                                                                          \
        __m256 bv = b ? _mm256_loadu_ps(b + i + 8 * h) : _mm256_setzero_ps();                                      \
        _Pragma("GCC unroll 4") for (int s = 0; s < R; s++)                                                        \
            _mm256_storeu_ps(out + (size_t)(s0 + s) * m + i + 8 * h, _mm256_add_ps(v[s], bv));                     \
    }                                                                                                              \
    __attribute__((target(TARGET))) static void r16_##S(float *out, const int8_t *xq, const float *xs,             \
                                                        const int32_t *xc, const int8_t *wq, const float *ws,      \
                                                        const float *b, int n, int k, int m, int group) {          \
        int ng = k / group;                                                                                        \
        for (int i = 0; i + 16 <= m; i += 16)                                                                      \
            for (int h = 0; h < 2; h++)                                                                            \
                for (int s = 0; s < n; s += 4) {                                                                   \
                    const int8_t *wb = wq + (size_t)i * k;                                                         \
                    const float *wsb = ws + (size_t)i * ng;                                                        \
                    int r = n - s < 4 ? n - s : 4;                                                                 \
                    if (r == 4) r16_half_##S(out, xq, xs, xc, wb, wsb, b, s, k, m, ng, group, i, h, 4);            \
                    else if (r == 3) r16_half_##S(out, xq, xs, xc, wb, wsb, b, s, k, m, ng, group, i, h, 3);       \
                    else if (r == 2) r16_half_##S(out, xq, xs, xc, wb, wsb, b, s, k, m, ng, group, i, h, 2);       \
                    else r16_half_##S(out, xq, xs, xc, wb, wsb, b, s, k, m, ng, group, i, h, 1);                   \
                }                                                                                                  \
    }
R16_DEFINE256(vnni, "avx2,avxvnni")
R16_DEFINE256(avx2, "avx2")

/* SSE2 (any x86-64): 4 outputs (a quarter of a block) at a time; their weights sign-extended to int16 once for up to
 * 4 token rows, pmaddwd with the row's 4 activations as int16 twice over (xd, widened once per call) gives each
 * output's two pair sums, added into one exact int32 per output at the end of the group */
static inline __attribute__((always_inline)) void r16_quarter_sse2(
    float *out, const int16_t *xd, const float *xs, const int8_t *wb, const float *wsb, const float *b, int s0, int k,
    int m, int ng, int group, int i, int c, const int R) {
    const __m128i zero = _mm_setzero_si128();
    __m128 v[4];
    __m128i lo[4], hi[4];
    for (int s = 0; s < R; s++) v[s] = _mm_setzero_ps();
    for (int g = 0; g < ng; g++) {
        for (int s = 0; s < R; s++) lo[s] = hi[s] = zero;
        for (int j = g * group; j < (g + 1) * group; j += 4) {
            __m128i w = _mm_loadu_si128((const __m128i *)(wb + (size_t)j * 16 + 16 * c)), sign = _mm_cmpgt_epi8(zero, w);
            __m128i wl = _mm_unpacklo_epi8(w, sign), wh = _mm_unpackhi_epi8(w, sign);
            for (int s = 0; s < R; s++) {
                __m128i x = _mm_loadu_si128((const __m128i *)(xd + ((size_t)(s0 + s) * k + j) * 2));
                lo[s] = _mm_add_epi32(lo[s], _mm_madd_epi16(wl, x));
                hi[s] = _mm_add_epi32(hi[s], _mm_madd_epi16(wh, x));
            }
        }
        __m128 wsv = _mm_loadu_ps(wsb + (size_t)g * 16 + 4 * c);
        for (int s = 0; s < R; s++) {  /* [o0 o0 o1 o1] [o2 o2 o3 o3] -> [o0 o1 o2 o3], exact int32 adds */
            __m128 l = _mm_castsi128_ps(lo[s]), h = _mm_castsi128_ps(hi[s]);
            __m128i sum = _mm_add_epi32(_mm_castps_si128(_mm_shuffle_ps(l, h, _MM_SHUFFLE(2, 0, 2, 0))),
                                        _mm_castps_si128(_mm_shuffle_ps(l, h, _MM_SHUFFLE(3, 1, 3, 1))));
            v[s] = _mm_add_ps(v[s], _mm_mul_ps(_mm_mul_ps(_mm_cvtepi32_ps(sum), wsv), _mm_set1_ps(xs[(size_t)(s0 + s) * ng + g])));
        }
    }
    __m128 bv = b ? _mm_loadu_ps(b + i + 4 * c) : _mm_setzero_ps();
    for (int s = 0; s < R; s++) _mm_storeu_ps(out + (size_t)(s0 + s) * m + i + 4 * c, _mm_add_ps(v[s], bv));
}

static void r16_sse2(float *out, const int8_t *xq, const float *xs, int16_t *xd, const int8_t *wq, const float *ws,
                     const float *b, int n, int k, int m, int group) {
    int ng = k / group;
    for (int s = 0; s < n; s++)  /* x[j..j+3] as int16, twice: one pmaddwd operand per 4 activations */
        for (int j = 0; j < k; j += 4)
            for (int t = 0; t < 8; t++) xd[((size_t)s * k + j) * 2 + t] = xq[(size_t)s * k + j + t % 4];
    for (int i = 0; i + 16 <= m; i += 16)
        for (int c = 0; c < 4; c++)
            for (int s = 0; s < n; s += 4) {
                const int8_t *wb = wq + (size_t)i * k;
                const float *wsb = ws + (size_t)i * ng;
                int r = n - s < 4 ? n - s : 4;
                if (r == 4) r16_quarter_sse2(out, xd, xs, wb, wsb, b, s, k, m, ng, group, i, c, 4);
                else if (r == 3) r16_quarter_sse2(out, xd, xs, wb, wsb, b, s, k, m, ng, group, i, c, 3);
                else if (r == 2) r16_quarter_sse2(out, xd, xs, wb, wsb, b, s, k, m, ng, group, i, c, 2);
                else r16_quarter_sse2(out, xd, xs, wb, wsb, b, s, k, m, ng, group, i, c, 1);
            }
}

/* xc[s][g] = -128 * the sum of row s's activations in group g (exact int32 sums, in any order): VPDPBUSD of ones and
 * 64 activation bytes gives the sums of 16 runs of 4 bytes, stored after the n * ng results in scratch (which holds
 * n * k int32, ng <= k / 4), then group / 4 of them added per group */
R16_512 static void r16_sums512(int32_t *xc, const int8_t *xq, int n, int k, int group) {
    int ng = k / group;
    int32_t *s4 = xc + (size_t)n * ng;
    const __m512i ones = _mm512_set1_epi8(1);
    for (int s = 0; s < n; s++) {
        const int8_t *x = xq + (size_t)s * k;
        for (int j = 0; j < k; j += 64) {
            __mmask64 m = k - j >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << (k - j)) - 1;
            __m512i v = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, _mm512_maskz_loadu_epi8(m, x + j));
            _mm512_mask_storeu_epi32(s4 + j / 4, (__mmask16)(k - j >= 64 ? 0xFFFF : (1u << ((k - j) / 4)) - 1), v);
        }
        for (int g = 0; g < ng; g++) {
            int32_t sum = 0;
            for (int q = 0; q < group / 4; q++) sum += s4[g * (group / 4) + q];
            xc[(size_t)s * ng + g] = -128 * sum;
        }
    }
}

static int r16_path(void) { /* 3: AVX-512 VNNI, 2: AVX-VNNI, 1: AVX2, 0: SSE2; asked once */
    static int path = -1;
    if (path < 0) {
        __builtin_cpu_init();
        int avx2 = !getenv("SLMC_NO_AVX2") && __builtin_cpu_supports("avx2");
        int vnni = avx2 && !getenv("SLMC_NO_VNNI");
        path = vnni && !getenv("SLMC_NO_AVX512") && __builtin_cpu_supports("avx512f") &&
                       __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni") ? 3
               : vnni && __builtin_cpu_supports("avxvnni") ? 2
               : avx2;
    }
    return path;
}
#endif

void slmc_linear_q8_rows16(float *out, const int8_t *xq, const float *xs, const int8_t *wq, const float *ws,
                           const float *b, void *scratch, int n, int k, int m, int group) {
#if defined(__GNUC__) && defined(__SSE2__) && (defined(__x86_64__) || defined(__i386__))
    int path = r16_path();
    if (path == 0 && !getenv("SLMC_NO_SSE2"))
        r16_sse2(out, xq, xs, (int16_t *)scratch, wq, ws, b, n, k, m, group);
    else if (path > 0) {
        int ng = k / group;
        int32_t *xc = (int32_t *)scratch;
        if (path == 3) r16_sums512(xc, xq, n, k, group);
        else
            for (int s = 0; s < n; s++)
                for (int g = 0; g < ng; g++) {
                    int32_t sum = 0;
                    for (int j = 0; j < group; j++) sum += xq[(size_t)s * k + (size_t)g * group + j];
                    xc[(size_t)s * ng + g] = -128 * sum;
                }
        if (path == 3) r16_avx512(out, xq, xs, xc, wq, ws, b, n, k, m, group, (int8_t *)(xc + (size_t)n * ng + k / 4));
        else if (path == 2) r16_vnni(out, xq, xs, xc, wq, ws, b, n, k, m, group);
        else r16_avx2(out, xq, xs, xc, wq, ws, b, n, k, m, group);
    } else
#endif
        r16_blocks(out, xq, xs, wq, ws, b, n, k, m, group);
    (void)scratch;
    r16_tail(out, xq, xs, wq, ws, b, n, k, m, group, m / 16 * 16, m);
}
