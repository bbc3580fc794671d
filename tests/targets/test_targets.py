"""Targets as data, kernel selection by ISA feature, cycle models, the generated Makefile, and the
pieces of the counters that need no emulator (semihosting, link maps, boundaries). No compiler here."""

import struct
import subprocess
import sys

import pytest

from slmc.codegen.project import makefile
from slmc.ir import DType, Graph
from slmc.kernels import registry
from slmc.kernels.registry import KernelSpec, select
from slmc.targets import TARGETS, get_target
from slmc.targets.cycles import MODELS, Insn, block_cycles
from slmc.toolchain.count import Boundaries, CodeMap
from slmc.toolchain.elf import code_ranges
from slmc.toolchain.semihost import FEATURES, ProgramExit, Semihost

MCU = ("cortex-m33", "rv32imac", "rp2350-arm", "rp2350-riscv")


def test_builtin_targets_and_their_facts():
    for name in MCU:
        t = get_target(name)
        assert t.emulated and t.prefill_chunk == 0 and "-ffp-contract=off" in t.cflags
        assert t.sram is not None and t.flash is not None and t.cycle_model in MODELS
    m33, rv = get_target("cortex-m33"), get_target("rv32imac")
    assert {"-mcpu=cortex-m33", "-mfloat-abi=hard", "-mfpu=fpv5-sp-d16"} <= set(m33.cflags)
    assert "dsp" in m33.features and m33.emulator.counter == "unicorn"
    assert {"zba", "zbb", "zbs"} <= rv.features and "-march=rv32imac" in rv.cflags
    assert rv.emulator.counter == "qemu-gdb" and "mps2-an505" in get_target("rp2350-arm").emulator.qemu
    for name in ("rp2350-arm", "rp2350-riscv"):
        t = get_target(name)
        assert (t.sram_bytes, t.flash_bytes, t.clock_hz) == (520 * 1024, 4 * 1024 * 1024, 150_000_000)
    assert get_target("host").sram is None and get_target("host").prefill_chunk == 16


def test_slmc_targets_lists_every_target():
    r = subprocess.run([sys.executable, "-m", "slmc.cli", "targets"], capture_output=True, text=True, check=True)
    for name in TARGETS:
        assert name in r.stdout
    assert "532,480" in r.stdout and "150 MHz" in r.stdout and "unicorn" in r.stdout


def test_a_kernel_for_an_isa_feature_is_chosen_where_the_target_has_it():
    g = Graph("g")
    x = g.add_input("x", (1, 4), DType.F32)
    g.op("add", [x, x], x.type, name="y")
    node = g.nodes[0]
    dsp = KernelSpec("add", DType.F32, "add_f32_dsp.c", lambda n, c: "", isa="dsp")
    registry.REGISTRY.append(dsp)
    try:
        assert select(node, get_target("cortex-m33").features) is dsp
        assert select(node, get_target("rp2350-arm").features) is dsp
        assert select(node, get_target("rv32imac").features).isa == "any"
        assert select(node, get_target("host").features).isa == "any"
    finally:
        registry.REGISTRY.remove(dsp)


def test_mcu_makefile_builds_without_slmc():
    rv = get_target("rp2350-riscv")
    mk = makefile(rv, ["linear_q8.c", "sample.c"], "main.c")
    assert "CC = riscv64-unknown-elf-gcc" in mk and "-ffp-contract=off" in mk
    assert "__ram_size=532480" in mk and "__flash_size=4194304" in mk and "__stack_size=8192" in mk
    assert mk.index("__stack_size") < mk.index("-Tpicolibc.ld")  # ld's DEFINED() sees only earlier symbols
    assert "--crt0=semihost" in mk and "-Wl,-Map=build/model.map" in mk
    assert "build/kernels/linear_q8.o" in mk and "\nrun:" in mk and "-icount" not in mk
    assert "SLMC_HOST" not in mk and "SLMC_HOST" in makefile(get_target("host"), ["linear_q8.c"], "main.c")


def test_a_zbb_kernel_gets_its_march_and_nothing_else_does():
    spec = KernelSpec("add", DType.F32, "add_f32_zbb.c", lambda n, c: "", isa="zbb")
    registry.REGISTRY.append(spec)
    try:
        mk = makefile(get_target("rv32imac"), ["add_f32_zbb.c", "linear_q8.c"], "main.c")
    finally:
        registry.REGISTRY.remove(spec)
    assert "build/kernels/add_f32_zbb.o: CFLAGS += -march=rv32imac_zba_zbb_zbs" in mk
    assert "linear_q8.o: CFLAGS" not in mk


def test_cycle_models():
    h, m = MODELS["hazard3"], MODELS["cortex-m33"]
    lw = Insn(0x100, "lw", "a5,0(a4)")
    assert block_cycles(h, [lw, Insn(0x104, "add", "a0,a5,a1")]) == 2 + 1     # load-use stall
    assert block_cycles(h, [lw, Insn(0x104, "add", "a0,a2,a1")]) == 1 + 1
    assert block_cycles(h, [Insn(0, "mul", "a0,a1,a2"), Insn(4, "div", "a0,a1,a2")]) == 1 + 18.5
    assert m.cost(Insn(0x200, "bne.n", "1000"), None) == 1          # forward: assumed not taken
    assert m.cost(Insn(0x2000, "bne.n", "1000"), None) == 2         # backward: a loop, assumed taken
    assert m.cost(Insn(0, "push", "{r4, r5, r6, lr}"), None) == 5
    assert m.cost(Insn(0, "vmla.f32", "s0, s1, s2"), None) == 3 and m.cost(Insn(0, "smlad", "r0, r1, r2, r3"), None) == 1
    assert m.cost(Insn(0, "ldr.w", "r3, [r2, #8]"), None) == 2 and m.cost(Insn(0, "str", "r3, [r2]"), None) == 1


class _Mem:
    def __init__(self):
        self.b = bytearray(4096)

    def read(self, a, n):
        return bytes(self.b[a:a + n])

    def write(self, a, d):
        self.b[a:a + len(d)] = d


def test_semihosting_calls_picolibc_makes(tmp_path):
    mem, out = _Mem(), []
    sh = Semihost(mem.read, mem.write, b"-n 32 -i 1,2", out.append, cwd=str(tmp_path))
    mem.write(100, struct.pack("<II", 200, 64))
    assert sh.call(0x15, 100) == 0 and mem.read(200, 13) == b"-n 32 -i 1,2\0" and mem.read(104, 4) == struct.pack("<I", 12)
    mem.write(300, b":semihosting-features\0")
    mem.write(100, struct.pack("<III", 300, 0, 21))
    fd = sh.call(0x01, 100)
    mem.write(100, struct.pack("<III", fd, 400, 5))
    assert sh.call(0x06, 100) == 0 and mem.read(400, 5) == FEATURES
    mem.write(500, b"T 7\n")
    mem.write(100, struct.pack("<III", 1, 500, 4))
    assert sh.call(0x05, 100) == 0 and out == ["T 7\n"]
    mem.write(300, b"l.f32\0")
    mem.write(100, struct.pack("<III", 300, 4, 5))   # mode 4: "wb"
    fd = sh.call(0x01, 100)
    mem.write(100, struct.pack("<III", fd, 500, 4))
    sh.call(0x05, 100)
    mem.write(100, struct.pack("<I", fd))
    sh.call(0x02, 100)
    assert (tmp_path / "l.f32").read_bytes() == b"T 7\n"
    mem.write(100, struct.pack("<II", 0x20026, 3))
    with pytest.raises(ProgramExit) as e:
        sh.call(0x20, 100)
    assert e.value.code == 3


MAP = """Archive member included to satisfy reference by file (symbol)
 .text          0x00000000        0x0 build/model.o
Linker script and memory map
 .text.startup  0x10000040      0x100 build/main.o
 .text          0x10000140      0x200 build/model.o
 .text          0x10000340       0x80 build/kernels/rmsnorm_f32.o
 .text          0x100003c0       0x40 build/kernels/sample.o
 .text.memcpy
                0x10000400       0x20 /usr/lib/picolibc/libc.a(memcpy.c.o)
"""


def test_link_map_and_boundaries(tmp_path):
    (tmp_path / "m.map").write_text(MAP)
    ranges = code_ranges(tmp_path / "m.map")
    assert [r[2] for r in ranges] == ["build/main.o", "build/model.o", "build/kernels/rmsnorm_f32.o",
                                      "build/kernels/sample.o", "/usr/lib/picolibc/libc.a(memcpy.c.o)"]
    starts, ends = tuple(r[0] for r in ranges), tuple(r[1] for r in ranges)
    code = CodeMap(starts, ends, ("main", "model", "kernel", "main", "lib"), tuple(r[2] for r in ranges),
                   decode=0x10000150, prefill=None, kernel_entries={0x10000340: "rmsnorm_f32.c"})
    b = Boundaries(code)
    assert b.at(0x10000340, 0x10000160) is None                       # a kernel outside a model call
    assert b.at(0x10000150, 0x10000171) is None                       # slmc_decode called from model.c
    assert b.at(0x10000150, 0x10000101) == ("start", "decode")        # Thumb return address, from main
    assert b.at(0x10000340, 0x10000171) == ("op", "rmsnorm_f32.c")    # called from model.c
    assert b.at(0x10000340, 0x10000351) is None                       # called from a kernel
    assert b.at(0x10000100, 0) == ("end", "")
