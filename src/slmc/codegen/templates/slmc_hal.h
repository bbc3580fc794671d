/* The DVFS HAL of a scheduled build (slmc dvfs --emit): the forward pass in model.c calls
 * slmc_set_opp at the boundaries where the schedule changes the operating point.
 *   slmc_hal_log.c  host and emulators: a logged no-op (main prints the log at the end)
 *   slmc_pico.c     the RP2350 with the pico-sdk: core regulator, clk_sys and the flash divider */
#ifndef SLMC_HAL_H
#define SLMC_HAL_H
/* Run from here on at voltage_mv (core regulator) and khz (clk_sys); nothing happens if the
 * point is the current one. The chip boots at 1100 mV, 150000 kHz. */
void slmc_set_opp(int voltage_mv, int khz);
/* Prints the transitions made so far as "O <mv> <khz>" lines and "S opp_transitions <n>". */
void slmc_hal_report(void);
#endif
