/* Host driver around model.c for a generic (non language-model) graph.
 *   model INPUTS.bin OUTPUTS.bin [-r repeats]
 * INPUTS.bin holds every graph input, in order, each starting at a 16-byte aligned offset (the
 * packing of slmc_run_packed; `slmc run DIR --inputs x.npz` writes it). OUTPUTS.bin is written the
 * same way. Prints "S seconds <t>" (mean over the repeats) for a driver to read.
 * Static buffers only, like model.c: no malloc. */
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
#endif

/* + 16: a graph without inputs (or outputs) still gets a valid array */
static uint8_t inputs[SLMC_INPUTS_BYTES + 16] __attribute__((aligned(16)));
static uint8_t outputs[SLMC_OUTPUTS_BYTES + 16] __attribute__((aligned(16)));

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "E usage: %s INPUTS.bin OUTPUTS.bin [-r repeats]\n", argv[0]); return 2; }
    int repeats = 1;
    if (argc >= 5 && !strcmp(argv[3], "-r")) repeats = atoi(argv[4]);
    if (repeats < 1) repeats = 1;
    FILE *f = fopen(argv[1], "rb");
    if (!f) { fprintf(stderr, "E cannot read %s\n", argv[1]); return 2; }
    size_t got = fread(inputs, 1, SLMC_INPUTS_BYTES, f);
    int extra = fgetc(f);
    fclose(f);
    if (got != (size_t)SLMC_INPUTS_BYTES || extra != EOF) {
        fprintf(stderr, "E %s holds %lu bytes or more, the graph takes %lu\n", argv[1], (unsigned long)got,
                (unsigned long)SLMC_INPUTS_BYTES);
        return 2;
    }
#ifdef SLMC_HOST
    double t0 = now_s();
#endif
    for (int r = 0; r < repeats; r++) slmc_run_packed(inputs, outputs);
#ifdef SLMC_HOST
    printf("S seconds %.9f\n", (now_s() - t0) / repeats);
#endif
    FILE *o = fopen(argv[2], "wb");
    if (!o) { fprintf(stderr, "E cannot write %s\n", argv[2]); return 2; }
    if (fwrite(outputs, 1, SLMC_OUTPUTS_BYTES, o) != (size_t)SLMC_OUTPUTS_BYTES) { fclose(o); return 2; }
    fclose(o);
    return 0;
}
