"""The built-in targets, as data. Compiler and QEMU recipes are the ones measured in DESIGN.md
("Toolchains and emulators"); memory sizes and clocks of the RP2350 are from its datasheet
(DESIGN.md "Target facts")."""

from __future__ import annotations

import platform

from slmc.targets import Emulator, Level, MemoryLevel, Target
from slmc.targets.engines import Cluster, Engines

KB, MB = 1024, 1024 * 1024

# Both cross builds: float contraction off so the M33 (which has VFMA) rounds like the host build,
# and picolibc's semihosting crt0 so main(argc, argv), stdio and the exit code go through the emulator.
_COMMON = ("-O2", "-std=c99", "-ffp-contract=off", "-Wall", "-Wno-unused-variable", "-specs=picolibc.specs")
_SEMIHOST_LD = ("--oslib=semihost", "--crt0=semihost")

# Without -mfloat-abi=hard and the FPU gcc calls soft-float routines: 17x the instructions in fp32.
_M33_CFLAGS = ("-mcpu=cortex-m33", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-sp-d16", *_COMMON)
# -march=rv32imac_zicsr would break picolibc's multilib selection (DESIGN.md): CSR reads use
# `.option arch,+zicsr` in inline assembly instead, and Zb* kernels get their -march per file.
_RV32_CFLAGS = ("-march=rv32imac", "-mabi=ilp32", "-mcmodel=medany", *_COMMON)
_RV32_ZB = ("-march=rv32imac_zba_zbb_zbs", "-mabi=ilp32")

_QEMU_M33 = Emulator(qemu=("qemu-system-arm", "-M", "mps2-an505", "-nographic"), counter="unicorn",
                     unicorn_cpu="cortex-m33")
# QEMU's M-profile DWT cycle counter reads 0, so M33 counts come from Unicorn; on RV32 minstret is
# exact under -icount shift=0 and is read through QEMU's gdb stub (toolchain/qemu_gdb.py).
# Hazard3's bit-manipulation set, stated rather than left to QEMU's defaults (which also enable Zbc).
_QEMU_RV32 = Emulator(qemu=("qemu-system-riscv32", "-M", "virt", "-cpu", "rv32,zba=true,zbb=true,zbs=true,zbc=false",
                            "-bios", "none", "-nographic"), counter="qemu-gdb", unicorn_cpu="rv32")

# QEMU mps2-an505 has 4 MB of SSRAM at 0x10000000 (standing in for flash) and RAM at 0x38000000;
# QEMU virt has RAM from 0x80000000, split here into a flash part and a RAM part.
_AN505_FLASH, _AN505_RAM = 0x10000000, 0x38000000
_VIRT_FLASH, _VIRT_RAM = 0x80000000, 0x80400000

# RP2350: 8 striped 64 KB banks + 2 x 4 KB; weights read through the 16 KB XIP cache from QSPI flash
# at SCK = 150 MHz / 2, about SCK/2 bytes/s.
_RP2350_SRAM = 8 * 64 * KB + 2 * 4 * KB
_RP2350_XIP_BYTES_PER_S = 37.5e6
_RP2350_CLOCK = 150_000_000
# The hierarchy the planner sees: SRAM, then flash read in place through XIP (no DMA into SRAM is
# planned). SRAM: one 32-bit word per cycle; flash: 37.5 MB/s at 150 MHz = 0.25 B/cycle; the XIP miss
# latency (command + address + dummy cycles on QSPI at SCK = 75 MHz, about 20 SCK) is ASSUMED.
_RP2350_LEVELS = (Level("SRAM", _RP2350_SRAM, 4.0, 1, memory="sram"),
                  Level("FLASH", 4 * MB, _RP2350_XIP_BYTES_PER_S / _RP2350_CLOCK, 40, memory="flash"))

# The RP2350's two cores as a cluster (`slmc compile --cores 2`; codegen/parallel.py splits the matrix products by
# rows over them). Both are the same ISA at a time (two M33s, or two Hazard3s). On rp2350-riscv QEMU runs two
# harts; on rp2350-arm Unicorn has one core, so every run there is the counting run (parallel.c runs each core's
# share in turn and counts each exactly).
def _rp2350_cluster(isa: str, macs_per_cycle: float) -> Cluster:
    return Cluster(
        cores=2,                    # source: RP2350 datasheet ("dual Cortex-M33 or Hazard3 processors")
        isa=isa,
        macs_per_cycle_per_core=macs_per_cycle,
        # ASSUMED: a fork is one word pushed through an SIO inter-core FIFO (single-cycle SIO access, datasheet) and
        # an SEV that ends core 1's WFE; the join the same back; with the call through the job's function pointer
        # and the waits, tens of cycles each way (nothing measured on silicon)
        fork_join_cycles=60,
        # source: RP2350 datasheet, bus fabric and SRAM: each core has its own AHB5 port, SRAM0-7 are striped
        # over 8 banks (word by word, as recalled - verify) that answer in parallel, so the two cores rarely
        # contend: 2 x one word a cycle
        l1_bytes_per_cycle=2 * 4.0,
        # ASSUMED: ~25 mW for the chip at 150 MHz running both cores (order of the datasheet's active current
        # figures at 1.1 V, as recalled - verify), over 2 cores x macs_per_cycle MACs a cycle
        pj_per_mac=25e-3 / (_RP2350_CLOCK * 2 * macs_per_cycle) * 1e12,
        # source: the datasheet's SRAM8/SRAM9 (4 KB each, the "scratch" banks the SDK gives each core's stack);
        # parallel_harts.c gives each further core a 4 KB stack, counted in the SRAM fit (toolchain/harts.py)
        core_stack_bytes=4 * KB,
        # measured (benchmarks/rp2350_cores.py, stories260K q8 on two M33s, exact counts): split, the 64-element
        # RMSNorms took 0.91x and the RoPEs of 64 and 32 elements 0.59x-0.61x of their serial instructions on the
        # critical path, before the fork/joins: these cheap element-wise steps stay on core 0 below 128 elements
        min_split_elements=128,
    )


# derived from exact counts (stories260K's 1-core builds, `slmc run --json`: linear_instructions_per_mac and the
# products' estimated cycles): q8 on the M33 takes 1.67 instructions a MAC (SXTB16 + SMLAD, linear_q8_dsp.c) at
# 1.30 cycles each in the M33 cycle model; int8 on Hazard3 4.03 instructions a MAC (linear_i8_rv32.c) at 1.16
_RP2350_M33_CLUSTER = _rp2350_cluster("armv8m", 0.46)
_RP2350_HAZARD3_CLUSTER = _rp2350_cluster("rv32", 0.21)

_MCU = dict(prefill_chunk=0,  # a prompt chunk multiplies the activations; RAM is what an MCU lacks
            stack_bytes=8 * KB,
            runtime_sram_bytes=6 * KB,  # picolibc's command line, stdio, and the heap fopen needs
            code_flash_bytes=48 * KB)   # measured: about 20 KB of code for stories260K, plus headroom


def _host_features() -> frozenset[str]:
    """What every compiler for this machine's architecture may assume (x86-64: SSE2; AArch64: NEON)."""
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64"):
        return frozenset({"sse2"})
    if machine in ("aarch64", "arm64"):
        return frozenset({"neon"})
    return frozenset()


HOST = Target(
    name="host",
    description="this machine: gcc -O2, one thread",
    isa="host",
    features=_host_features(),
    cc="gcc",
    cflags=("-O2", "-std=c99", "-ffp-contract=off", "-Wall", "-Wno-unused-variable"),
    ldflags=("-lm",),
)

# The fast host build: the build machine's vector ISA (-march=native; the kernels of kernels/native.py pick
# AVX-512 / AVX2 + FMA / AVX-512 VNNI / AVX-VNNI from the compiler's predefined macros, portable loops where it
# has none) and contracted multiply-adds (-std=c99 alone would turn contraction off). It gives up the default
# host build's exact float semantics: sums are reassociated and fused, so outputs match the numpy reference
# to a tolerance, not bit for bit (tests/e2e/test_host_native.py).
HOST_NATIVE = Target(
    name="host-native",
    description="this machine's vector ISA: gcc -O3 -march=native, AVX2/AVX-512/VNNI kernels chosen at build "
                "time, one thread; NOT bit-exact (FMA, reassociated sums: matches the reference to a tolerance)",
    isa="host",
    features=frozenset({"native"}),
    cc="gcc",
    cflags=("-O3", "-march=native", "-std=c99", "-ffp-contract=fast", "-fno-math-errno", "-Wall",
            "-Wno-unused-variable"),
    ldflags=("-lm",),
)

CORTEX_M33 = Target(
    name="cortex-m33",
    description="Armv8-M mainline, DSP extension, single-precision FPU; emulated on QEMU mps2-an505",
    isa="armv8m",
    features=frozenset({"dsp", "fpu_sp"}),
    cc="arm-none-eabi-gcc",
    cflags=_M33_CFLAGS,
    ldflags=_SEMIHOST_LD,
    runner="qemu-arm",
    flash=MemoryLevel("flash", _AN505_FLASH, 4 * MB),
    sram=MemoryLevel("sram", _AN505_RAM, 2 * MB),
    tool_prefix="arm-none-eabi-",
    emulator=_QEMU_M33,
    cycle_model="cortex-m33",
    **_MCU,
)

RV32IMAC = Target(
    name="rv32imac",
    description="RV32IMAC (+ Zba/Zbb/Zbs, which Hazard3 has), no FPU; emulated on QEMU virt",
    isa="rv32",
    # "rv32im": the base integer ISA with M, for kernels tuned to it that must not get the Zb* -march
    features=frozenset({"rv32im", "zba", "zbb", "zbs"}),
    cc="riscv64-unknown-elf-gcc",
    cflags=_RV32_CFLAGS,
    ldflags=_SEMIHOST_LD,
    runner="qemu-riscv32",
    flash=MemoryLevel("flash", _VIRT_FLASH, 4 * MB),
    sram=MemoryLevel("sram", _VIRT_RAM, 2 * MB),
    tool_prefix="riscv64-unknown-elf-",
    emulator=_QEMU_RV32,
    cycle_model="hazard3",
    feature_cflags=(("zba", _RV32_ZB), ("zbb", _RV32_ZB), ("zbs", _RV32_ZB)),
    **_MCU,
)

RP2350_ARM = Target(
    name="rp2350-arm",
    description="RP2350 Cortex-M33 core: 520 KB SRAM, 4 MB flash, 150 MHz (emulated as cortex-m33)",
    isa=CORTEX_M33.isa, features=CORTEX_M33.features, cc=CORTEX_M33.cc, cflags=_M33_CFLAGS, ldflags=_SEMIHOST_LD,
    runner=CORTEX_M33.runner, tool_prefix=CORTEX_M33.tool_prefix, emulator=_QEMU_M33, cycle_model="cortex-m33",
    flash=MemoryLevel("flash", _AN505_FLASH, 4 * MB, _RP2350_XIP_BYTES_PER_S),
    sram=MemoryLevel("sram", _AN505_RAM, _RP2350_SRAM),
    clock_hz=_RP2350_CLOCK,
    levels=_RP2350_LEVELS,
    engines=Engines(_RP2350_M33_CLUSTER),
    **_MCU,
)

RP2350_RISCV = Target(
    name="rp2350-riscv",
    description="RP2350 Hazard3 core (RV32IMAC + Zba/Zbb/Zbs): 520 KB SRAM, 4 MB flash, 150 MHz (emulated as rv32imac)",
    isa=RV32IMAC.isa, features=RV32IMAC.features, cc=RV32IMAC.cc, cflags=_RV32_CFLAGS, ldflags=_SEMIHOST_LD,
    runner=RV32IMAC.runner, tool_prefix=RV32IMAC.tool_prefix, emulator=_QEMU_RV32, cycle_model="hazard3",
    feature_cflags=RV32IMAC.feature_cflags,
    flash=MemoryLevel("flash", _VIRT_FLASH, 4 * MB, _RP2350_XIP_BYTES_PER_S),
    sram=MemoryLevel("sram", _VIRT_RAM, _RP2350_SRAM),
    clock_hz=_RP2350_CLOCK,
    levels=_RP2350_LEVELS,
    engines=Engines(_RP2350_HAZARD3_CLUSTER),
    **_MCU,
)

BUILTIN: tuple[Target, ...] = (HOST, HOST_NATIVE, CORTEX_M33, RV32IMAC, RP2350_ARM, RP2350_RISCV)
