"""Kernel tests' one way to run C on an emulated target: a harness built with kernels/c files by the target's
own compiler and flags (its ISA-feature flags too, picolibc semihosting) and run under QEMU."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from slmc.kernels.registry import C_DIR
from slmc.targets import get_target


def run_harness(target: str, tmp_path: Path, harness: str, kernels: list[str], extra: tuple[str, ...] = ()) -> str:
    """Build `harness` (C source) with the kernels (file names in kernels/c, or paths) for `target` and run it
    under QEMU: its stdout and stderr (the exit code must be 0). Skips without the toolchain (fails under CI)."""
    from slmc.toolchain.qemu import qemu_command

    t = get_target(target)
    if shutil.which(t.cc) is None or shutil.which(t.emulator.qemu[0]) is None:  # type: ignore[union-attr]
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{t.cc} or QEMU not installed")
        pytest.skip(f"{t.cc} or QEMU not installed (`make toolchains`)")
    mem = [f"-Wl,--defsym=__flash=0x{t.flash.origin:x}", f"-Wl,--defsym=__flash_size={t.flash.size}",  # type: ignore[union-attr]
           f"-Wl,--defsym=__ram=0x{t.sram.origin:x}", f"-Wl,--defsym=__ram_size={t.sram.size}",  # type: ignore[union-attr]
           f"-Wl,--defsym=__stack_size={t.stack_bytes}", "-Tpicolibc.ld"]
    (tmp_path / "harness.c").write_text(harness)
    elf = tmp_path / "harness.elf"
    files = [str(k) if os.sep in str(k) else str(C_DIR / k) for k in kernels]
    subprocess.run([t.cc, *t.cflags, *t.cflags_for("dsp"), f"-I{C_DIR}", "-o", str(elf), str(tmp_path / "harness.c"),
                    *files, *t.ldflags, *mem, *extra], check=True)
    r = subprocess.run(qemu_command(t, elf, []), capture_output=True, text=True, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-2000:]
    return out


def run_host_harness(tmp_path: Path, harness: str, kernels: list[str], env: dict[str, str] | None = None) -> str:
    """Build `harness` (C source) with the kernels (file names in kernels/c) for this host, exact float semantics as
    the host target builds them, and run it with `env` added to the environment: its stdout."""
    (tmp_path / "check.c").write_text(harness)
    subprocess.run(["cc", "-O2", "-std=c99", "-ffp-contract=off", f"-I{C_DIR}", "-o", str(tmp_path / "check"),
                    str(tmp_path / "check.c"), *(str(C_DIR / k) for k in kernels), "-lm"], check=True)
    return subprocess.run([str(tmp_path / "check")], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}).stdout
