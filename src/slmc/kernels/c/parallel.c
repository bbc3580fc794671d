/* slmc_parallel_for (slmc_parallel.h) on three machines:
 * - the host: a pool of SLMC_CORES - 1 POSIX threads started at the first call, which poll for a call
 *   a while and then sleep on a condition variable; the calling thread is core 0.
 * - bare-metal RV32 (QEMU virt -smp N): hart 0 runs main; harts 1..N-1 were parked at reset by
 *   parallel_harts.c and sleep in WFI until par_init releases them. A call publishes the job,
 *   bumps a generation counter and raises each hart's machine software interrupt (CLINT MSIP);
 *   hart 0 runs its own range, then
 *   sleeps in WFI until the last hart to finish raises hart 0's MSIP. Interrupts stay globally
 *   disabled (mstatus.MIE = 0): a pending, enabled MSIP only ends the WFI, nothing traps.
 *   Under QEMU's -icount, minstret is the machine's virtual clock, shared by all harts: with
 *   several harts running it is not one hart's count. So par_init finds out, before main, how many
 *   harts the machine has. With fewer than SLMC_CORES (the counting run, QEMU -smp 1) hart 0 runs
 *   every core's range itself, one after the other, reading minstret around each: the
 *   instructions each core retires on its range (same code, same data) exactly. They are printed at exit as
 *   `S par_site<i>_core<c> <n>` event lines (plus `_span`, the sum over calls of the busiest
 *   core, and `_calls`), and `S par_harts <n>` says which way the run went.
 * - bare-metal Arm (rp2350-arm, the RP2350's two M33s, emulated by Unicorn with one core): every call
 *   is the counting run: core 0 runs each core's share in turn. Arm has no instruction counter a
 *   program may read, so par_instret writes slmc_par_mark; the Unicorn runner (toolchain/unicorn_run.py)
 *   traps that write and stores the instructions executed so far in slmc_par_instret, which it then
 *   reads. The same `S par_site...` lines as on RV32 follow at exit (all 0 under plain QEMU, which
 *   does not trap the write). The counts start and end at the same place in each share, so the
 *   instructions between the marker and the end of its block are in every share alike.
 * - anything else: SLMC_CORES must be 1 and the items run in the caller. */
#if !defined(__riscv) && !defined(__arm__)
#define _POSIX_C_SOURCE 200809L
#endif
#include "slmc_parallel.h"
#include <stdio.h>
#include <stdlib.h>

static void run_range(slmc_task_fn fn, void *ctx, int n, int core) {
    int a = n * core / SLMC_CORES, b = n * (core + 1) / SLMC_CORES;  /* n is rows or heads: no overflow */
    if (a < b) fn(ctx, a, b, core);
}

#if defined(__riscv) || defined(__arm__)
static uint32_t st_calls[SLMC_PAR_SITES], st_span[SLMC_PAR_SITES], st_core[SLMC_PAR_SITES][SLMC_CORES];
static volatile uint32_t par_core_instr[SLMC_CORES];
static int par_harts = 1;   /* harts taking work: SLMC_CORES, or 1 (every range on core 0) */

static void par_report(void) {
    printf("S par_cores %d\nS par_harts %d\n", SLMC_CORES, par_harts);
    if (par_harts > 1) return;  /* several harts ran: minstret was the shared clock, not a count per core */
    for (int s = 0; s < SLMC_PAR_SITES; s++) {
        if (!st_calls[s]) continue;
        printf("S par_site%d_calls %lu\nS par_site%d_span %lu\n", s, (unsigned long)st_calls[s], s, (unsigned long)st_span[s]);
        for (int c = 0; c < SLMC_CORES; c++) printf("S par_site%d_core%d %lu\n", s, c, (unsigned long)st_core[s][c]);
    }
}

static void par_record(int site) {
    if (site < 0 || site >= SLMC_PAR_SITES) return;
    uint32_t mx = 0;
    for (int c = 0; c < SLMC_CORES; c++) {
        st_core[site][c] += par_core_instr[c];
        if (par_core_instr[c] > mx) mx = par_core_instr[c];
    }
    st_calls[site] += 1;
    st_span[site] += mx;
}
#endif

#if defined(__arm__)
/* written by the program, trapped by the Unicorn runner, which answers in slmc_par_instret */
volatile uint32_t slmc_par_mark, slmc_par_instret;

static inline uint32_t par_instret(void) {
    slmc_par_mark = 1;
    return slmc_par_instret;
}

static void timed_range(slmc_task_fn fn, void *ctx, int n, int core) {
    uint32_t t0 = par_instret();
    run_range(fn, ctx, n, core);
    par_core_instr[core] = par_instret() - t0;
}

__attribute__((constructor)) static void par_init(void) { atexit(par_report); }

void slmc_parallel_for(slmc_task_fn fn, void *ctx, int n_items, int site) {
    for (int c = 0; c < SLMC_CORES; c++) par_core_instr[c] = 0;
    if (n_items > 1) {  /* each core's range in turn, on the one core */
        for (int c = 0; c < SLMC_CORES; c++) timed_range(fn, ctx, n_items, c);
    } else {  /* one item (a norm over one token): no fork */
        uint32_t t0 = par_instret();
        if (n_items > 0) fn(ctx, 0, n_items, 0);
        par_core_instr[0] = par_instret() - t0;
    }
    par_record(site);
}

#elif defined(__riscv)
static inline uint32_t par_instret(void) {
    uint32_t v;
    __asm__ volatile(".option push\n.option arch,+zicsr\ncsrr %0, minstret\n.option pop" : "=r"(v));
    return v;
}
#define SLMC_CLINT_MSIP ((volatile uint32_t *)0x2000000u)
#define SLMC_HARTS_GO 0x5a17c0deu
#define SLMC_CLINT_MTIMECMP0 ((volatile uint32_t *)0x2004000u)

/* shared with parallel_harts.c */
volatile uint32_t slmc_harts_go;
static volatile uint32_t par_gen;
static volatile int32_t par_done;
static slmc_task_fn volatile par_fn;
static void *volatile par_ctx;
static volatile int par_n;

static inline void par_wfi(void) { __asm__ volatile("wfi" ::: "memory"); }

static void timed_range(slmc_task_fn fn, void *ctx, int n, int core) {
    uint32_t t0 = par_instret();
    run_range(fn, ctx, n, core);
    par_core_instr[core] = par_instret() - t0;
}

/* Harts 1..N-1, on their own stacks (parallel_harts.c), forever. */
void slmc_hart_main(int hart) {
    uint32_t seen = 0;
    for (;;) {
        while (par_gen == seen) {
            par_wfi();
            SLMC_CLINT_MSIP[hart] = 0;
        }
        seen = par_gen;
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        timed_range(par_fn, par_ctx, par_n, hart);
        __atomic_fetch_add(&par_done, 1, __ATOMIC_SEQ_CST);
        SLMC_CLINT_MSIP[0] = 1;
    }
}

/* Before main (crt0 runs the constructors after initialising memory): find out which harts the
 * machine has, without waiting: each hart's CLINT mtimecmp reads back what was written to it where
 * the hart exists and 0 where it does not (QEMU virt sizes the CLINT by -smp). All ones never fires,
 * and nothing enables the timer interrupt. Then release the parked harts. */
__attribute__((constructor)) static void par_init(void) {
    atexit(par_report);
    __asm__ volatile(".option push\n.option arch,+zicsr\ncsrs mie, %0\n.option pop" :: "r"(8u)); /* MSIE */
    int present = 0;
    for (int h = 1; h < SLMC_CORES; h++) {
        SLMC_CLINT_MTIMECMP0[2 * h + 1] = 0xffffffffu;
        SLMC_CLINT_MTIMECMP0[2 * h] = 0xffffffffu;
        present += SLMC_CLINT_MTIMECMP0[2 * h] == 0xffffffffu;
    }
    par_harts = present == SLMC_CORES - 1 ? SLMC_CORES : 1;
    slmc_harts_go = SLMC_HARTS_GO;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (par_harts > 1)
        for (int h = 1; h < SLMC_CORES; h++) SLMC_CLINT_MSIP[h] = 1;
}

void slmc_parallel_for(slmc_task_fn fn, void *ctx, int n_items, int site) {
    for (int c = 0; c < SLMC_CORES; c++) par_core_instr[c] = 0;
    if (par_harts > 1 && n_items > 1) {
        par_fn = fn, par_ctx = ctx, par_n = n_items, par_done = 0;
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        par_gen = par_gen + 1;
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        for (int h = 1; h < SLMC_CORES; h++) SLMC_CLINT_MSIP[h] = 1;
        timed_range(fn, ctx, n_items, 0);
        while (par_done != SLMC_CORES - 1) {
            par_wfi();
            SLMC_CLINT_MSIP[0] = 0;
        }
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
    } else if (n_items > 1) {  /* the counting run: each core's range in turn, on hart 0 */
        for (int c = 0; c < SLMC_CORES; c++) timed_range(fn, ctx, n_items, c);
    } else {  /* one item (a norm over one token): no fork */
        uint32_t t0 = par_instret();
        if (n_items > 0) fn(ctx, 0, n_items, 0);
        par_core_instr[0] = par_instret() - t0;
    }
    par_record(site);
}

#elif !defined(__arm__) && SLMC_CORES > 1
#include <pthread.h>

/* The handoff polls first: a decode step forks and joins for every operator (tens of thousands a run), and
 * a sleep and wake-up through the condition variable each time cost more than the work split. A thread
 * polls the generation (a worker) or the count of busy workers (core 0) for PAR_SPINS rounds, then sleeps;
 * the variables are written under the mutex too, so a sleeper is always woken. */
#define PAR_SPINS 4000
static pthread_mutex_t par_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t par_work = PTHREAD_COND_INITIALIZER, par_idle = PTHREAD_COND_INITIALIZER;
static unsigned par_gen;
static int par_pending, par_n;
static slmc_task_fn par_fn;
static void *par_ctx;

static void par_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

static void *par_worker(void *arg) {
    int core = (int)(intptr_t)arg;
    unsigned seen = 0;
    for (;;) {
        unsigned gen = __atomic_load_n(&par_gen, __ATOMIC_ACQUIRE);
        for (int i = 0; gen == seen && i < PAR_SPINS; i++) {
            par_relax();
            gen = __atomic_load_n(&par_gen, __ATOMIC_ACQUIRE);
        }
        if (gen == seen) {
            pthread_mutex_lock(&par_mu);
            while ((gen = __atomic_load_n(&par_gen, __ATOMIC_ACQUIRE)) == seen) pthread_cond_wait(&par_work, &par_mu);
            pthread_mutex_unlock(&par_mu);
        }
        seen = gen;
        run_range(par_fn, par_ctx, par_n, core);   /* published before the generation (release, acquire) */
        if (__atomic_sub_fetch(&par_pending, 1, __ATOMIC_ACQ_REL) == 0) {
            pthread_mutex_lock(&par_mu);
            pthread_cond_signal(&par_idle);
            pthread_mutex_unlock(&par_mu);
        }
    }
    return NULL;
}

void slmc_parallel_for(slmc_task_fn fn, void *ctx, int n_items, int site) {
    static int started;
    (void)site;
    if (n_items <= 1) {
        if (n_items > 0) fn(ctx, 0, n_items, 0);
        return;
    }
    if (!started) {
        started = 1;
        for (intptr_t c = 1; c < SLMC_CORES; c++) {
            pthread_t t;
            if (pthread_create(&t, NULL, par_worker, (void *)c) != 0) { fprintf(stderr, "E cannot start a thread\n"); exit(3); }
            pthread_detach(t);
        }
    }
    par_fn = fn, par_ctx = ctx, par_n = n_items;
    __atomic_store_n(&par_pending, SLMC_CORES - 1, __ATOMIC_RELAXED);
    pthread_mutex_lock(&par_mu);
    __atomic_store_n(&par_gen, par_gen + 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&par_work);
    pthread_mutex_unlock(&par_mu);
    run_range(fn, ctx, n_items, 0);
    for (int i = 0; __atomic_load_n(&par_pending, __ATOMIC_ACQUIRE) && i < PAR_SPINS; i++) par_relax();
    if (__atomic_load_n(&par_pending, __ATOMIC_ACQUIRE)) {
        pthread_mutex_lock(&par_mu);
        while (__atomic_load_n(&par_pending, __ATOMIC_ACQUIRE)) pthread_cond_wait(&par_idle, &par_mu);
        pthread_mutex_unlock(&par_mu);
    }
}

#else
void slmc_parallel_for(slmc_task_fn fn, void *ctx, int n_items, int site) {
    (void)site;
    if (n_items > 0) fn(ctx, 0, n_items, 0);
}
#endif
