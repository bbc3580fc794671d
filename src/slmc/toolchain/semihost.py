"""The Arm/RISC-V semihosting calls picolibc's semihosting crt0 and stdio make, served in Python
for emulators that have no semihosting of their own (Unicorn). QEMU serves the same calls itself.

Both ISAs share the Arm semihosting numbering and parameter blocks (32-bit words); only the trap
differs (BKPT 0xAB on Arm, EBREAK between two marker shifts on RISC-V), which the caller handles.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from typing import Callable

ADP_STOPPED_APPLICATION_EXIT = 0x20026
# ":semihosting-features": magic, then bit 0 SH_EXT_EXIT_EXTENDED (exit codes), bit 1 stdout/stderr
FEATURES = b"SHFB\x03"
_MODES = ("rb", "rb", "r+b", "r+b", "wb", "wb", "w+b", "w+b", "ab", "ab", "a+b", "a+b")


class ProgramExit(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(f"exit {code}")
        self.code = code


@dataclass
class Semihost:
    read: Callable[[int, int], bytes]          # (address, size) -> bytes of target memory
    write: Callable[[int, bytes], None]
    cmdline: bytes
    console: Callable[[str], None]             # text the program writes to stdout or stderr
    cwd: str = "."
    files: dict[int, object] = field(default_factory=dict)
    errno: int = 0

    def _word(self, addr: int, i: int) -> int:
        return struct.unpack("<I", self.read(addr + 4 * i, 4))[0]

    def call(self, op: int, p: int) -> int:
        """Serves one call; returns the value for r0/a0. Raises ProgramExit when the program ends."""
        w = lambda i: self._word(p, i)  # noqa: E731  (the parameter block's i-th word)
        if op == 0x01:  # SYS_OPEN
            name = self.read(w(0), w(2)).decode(errors="replace")
            mode = w(1)
            if name == ":tt":
                return 0 if mode < 4 else (1 if mode < 8 else 2)
            if name == ":semihosting-features":
                return self._add(_Mem(FEATURES))
            try:
                return self._add(open(os.path.join(self.cwd, name), _MODES[mode]))
            except OSError as e:
                self.errno = e.errno or 1
                return -1
        if op == 0x02:  # SYS_CLOSE
            f = self.files.pop(w(0), None)
            if hasattr(f, "close"):
                f.close()  # type: ignore[union-attr]
            return 0
        if op == 0x03:  # SYS_WRITEC
            self.console(self.read(p, 1).decode(errors="replace"))
            return 0
        if op == 0x04:  # SYS_WRITE0
            s, i = b"", p
            while (c := self.read(i, 1)) != b"\0":
                s, i = s + c, i + 1
            self.console(s.decode(errors="replace"))
            return 0
        if op == 0x05:  # SYS_WRITE: returns the bytes NOT written
            fd, data = w(0), self.read(w(1), w(2))
            if fd in (1, 2):
                self.console(data.decode(errors="replace"))
                return 0
            f = self.files.get(fd)
            if f is None:
                return len(data)
            f.write(data)  # type: ignore[union-attr]
            return 0
        if op == 0x06:  # SYS_READ: returns the bytes NOT read
            f, n = self.files.get(w(0)), w(2)
            data = f.read(n) if f is not None else b""  # type: ignore[union-attr]
            self.write(w(1), data)
            return n - len(data)
        if op == 0x09:  # SYS_ISTTY
            return 1 if w(0) in (0, 1, 2) else 0
        if op == 0x0A:  # SYS_SEEK
            self.files[w(0)].seek(w(1))  # type: ignore[union-attr]
            return 0
        if op == 0x0C:  # SYS_FLEN
            f = self.files.get(w(0))
            if f is None:
                return -1
            pos = f.tell()  # type: ignore[union-attr]
            end = f.seek(0, 2)  # type: ignore[union-attr]
            f.seek(pos)  # type: ignore[union-attr]
            return end
        if op in (0x10, 0x11, 0x30):  # SYS_CLOCK, SYS_TIME, SYS_ELAPSED: a deterministic clock
            return 0
        if op == 0x13:  # SYS_ERRNO
            return self.errno
        if op == 0x15:  # SYS_GET_CMDLINE: buffer, size -> text, length
            buf, size = w(0), w(1)
            text = self.cmdline[: size - 1]
            self.write(buf, text + b"\0")
            self.write(p + 4, struct.pack("<I", len(text)))
            return 0
        if op == 0x18:  # SYS_EXIT: on 32-bit targets the parameter is the reason itself
            raise ProgramExit(0 if p == ADP_STOPPED_APPLICATION_EXIT else 1)
        if op == 0x20:  # SYS_EXIT_EXTENDED: reason, exit code
            raise ProgramExit(w(1) if w(0) == ADP_STOPPED_APPLICATION_EXIT else 1)
        self.errno = 38  # ENOSYS
        return -1

    def _add(self, f: object) -> int:
        fd = max([2, *self.files]) + 1
        self.files[fd] = f
        return fd

    def close_all(self) -> None:
        for f in self.files.values():
            if hasattr(f, "close"):
                f.close()  # type: ignore[union-attr]
        self.files.clear()


class _Mem:
    """A read-only in-memory file (the features file)."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def read(self, n: int) -> bytes:
        out = self.data[self.pos:self.pos + n]
        self.pos += len(out)
        return out

    def seek(self, pos: int, whence: int = 0) -> int:
        self.pos = pos if whence == 0 else len(self.data) + pos
        return self.pos

    def tell(self) -> int:
        return self.pos

    def write(self, data: bytes) -> None:
        raise OSError("read-only")
