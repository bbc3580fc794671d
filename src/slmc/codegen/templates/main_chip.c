/* One chip of a model partitioned over SLMC_N_CHIPS chips (slmc compile --chips N; chip.h says
 * which). Chip 0 runs main_llm.c's generation loop (included below, copied beside this file) with
 * link hooks: before every step it broadcasts a control message (position, rows; rows 0 for a decode
 * step) down the links, then runs the step, whose collectives the other chips join. The other chips
 * follow: they run every step chip 0 announces until chip 0 closes its links. Events as in
 * main_llm.c, plus per chip
 *   S sent_to_<peer> <bytes>   the bytes this chip sent to each neighbour in the tree
 * Arguments: main_llm.c's (chip 0), and -L DIR where the link sockets live (every chip). */
#define _POSIX_C_SOURCE 199309L /* partitioned builds run on the host: clock_gettime */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "chip.h"

int slmc_link_open(int chip, int n_chips, int fan_in, const char *dir);
int slmc_link_broadcast(void *buf, size_t bytes);
void slmc_link_close(void);

static const char *link_dir = ".";

static int link_arg(const char *name, const char *value) {
    if (strcmp(name, "-L")) return 0;
    link_dir = value;
    return 1;
}

#if SLMC_CHIP == 0
static void announce(int pos, int rows) {
    int32_t ctl[2] = {pos, rows};
    slmc_link_broadcast(ctl, sizeof ctl);
}

#define SLMC_ARG_HOOK(name, value) link_arg(name, value)
#define SLMC_START_HOOK() slmc_link_open(SLMC_CHIP, SLMC_N_CHIPS, SLMC_FAN_IN, link_dir)
#define SLMC_STEP_HOOK(pos, rows) announce(pos, rows)
#define SLMC_END_HOOK() slmc_link_close()
#include "main_llm.c"
#else
#include "model.h"

#define LOGIT_ROWS (SLMC_PREFILL_CHUNK > 0 ? SLMC_PREFILL_CHUNK : 1)
static int32_t no_tokens[LOGIT_ROWS];

int main(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i += 2) link_arg(argv[i], argv[i + 1]);
    slmc_link_open(SLMC_CHIP, SLMC_N_CHIPS, SLMC_FAN_IN, link_dir);
    slmc_reset();
    int32_t ctl[2];
    int steps = 0;
    while (slmc_link_broadcast(ctl, sizeof ctl)) {
        /* a step chip 0 could not take is never announced: a failure here is a broken link */
        int rc = ctl[1] > 0 ? slmc_prefill(no_tokens, ctl[1], ctl[0], NULL) : slmc_decode(0, ctl[0], NULL);
        if (rc != SLMC_OK) { fprintf(stderr, "E chip %d: step at position %d failed with %d\n", SLMC_CHIP, ctl[0], rc); return 2; }
        steps++;
    }
    slmc_link_close();
    printf("S steps %d\n", steps);
    return 0;
}
#endif
