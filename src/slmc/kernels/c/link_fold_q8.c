#include "slmc_kernels.h"

int slmc_link_parent(void);
int slmc_link_child(int i);
void slmc_link_send(int peer, const void *buf, size_t bytes);
void slmc_link_recv(int peer, void *buf, size_t bytes);
int slmc_link_broadcast(void *buf, size_t bytes);
void slmc_link_fail(const char *what);

/* linear_q8.c's float half over every chip, in one chip's order: the running sum (out, and with
 * `carry` the int32 dot of a group split between chips, in carry) travels depth first through the
 * reduction tree, whose preorder is the chips' column order; each chip adds
 * ((float)dot) * ws * xs of the groups it completes, as linear_q8.c does, then chip 0 adds the bias
 * and broadcasts the result down the tree. dots/ws/xs: this chip's segments (NULL, n_seg 0: none);
 * tmp: one message (n * m floats, and as many int32 with carry). */
void slmc_fold_q8(float *out, const int32_t *dots, const float *ws, const float *xs, const float *b, float *tmp,
                  int n, int m, int k, int offset, int group, int carry) {
    size_t count = (size_t)n * m, bytes = count * sizeof(float) * (carry ? 2 : 1);
    int32_t *cr = (int32_t *)(tmp + count);
    int parent = slmc_link_parent();
    if (parent >= 0) slmc_link_recv(parent, tmp, bytes);
    else memset(tmp, 0, bytes);
    if (dots) {
        int first = offset / group, n_seg = (offset + k - 1) / group - first + 1;
        for (int s = 0; s < n; s++)
            for (int i = 0; i < m; i++) {
                float val = tmp[(size_t)s * m + i];
                int32_t c = carry ? cr[(size_t)s * m + i] : 0;
                const int32_t *d = dots + ((size_t)s * m + i) * n_seg;
                for (int g = 0; g < n_seg; g++) {
                    int starts = (first + g) * group >= offset, ends = (first + g + 1) * group <= offset + k;
                    int32_t ival = starts ? d[g] : c + d[g];
                    if (ends) {
                        val += ((float)ival) * ws[(size_t)i * n_seg + g] * xs[(size_t)s * n_seg + g];
                        c = 0;
                    } else {
                        c = ival;
                    }
                }
                tmp[(size_t)s * m + i] = val;
                if (carry) cr[(size_t)s * m + i] = c;
            }
    }
    for (int i = 0, child; (child = slmc_link_child(i)) >= 0; i++) {
        slmc_link_send(child, tmp, bytes);
        slmc_link_recv(child, tmp, bytes);
    }
    if (parent >= 0) {
        slmc_link_send(parent, tmp, bytes);
    } else {
        for (size_t j = 0; j < count; j++) out[j] = tmp[j] + (b ? b[j % m] : 0.0f);
    }
    if (!slmc_link_broadcast(out, count * sizeof(float))) slmc_link_fail("fold_q8");
}
