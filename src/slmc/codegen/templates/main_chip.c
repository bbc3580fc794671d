/* One chip of a model partitioned over SLMC_N_CHIPS chips (slmc compile --chips N; chip.h says
 * which). Chip 0 runs main_llm.c's generation loop: before every step it broadcasts a control
 * message (position, rows; rows 0 for a decode step) down the links, then runs the step, whose
 * collectives the other chips join. The other chips follow: they run every step chip 0 announces
 * until chip 0 closes its links. Events as in main_llm.c, plus per chip
 *   S sent_to_<peer> <bytes>   the bytes this chip sent to each neighbour in the tree
 * Arguments: main_llm.c's (chip 0), and -L DIR where the link sockets live (every chip). */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <time.h>
#include "model.h"
#include "chip.h"

int slmc_link_open(int chip, int n_chips, int fan_in, const char *dir);
int slmc_link_broadcast(void *buf, size_t bytes);
void slmc_link_close(void);

#define LOGIT_ROWS (SLMC_PREFILL_CHUNK > 0 ? SLMC_PREFILL_CHUNK : 1)

#if SLMC_CHIP == 0
static double now_s(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

int slmc_sample(const float *logits, int n, float temperature, float topp, uint64_t *rng, float *probs, int *idx);

#define MAX_PROMPT SLMC_SEQ_LEN
static float logits[LOGIT_ROWS * SLMC_VOCAB_SIZE];
static float probs[SLMC_VOCAB_SIZE];
static int sort_idx[SLMC_VOCAB_SIZE];
static int32_t prompt[MAX_PROMPT];

static int parse_ids(const char *s, int32_t *out, int max) {
    int n = 0;
    while (*s && n < max) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s) return -1;
        if (v < 0 || v >= SLMC_VOCAB_SIZE) return -2;
        out[n++] = (int32_t)v;
        s = *end == ',' ? end + 1 : end;
    }
    return n;
}

static void announce(int pos, int rows) {
    int32_t ctl[2] = {pos, rows};
    slmc_link_broadcast(ctl, sizeof ctl);
}

static int run(int argc, char **argv, const char **link_dir) {
    int steps = 256;
    float temperature = 0.0f, topp = 0.9f;
    unsigned long long seed = 42;
    const char *ids = NULL, *logits_path = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-n")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-t")) temperature = (float)atof(argv[i + 1]);
        else if (!strcmp(argv[i], "-p")) topp = (float)atof(argv[i + 1]);
        else if (!strcmp(argv[i], "-s")) seed = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "-i")) ids = argv[i + 1];
        else if (!strcmp(argv[i], "-l")) logits_path = argv[i + 1];
        else if (!strcmp(argv[i], "-L")) *link_dir = argv[i + 1];
        else { fprintf(stderr, "E unknown argument %s\n", argv[i]); return 2; }
    }
    if (steps <= 0 || steps > SLMC_SEQ_LEN) steps = SLMC_SEQ_LEN;
    int n_prompt = 1;
    prompt[0] = 1; /* BOS */
    if (ids) {
        n_prompt = parse_ids(ids, prompt, MAX_PROMPT);
        if (n_prompt <= 0) { fprintf(stderr, "E bad prompt ids (each must be in 0..%d)\n", SLMC_VOCAB_SIZE - 1); return 2; }
    }
    if (n_prompt > steps) n_prompt = steps;
    FILE *lf = NULL;
    if (logits_path && !(lf = fopen(logits_path, "wb"))) { fprintf(stderr, "E cannot write %s\n", logits_path); return 2; }
    uint64_t rng = seed ? seed : 1;
    slmc_link_open(SLMC_CHIP, SLMC_N_CHIPS, SLMC_FAN_IN, *link_dir);
    slmc_reset();
    double t0 = now_s();
    int pos = 0;
    while (pos < n_prompt - 1) {
        int c = n_prompt - 1 - pos;
        if (c > LOGIT_ROWS) c = LOGIT_ROWS;
        announce(pos, c);
        slmc_prefill(prompt + pos, c, pos, logits);
        if (lf) fwrite(logits, sizeof(float), (size_t)c * SLMC_VOCAB_SIZE, lf);
        pos += c;
    }
    int token = prompt[n_prompt - 1];
    for (; pos < steps; pos++) {
        announce(pos, 0);
        slmc_decode(token, pos, logits);
        if (lf) fwrite(logits, sizeof(float), SLMC_VOCAB_SIZE, lf);
        int next = slmc_sample(logits, SLMC_VOCAB_SIZE, temperature, topp, &rng, probs, sort_idx);
        if (next == 1) { pos++; break; } /* BOS ends a story, as in llama2.c */
        printf("T %d\n", next);
        fflush(stdout);
        token = next;
    }
    double dt = now_s() - t0;
    slmc_link_close();
    printf("S positions %d\nS seconds %.6f\n", pos, dt);
    if (lf) fclose(lf);
    return 0;
}
#else
static int32_t no_tokens[LOGIT_ROWS];

static int run(int argc, char **argv, const char **link_dir) {
    for (int i = 1; i + 1 < argc; i += 2)
        if (!strcmp(argv[i], "-L")) *link_dir = argv[i + 1];
    slmc_link_open(SLMC_CHIP, SLMC_N_CHIPS, SLMC_FAN_IN, *link_dir);
    slmc_reset();
    int32_t ctl[2];
    int steps = 0;
    while (slmc_link_broadcast(ctl, sizeof ctl)) {
        if (ctl[1] > 0) slmc_prefill(no_tokens, ctl[1], ctl[0], NULL);
        else slmc_decode(0, ctl[0], NULL);
        steps++;
    }
    slmc_link_close();
    printf("S steps %d\n", steps);
    return 0;
}
#endif

int main(int argc, char **argv) {
    const char *link_dir = ".";
    return run(argc, argv, &link_dir);
}
