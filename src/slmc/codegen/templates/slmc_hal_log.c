/* slmc_set_opp on host and emulators: nothing to switch, so it records each transition (the first
 * SLMC_HAL_LOG_MAX of them; it counts all); main prints them at the end (printing here would add to the
 * instruction counts of the forward pass). Its static log is counted by the fit check (codegen/pico.py). */
#include <stdio.h>
#include "slmc_hal.h"

#define SLMC_HAL_LOG_MAX 256
static int cur_mv = 1100, cur_khz = 150000;
static int log_mv[SLMC_HAL_LOG_MAX], log_khz[SLMC_HAL_LOG_MAX];
static long n_transitions;

void slmc_set_opp(int voltage_mv, int khz) {
    if (voltage_mv == cur_mv && khz == cur_khz) return;
    if (n_transitions < SLMC_HAL_LOG_MAX) {
        log_mv[n_transitions] = voltage_mv;
        log_khz[n_transitions] = khz;
    }
    n_transitions++;
    cur_mv = voltage_mv;
    cur_khz = khz;
}

void slmc_hal_report(void) {
    long n = n_transitions < SLMC_HAL_LOG_MAX ? n_transitions : SLMC_HAL_LOG_MAX;
    for (long i = 0; i < n; i++) printf("O %d %d\n", log_mv[i], log_khz[i]);
    printf("S opp_transitions %ld\n", n_transitions);
}
