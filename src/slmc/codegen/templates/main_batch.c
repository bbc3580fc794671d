/* Continuous batching around model.c's slmc_step (slmc compile --batch B): many sequences, B KV slots.
 * A queue of requests (read from a file as slots free up: a request waits, it is never dropped); each step
 * admits waiting requests into free slots, then fills its row budget (SLMC_ROWS rows, at most SLMC_BATCH) with
 * one decode row per sequence past its prompt (taken in turn from a rotating slot when they outnumber the
 * rows) and, in the rows left, prompt chunks of the others in order of arrival; a
 * sequence leaves on BOS or after `-n` positions, and its slot takes the next request. Every row computes
 * what it computes when its sequence runs alone (main_llm.c), so each sequence's ids are those of a single
 * run with the same seed. Only the rows that are sampled (a decode row, the last row of a prompt) ask for
 * logits (slmc_step_rows): the others skip the final norm and the classifier. No malloc: the requests, slots and
 * logits are the static arrays below (counted by slmc's fit check, targets/fit.py: main_batch_buffers).
 * Arguments: -n positions per sequence, prompt included  -t temperature  -p top-p  -s seed
 *            -f FILE (one request per line: its prompt ids, comma-separated, fed as given)  -i id,id,... (one)
 *            -a 1: logits for every row (slmc_step_rows with want NULL), to measure what the skip saves
 * Events, one line each:
 *   A <seq> <slot> <step>                       sequence <seq> (0, 1, ... in file order) admitted before <step>
 *   R <step> <seq> <pos> <rows>                 <rows> rows of <seq> from position <pos> in step <step>
 *   G <seq> <id>                                a generated token
 *   D <seq> <positions> <admitted> <done> <s>   finished after step <done>; <s>: seconds since the start (host)
 *   X <seq> <message>                           this request is refused; the others go on
 *   S <key> <value>                             statistics at the end
 * On an MCU target it runs under semihosting like main_llm.c; main calls slmc_step_rows directly, which is where
 * the instruction counters (toolchain/count.py) find the model calls. */
#ifdef SLMC_HOST
#define _POSIX_C_SOURCE 199309L
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include "model.h"
#ifdef SLMC_HOST
#include <time.h>
static double now_s(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
#else
static double now_s(void) { return 0.0; }
#endif

int slmc_sample(const float *logits, int n, float temperature, float topp, uint64_t *rng, float *probs, int *idx);

#define QUEUE (2 * SLMC_BATCH) /* requests held: one per slot, and as many read ahead */
#define NONE (-1)

typedef struct { int seq, len, bad; int32_t ids[SLMC_SEQ_LEN]; } Request;
typedef struct { int req, pos, token, admitted; uint64_t rng; } Slot;

static Request pool[QUEUE];
static int free_reqs[QUEUE], n_free;
static int pending[QUEUE], p_head, p_count;     /* a ring of requests waiting for a slot, in arrival order */
static Slot slots[SLMC_BATCH];
static float logits[SLMC_ROWS * SLMC_VOCAB_SIZE];
static float probs[SLMC_VOCAB_SIZE];
static int sort_idx[SLMC_VOCAB_SIZE];
static int row_tok[SLMC_ROWS], row_pos[SLMC_ROWS], row_slot[SLMC_ROWS];
static unsigned char row_want[SLMC_ROWS];

static FILE *src_file;
static const char *src_text;

static int src_getc(void) {
    if (src_file) return fgetc(src_file);
    if (src_text && *src_text) return (unsigned char)*src_text++;
    return EOF;
}

/* The next line's prompt ids into r; 0 at the end of the input. r->bad: 1 not ids, 2 an id outside the
 * vocabulary, 3 more ids than the context holds (r->len counts them all), 4 none. */
static int read_request(Request *r) {
    int c = src_getc(), any = 0;
    long v = 0;
    int digits = 0;
    r->len = 0;
    r->bad = 0;
    if (c == EOF) return 0;
    for (;; c = src_getc()) {
        if (c >= '0' && c <= '9') {
            if (v < 100000000L) v = v * 10 + (c - '0');
            digits++;
            any = 1;
            continue;
        }
        if (c == ',' || c == '\n' || c == EOF) {
            if (digits) {
                if (v >= SLMC_VOCAB_SIZE) r->bad = r->bad ? r->bad : 2;
                if (r->len < SLMC_SEQ_LEN) r->ids[r->len] = (int32_t)v;
                r->len++;
            } else if (c == ',') {
                r->bad = r->bad ? r->bad : 1;
            }
            v = 0;
            digits = 0;
            if (c != ',') break;
        } else if (c != ' ' && c != '\r') {
            r->bad = r->bad ? r->bad : 1;
        }
    }
    if (!r->bad && r->len > SLMC_SEQ_LEN) r->bad = 3;
    if (!r->bad && !any) r->bad = 4;
    return 1;
}

int main(int argc, char **argv) {
    int steps = 256;
    float temperature = 0.0f, topp = 0.9f;
    unsigned long long seed = 42;
    const char *path = NULL;
    int all_logits = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-n")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-t")) temperature = (float)atof(argv[i + 1]);
        else if (!strcmp(argv[i], "-p")) topp = (float)atof(argv[i + 1]);
        else if (!strcmp(argv[i], "-s")) seed = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "-f")) path = argv[i + 1];
        else if (!strcmp(argv[i], "-i")) src_text = argv[i + 1];
        else if (!strcmp(argv[i], "-a")) all_logits = atoi(argv[i + 1]) != 0;
        else { fprintf(stderr, "E unknown argument %s\n", argv[i]); return 2; }
    }
    if (steps <= 0 || steps > SLMC_SEQ_LEN) steps = SLMC_SEQ_LEN;
    if (path && !(src_file = fopen(path, "r"))) { fprintf(stderr, "E cannot read %s\n", path); return 2; }
    if (!path && !src_text) src_text = "1"; /* no prompt: one sequence from BOS, as main_llm.c */
    for (int i = 0; i < QUEUE; i++) free_reqs[n_free++] = QUEUE - 1 - i;
    for (int k = 0; k < SLMC_BATCH; k++) slots[k].req = NONE;
    slmc_reset();
    double t0 = now_s();
    int step = 0, seqs = 0, eof = 0, active = 0;
    long rows = 0, generated = 0, logit_rows = 0;
    for (;;) {
        /* read ahead while a request buffer is free: the rest wait in the input */
        while (!eof && n_free > 0) {
            int r = free_reqs[--n_free];
            if (!read_request(&pool[r])) { free_reqs[n_free++] = r; eof = 1; break; }
            Request *q = &pool[r];
            q->seq = seqs++;
            if (!q->bad && q->len > steps) q->bad = 5;
            if (q->bad) {
                if (q->bad == 3) printf("X %d a prompt of %d tokens is longer than the context (%d positions)\n",
                                        q->seq, q->len, SLMC_SEQ_LEN);
                else if (q->bad == 5) printf("X %d a prompt of %d tokens is longer than -n %d\n", q->seq, q->len, steps);
                else if (q->bad == 2) printf("X %d a prompt id outside 0..%d\n", q->seq, SLMC_VOCAB_SIZE - 1);
                else if (q->bad == 4) printf("X %d an empty prompt\n", q->seq);
                else printf("X %d the line is not comma-separated ids\n", q->seq);
                free_reqs[n_free++] = r;
                continue;
            }
            pending[(p_head + p_count++) % QUEUE] = r;
        }
        /* admit, first come first served */
        for (int k = 0; k < SLMC_BATCH && p_count > 0; k++) {
            if (slots[k].req != NONE) continue;
            int r = pending[p_head];
            p_head = (p_head + 1) % QUEUE;
            p_count--;
            slots[k] = (Slot){r, 0, pool[r].ids[0], step, seed ? seed : 1};
            active++;
            printf("A %d %d %d\n", pool[r].seq, k, step);
        }
        if (!active) break;
        /* this step's rows: a decode row for each sequence past its prompt, then prompt chunks by arrival;
         * out[k]: where the logits of slot k's sampled row land (the wanted rows' logits are packed in row order) */
        int n = 0, m = 0, count[SLMC_BATCH], out[SLMC_BATCH];
        for (int k = 0; k < SLMC_BATCH; k++) count[k] = 0;
        /* with fewer rows than slots, the decode rows start from a slot that moves on every step: each takes its turn */
        int start = SLMC_ROWS < SLMC_BATCH ? step % SLMC_BATCH : 0;
        for (int j = 0; j < SLMC_BATCH && n < SLMC_ROWS; j++) {
            int k = (start + j) % SLMC_BATCH;
            Slot *s = &slots[k];
            if (s->req == NONE || s->pos < pool[s->req].len) continue;
            count[k] = 1;
            row_tok[n] = s->token; row_pos[n] = s->pos; row_slot[n] = k; row_want[n] = 1;
            out[k] = all_logits ? n : m;
            n++;
            m++;
        }
        for (;;) {
            int best = NONE;
            for (int k = 0; k < SLMC_BATCH; k++) {
                Slot *s = &slots[k];
                if (s->req != NONE && !count[k] && s->pos < pool[s->req].len
                    && (best == NONE || pool[s->req].seq < pool[slots[best].req].seq)) best = k;
            }
            if (best == NONE || n == SLMC_ROWS) break;
            Slot *s = &slots[best];
            int c = pool[s->req].len - s->pos;
            if (c > SLMC_ROWS - n) c = SLMC_ROWS - n;
            count[best] = c;
            for (int j = 0; j < c; j++) {
                row_tok[n] = pool[s->req].ids[s->pos + j]; row_pos[n] = s->pos + j; row_slot[n] = best; row_want[n] = 0;
                n++;
            }
            if (s->pos + c >= pool[s->req].len) { /* the prompt's last row: its logits give the first token */
                row_want[n - 1] = 1;
                out[best] = all_logits ? n - 1 : m;
                m++;
            }
        }
        int rc = slmc_step_rows(row_tok, row_pos, row_slot, n, all_logits ? NULL : row_want, logits);
        if (rc != SLMC_OK) { fprintf(stderr, "E slmc_step_rows failed with %d at step %d\n", rc, step); return 2; }
        rows += n;
        logit_rows += all_logits ? n : m;
        /* each sequence moves on by its rows; the last row of one past its prompt is sampled */
        for (int k = 0; k < SLMC_BATCH; k++) {
            if (!count[k]) continue;
            Slot *s = &slots[k];
            Request *q = &pool[s->req];
            printf("R %d %d %d %d\n", step, q->seq, s->pos, count[k]);
            s->pos += count[k];
            if (s->pos < q->len) { s->token = q->ids[s->pos]; continue; }
            int next = slmc_sample(logits + (size_t)out[k] * SLMC_VOCAB_SIZE, SLMC_VOCAB_SIZE,
                                   temperature, topp, &s->rng, probs, sort_idx);
            int done = next == 1 || s->pos >= steps; /* BOS ends a story, as in llama2.c */
            if (next != 1) { printf("G %d %d\n", q->seq, next); generated++; }
            s->token = next;
            if (done) {
                printf("D %d %d %d %d %.6f\n", q->seq, s->pos, s->admitted, step, now_s() - t0);
                free_reqs[n_free++] = s->req;
                s->req = NONE;
                active--;
            }
        }
        fflush(stdout);
        step++;
    }
    double dt = now_s() - t0;
    printf("S sequences %d\nS steps %d\nS rows %ld\nS generated %ld\nS logit_rows %ld\n", seqs, step, rows, generated,
           logit_rows);
#ifdef SLMC_HOST
    printf("S seconds %.6f\n", dt);
#else
    (void)dt;
#endif
    if (src_file) fclose(src_file);
    return 0;
}
