/* Generation loop around model.c, as in llama2.c's run.c: feed the prompt, then sample.
 * Prints one line per event so a driver can stream it:
 *   T <id>          a generated token id
 *   S <key> <value> a statistic at the end
 * Arguments: -n steps  -t temperature  -p top-p  -s seed  -i id,id,...  -l logits.f32
 * (positions processed, prompt included; the prompt ids are fed as given).
 * On an MCU target the same main runs under semihosting: picolibc's crt0 fetches the command line
 * from the emulator, stdout/stderr and the -l file go to the host, and main's return value becomes
 * the emulator's exit code. Its static arrays below are counted by slmc's fit check
 * (targets/fit.py: main_llm_buffers); main calls slmc_decode/slmc_prefill directly, which is where
 * the instruction counters (toolchain/count.py) find the model calls. */
#ifdef SLMC_HOST
#define _POSIX_C_SOURCE 199309L
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include "model.h"
#ifdef SLMC_DVFS
#include "slmc_hal.h" /* a DVFS-scheduled build: slmc_hal_report() prints the transitions made */
#endif
#ifdef SLMC_PICO
#define main slmc_main /* on the chip, slmc_pico.c's main() calls this one */
#endif
#ifdef SLMC_HOST
#include <time.h>
static double now_s(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
#endif

int slmc_sample(const float *logits, int n, float temperature, float topp, uint64_t *rng, float *probs, int *idx);

/* Hooks for a program that includes this loop (main_chip.c: chip 0 of a partitioned model); none here. */
#ifndef SLMC_ARG_HOOK
#define SLMC_ARG_HOOK(name, value) 0      /* 1: an extra argument, consumed */
#define SLMC_START_HOOK() ((void)0)       /* before slmc_reset */
#define SLMC_STEP_HOOK(pos, rows) ((void)0) /* before each step: rows 0 for a decode step */
#define SLMC_END_HOOK() ((void)0)         /* after the last step */
#endif

#define MAX_PROMPT SLMC_SEQ_LEN
#define LOGIT_ROWS (SLMC_PREFILL_CHUNK > 0 ? SLMC_PREFILL_CHUNK : 1)
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
    return *s ? -3 : n; /* more ids than the context holds: refused, not cut */
}

int main(int argc, char **argv) {
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
        else if (!SLMC_ARG_HOOK(argv[i], argv[i + 1])) { fprintf(stderr, "E unknown argument %s\n", argv[i]); return 2; }
    }
    if (steps <= 0 || steps > SLMC_SEQ_LEN) steps = SLMC_SEQ_LEN;
    int n_prompt = 1;
    prompt[0] = 1; /* BOS */
    if (ids) {
        n_prompt = parse_ids(ids, prompt, MAX_PROMPT);
        if (n_prompt == -3) { fprintf(stderr, "E more prompt ids than the context holds (%d)\n", MAX_PROMPT); return 2; }
        if (n_prompt <= 0) { fprintf(stderr, "E bad prompt ids (each must be in 0..%d)\n", SLMC_VOCAB_SIZE - 1); return 2; }
    }
    if (n_prompt > steps) n_prompt = steps;
    FILE *lf = NULL;
    if (logits_path && !(lf = fopen(logits_path, "wb"))) { fprintf(stderr, "E cannot write %s\n", logits_path); return 2; }
    uint64_t rng = seed ? seed : 1;
    SLMC_START_HOOK();
    slmc_reset();
#ifdef SLMC_HOST
    double t0 = now_s();
#endif
    /* the prompt: every position but the last through prompt steps (all logits rows kept for -l) */
    int pos = 0;
    while (pos < n_prompt - 1) {
        int c = n_prompt - 1 - pos;
        if (c > LOGIT_ROWS) c = LOGIT_ROWS;
        SLMC_STEP_HOOK(pos, c);
        int rc = slmc_prefill(prompt + pos, c, pos, logits);
        if (rc != SLMC_OK) { fprintf(stderr, "E slmc_prefill failed with %d at position %d\n", rc, pos); return 2; }
        if (lf) fwrite(logits, sizeof(float), (size_t)c * SLMC_VOCAB_SIZE, lf);
        pos += c;
    }
    int token = prompt[n_prompt - 1];
    for (; pos < steps; pos++) {
        SLMC_STEP_HOOK(pos, 0);
        int rc = slmc_decode(token, pos, logits);
        if (rc != SLMC_OK) { fprintf(stderr, "E slmc_decode failed with %d at position %d\n", rc, pos); return 2; }
        if (lf) fwrite(logits, sizeof(float), SLMC_VOCAB_SIZE, lf);
        int next = slmc_sample(logits, SLMC_VOCAB_SIZE, temperature, topp, &rng, probs, sort_idx);
        if (next == 1) { pos++; break; } /* BOS ends a story, as in llama2.c */
        printf("T %d\n", next);
        fflush(stdout);
        token = next;
    }
#ifdef SLMC_HOST
    double dt = now_s() - t0;
#endif
    SLMC_END_HOOK();
#ifdef SLMC_HOST
    printf("S positions %d\nS seconds %.6f\n", pos, dt);
#else
    printf("S positions %d\n", pos);
#endif
#ifdef SLMC_EXPERT_CACHE
    {
        uint32_t hits, misses;
        uint64_t bytes;
        slmc_expert_stats(&hits, &misses, &bytes);
        printf("S expert_hits %lu\nS expert_misses %lu\nS expert_bytes_loaded %lu\n", (unsigned long)hits,
               (unsigned long)misses, (unsigned long)bytes);
        uint32_t prefetches, prefetch_hits, planned;
        slmc_expert_prefetch_stats(&prefetches, &prefetch_hits, &planned);
        printf("S expert_prefetches %lu\nS expert_prefetch_hits %lu\nS expert_prefetch_planned %lu\n",
               (unsigned long)prefetches, (unsigned long)prefetch_hits, (unsigned long)planned);
    }
#endif
    if (lf) fclose(lf);
#ifdef SLMC_DVFS
    slmc_hal_report();
#endif
    return 0;
}
