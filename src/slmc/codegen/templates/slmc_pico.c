/* The RP2350 side of a generated project, built with the pico-sdk (CMakeLists.txt):
 * main() brings up stdio (UART/USB as the board's defaults say) and runs main.c's generation loop
 * with SLMC_PICO_ARGS; slmc_set_opp moves the core voltage, clk_sys and the flash clock divider.
 * Order, as the SDK requires: raise the voltage (and wait 1 ms) before raising the clock; lower
 * the clock before lowering the voltage. clk_sys = PLL_SYS (150 MHz) / integer divider is a
 * glitch-free divider change; other clocks reprogram the PLL (set_sys_clock_khz). The QSPI clock
 * divider follows clk_sys so that SCK stays at or below SLMC_FLASH_SCK_MAX_KHZ, as slmc's power
 * model assumes (sim/rp2350_power.json, "flash"). Not yet run on a chip: the emulated builds
 * (slmc_hal_log.c) check the sequence of calls. */
#include <stdio.h>
#include "pico/stdlib.h"
#include "hardware/clocks.h"
#include "hardware/vreg.h"
#include "hardware/structs/qmi.h"
#include "slmc_hal.h"

#ifndef SLMC_PICO_ARGS
#define SLMC_PICO_ARGS "-n", "256", "-t", "0"
#endif
#ifndef SLMC_FLASH_SCK_MAX_KHZ
#define SLMC_FLASH_SCK_MAX_KHZ 75000
#endif
#define SLMC_PLL_SYS_KHZ 150000

int slmc_main(int argc, char **argv);

static int cur_mv = 1100, cur_khz = SLMC_PLL_SYS_KHZ;
static long n_transitions;

/* Runs from RAM: the QMI must not be fetching code from flash while its timing changes. */
static void __no_inline_not_in_flash_func(set_flash_clkdiv)(int khz) {
    uint32_t div = (uint32_t)((khz + SLMC_FLASH_SCK_MAX_KHZ - 1) / SLMC_FLASH_SCK_MAX_KHZ);
    if (div < 1) div = 1;
    uint32_t t = qmi_hw->m[0].timing;
    t &= ~(QMI_M0_TIMING_CLKDIV_BITS | QMI_M0_TIMING_RXDELAY_BITS);
    /* RXDELAY in half clk_sys cycles: sample one SCK period late, as the boot stage does at div 2 */
    t |= (div << QMI_M0_TIMING_CLKDIV_LSB) | ((div < 2 ? 1u : div) << QMI_M0_TIMING_RXDELAY_LSB);
    qmi_hw->m[0].timing = t;
    __asm volatile("" ::: "memory");
}

static void set_clock(int khz) {
    if (khz > cur_khz) set_flash_clkdiv(khz);  /* slow SCK down before clk_sys rises */
    if (SLMC_PLL_SYS_KHZ % khz == 0)
        clock_configure_int_divider(clk_sys, CLOCKS_CLK_SYS_CTRL_SRC_VALUE_CLKSRC_CLK_SYS_AUX,
                                    CLOCKS_CLK_SYS_CTRL_AUXSRC_VALUE_CLKSRC_PLL_SYS, SLMC_PLL_SYS_KHZ * 1000u,
                                    (uint32_t)(SLMC_PLL_SYS_KHZ / khz));
    else
        set_sys_clock_khz((uint32_t)khz, true);
    if (khz < cur_khz) set_flash_clkdiv(khz);  /* and speed it up after clk_sys fell */
}

static enum vreg_voltage vreg_of(int mv) { return (enum vreg_voltage)((mv - 550) / 50); }

void slmc_set_opp(int voltage_mv, int khz) {
    if (voltage_mv == cur_mv && khz == cur_khz) return;
    if (voltage_mv > cur_mv) {
        vreg_set_voltage(vreg_of(voltage_mv));
        sleep_ms(1);
    }
    if (khz != cur_khz) set_clock(khz);
    if (voltage_mv < cur_mv) vreg_set_voltage(vreg_of(voltage_mv));
    cur_mv = voltage_mv;
    cur_khz = khz;
    n_transitions++;
}

void slmc_hal_report(void) { printf("S opp_transitions %ld\n", n_transitions); }

int main(void) {
    /* clk_peri from the USB PLL, so that the UART keeps its baud rate while clk_sys moves */
    clock_configure_undivided(clk_peri, 0, CLOCKS_CLK_PERI_CTRL_AUXSRC_VALUE_CLKSRC_PLL_USB, USB_CLK_HZ);
    stdio_init_all();
    char *argv[] = {"slmc", SLMC_PICO_ARGS, NULL};
    int rc = slmc_main((int)(sizeof argv / sizeof argv[0]) - 1, argv);
    printf("S exit %d\n", rc);
    for (;;) tight_loop_contents();
}
