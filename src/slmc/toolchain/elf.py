"""What the counters and the fault reporter need to know about a linked program: its loadable
segments, its function symbols, which object file each piece of code came from (the link map),
and its instructions (the toolchain's objdump)."""

from __future__ import annotations

import bisect
import re
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

from slmc.errors import SlmcError
from slmc.targets.cycles import Insn


@dataclass(frozen=True)
class Segment:
    address: int        # load address (flash for initialised data, which crt0 copies to RAM)
    data: bytes
    mem_size: int


@dataclass(frozen=True)
class Elf:
    path: Path
    entry: int
    segments: tuple[Segment, ...]


def read_elf(path: Path) -> Elf:
    """The 32-bit little-endian ELF's entry and PT_LOAD segments (all slmc's targets are ELF32 LE)."""
    d = Path(path).read_bytes()
    if d[:4] != b"\x7fELF" or d[4] != 1 or d[5] != 1:
        raise SlmcError(f"{path} is not a 32-bit little-endian ELF", "rebuild the project with `make`")
    entry, phoff = struct.unpack_from("<II", d, 24)
    phentsize, phnum = struct.unpack_from("<HH", d, 42)
    segs = []
    for i in range(phnum):
        p_type, off, _vaddr, paddr, filesz, memsz, _flags, _align = struct.unpack_from("<8I", d, phoff + i * phentsize)
        if p_type == 1 and memsz:
            segs.append(Segment(paddr, d[off:off + filesz], memsz))
    return Elf(Path(path), entry, tuple(segs))


def _tool(prefix: str, name: str, *args: str) -> str:
    try:
        return subprocess.run([prefix + name, *args], capture_output=True, text=True, check=True).stdout
    except FileNotFoundError:
        raise SlmcError(f"'{prefix}{name}' is not installed", "run `make toolchains`") from None
    except subprocess.CalledProcessError as e:
        raise SlmcError(f"{prefix}{name} failed on {args[-1]}: {e.stderr.strip()[:200]}", "rebuild the project") from None


@dataclass(frozen=True)
class Symbols:
    """Function symbols sorted by address, for PC -> function lookups."""

    addrs: tuple[int, ...]
    names: tuple[str, ...]
    sizes: tuple[int, ...]          # 0: the symbol has no size (an assembly label)
    by_name: dict[str, int]

    def function_at(self, pc: int) -> str | None:
        """The sized function whose body holds pc (None in data, padding or unsized code)."""
        i = bisect.bisect_right(self.addrs, pc) - 1
        while i >= 0 and not self.sizes[i]:
            i -= 1
        return self.names[i] if i >= 0 and pc < self.addrs[i] + self.sizes[i] else None

    def address(self, name: str) -> int:
        if name not in self.by_name:
            raise SlmcError(f"the program has no function '{name}'", "rebuild the project with `make`")
        return self.by_name[name]


def symbols(elf: Path, prefix: str) -> Symbols:
    rows = []
    for line in _tool(prefix, "nm", "-n", "-S", "--defined-only", str(elf)).splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "tTwW":
            rows.append((int(parts[0], 16) & ~1, int(parts[1], 16), parts[3]))  # Thumb: mode in bit 0
        elif len(parts) == 3 and parts[1] in "tTwW":
            rows.append((int(parts[0], 16) & ~1, 0, parts[2]))
    by_name: dict[str, int] = {}
    for a, _, n in rows:
        by_name.setdefault(n, a)
    return Symbols(tuple(r[0] for r in rows), tuple(r[2] for r in rows), tuple(r[1] for r in rows), by_name)


_MAP_TEXT = re.compile(r"^ (\.text\S*)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+) (\S.*)$", re.M)


def code_ranges(map_file: Path) -> list[tuple[int, int, str]]:
    """(start, end, object file) of every piece of code the linker placed, from its map file."""
    if not Path(map_file).exists():
        raise SlmcError(f"{map_file} is missing", "rebuild the project with `make` (the Makefile writes the map)")
    text = Path(map_file).read_text()
    text = text[text.find("Linker script and memory map"):]  # before it: discarded sections, at address 0
    out = []
    for m in _MAP_TEXT.finditer(text):
        start, size = int(m.group(2), 16), int(m.group(3), 16)
        if size and start:
            out.append((start, start + size, m.group(4).strip()))
    return sorted(out)


_INSN = re.compile(r"^\s*([0-9a-f]+):\s+([a-z][\w.]*)\s*(.*)$")
_COMMENT = re.compile(r"\s+[@#]\s.*$|\s*<[^>]*>\s*$")  # "@ 0x74", "# 80001c00 <sym>"; not "#116"


def instructions(elf: Path, prefix: str) -> list[Insn]:
    """Every instruction objdump decodes in the program's code, in address order."""
    out = []
    for line in _tool(prefix, "objdump", "-d", "--no-show-raw-insn", str(elf)).splitlines():
        m = _INSN.match(line)
        if m and not m.group(2).startswith("."):
            out.append(Insn(int(m.group(1), 16), m.group(2), _COMMENT.sub("", m.group(3))))
    return out
