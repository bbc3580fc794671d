#include "slmc_kernels.h"

#define SLMC_MAX_RANK 8
int slmc_nd_next(int32_t *idx, const int32_t *shape, int dims, ptrdiff_t *off, const int32_t *str, int ld, int nops);

/* op codes (kernels/onnx.py BINARY): 0 Add 1 Sub 2 Mul 3 Div 4 Pow 5 Max 6 Min 7 Mod 8 Fmod 9 PRelu */
static void run_f32(float *o, int so, const float *a, int sa, const float *b, int sb, int n, int op) {
    int i;
    switch (op) {
    case 0: for (i = 0; i < n; i++) o[i * so] = a[i * sa] + b[i * sb]; break;
    case 1: for (i = 0; i < n; i++) o[i * so] = a[i * sa] - b[i * sb]; break;
    case 2: for (i = 0; i < n; i++) o[i * so] = a[i * sa] * b[i * sb]; break;
    case 3: for (i = 0; i < n; i++) o[i * so] = a[i * sa] / b[i * sb]; break;
    case 4: for (i = 0; i < n; i++) o[i * so] = powf(a[i * sa], b[i * sb]); break;
    /* NaN wins, as in numpy and onnxruntime (fmaxf would drop it) */
    case 5: for (i = 0; i < n; i++) { float x = a[i * sa], y = b[i * sb]; o[i * so] = (x > y || x != x) ? x : y; } break;
    case 6: for (i = 0; i < n; i++) { float x = a[i * sa], y = b[i * sb]; o[i * so] = (x < y || x != x) ? x : y; } break;
    case 7: for (i = 0; i < n; i++) {  /* Python's %: the sign of the divisor */
            float y = b[i * sb], r = fmodf(a[i * sa], y);
            o[i * so] = (r != 0.0f && ((r < 0.0f) != (y < 0.0f))) ? r + y : r;
        } break;
    case 8: for (i = 0; i < n; i++) o[i * so] = fmodf(a[i * sa], b[i * sb]); break;
    case 9: for (i = 0; i < n; i++) { float x = a[i * sa]; o[i * so] = x < 0.0f ? x * b[i * sb] : x; } break;
    }
}

/* out = a op b with numpy broadcasting. str holds out's, a's and b's strides (rank each, 0 on a
 * broadcast axis); the code generator has merged the axes it could, so the last axis is a long run. */
void slmc_binary_f32(float *out, const float *a, const float *b, int op, int rank, const int32_t *shape, const int32_t *str) {
    int32_t idx[SLMC_MAX_RANK] = {0};
    ptrdiff_t off[3] = {0, 0, 0};
    int r = rank - 1;
    do {
        run_f32(out + off[0], str[r], a + off[1], str[rank + r], b + off[2], str[2 * rank + r], shape[r], op);
    } while (slmc_nd_next(idx, shape, r, off, str, rank, 3));
}
