/* Reset of a multi-core RV32 build on QEMU virt (-smp N, -bios none): every hart starts at the
 * first instruction of flash. This stub is placed there (section .text.init.enter of an object
 * linked before picolibc's crt0, which the Makefile adds after -nostartfiles): hart 0 goes on to
 * crt0's _start as a single-core build does; every other hart enables its machine software
 * interrupt, sleeps in WFI until hart 0's first slmc_parallel_for marks the C runtime ready
 * (slmc_harts_go, parallel.c), then takes its own stack and waits for work in slmc_hart_main.
 * Nothing here runs on hart 0 but the two instructions that dispatch it. */
#include <stdint.h>
#if defined(__riscv)

#ifndef SLMC_CORES
#define SLMC_CORES 1
#endif
#define SLMC_HART_STACK 4096

/* harts 1..N-1 (hart 0 keeps crt0's stack): what toolchain/harts.py counts in the SRAM fit where the
 * cluster gives a core_stack_bytes */
uint8_t slmc_hart_stacks[SLMC_CORES > 1 ? SLMC_CORES - 1 : 1][SLMC_HART_STACK] __attribute__((aligned(16)));

#define SLMC_STR2(x) #x
#define SLMC_STR(x) SLMC_STR2(x)

__asm__(
    ".section .text.init.enter,\"ax\",@progbits\n"
    ".global slmc_hart_entry\n"
    "slmc_hart_entry:\n"
    ".option push\n"
    ".option norelax\n"
    ".option arch,+zicsr\n"
    "    csrr t0, mhartid\n"
    "    bnez t0, 1f\n"
    "    j _start\n"
    "1:  li t1, " SLMC_STR(SLMC_CORES) "\n"
    "    bge t0, t1, 4f\n"                 /* a hart beyond the build's cores never leaves WFI */
    "    la gp, __global_pointer$\n"
    "    li t1, 8\n"                        /* mie.MSIE */
    "    csrs mie, t1\n"
    "    li t3, 0x2000000\n"
    "    slli t4, t0, 2\n"
    "    add t3, t3, t4\n"                  /* this hart's CLINT MSIP word */
    "    li t5, 0x5a17c0de\n"
    "2:  la t2, slmc_harts_go\n"
    "    lw t2, 0(t2)\n"
    "    beq t2, t5, 3f\n"
    "    wfi\n"
    "    sw zero, 0(t3)\n"
    "    j 2b\n"
    "3:  la sp, slmc_hart_stacks\n"          /* the top of hart t0's stack, slot t0 - 1 */
    "    li t2, " SLMC_STR(SLMC_HART_STACK) "\n"
    "    mul t1, t0, t2\n"
    "    add sp, sp, t1\n"
    "    mv a0, t0\n"
    "    call slmc_hart_main\n"
    "4:  wfi\n"
    "    j 4b\n"
    ".option pop\n"
    ".previous\n");
#endif
