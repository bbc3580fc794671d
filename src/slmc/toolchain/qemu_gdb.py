"""Exact RV32 instruction counts at QEMU's speed: QEMU runs under -icount shift=0 (one instruction
per virtual nanosecond, so minstret counts exactly what retired) and its gdb stub stops it at the
boundaries of count.py, where minstret is read. Breakpoints retire nothing, so the program's own
counts are not disturbed, and any extension QEMU executes (Zba/Zbb/Zbs) is counted. Operators are
caught at their call sites in model.c (each executed once per step) rather than at kernel entries,
so no breakpoint has to be single-stepped over; the tests check the result against Unicorn's
counts instruction for instruction. Each stop costs a few milliseconds (QEMU re-translates its code
after every breakpoint change), so this is fast per token but not free per operator.

The gdb remote protocol used here is its small core: `$packet#checksum` with `+` acks,
qXfer for the register map, Z0/z0 breakpoints, c and p.
"""

from __future__ import annotations

import re
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

from slmc.errors import SlmcError
from slmc.targets import Target
from slmc.targets.cycles import Insn
from slmc.toolchain.count import Boundaries, Call, CodeMap, Counts, Segment
from slmc.toolchain.elf import instructions
from slmc.toolchain.events import EventParser, RunResult
from slmc.toolchain.qemu import finish, qemu_command

_PC, _RA = 32, 1   # gdb's RISC-V register numbers
ICOUNT = ("-icount", "shift=0")  # one instruction per virtual nanosecond: minstret counts what retired


class Remote:
    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buf = sock, b""

    def send(self, cmd: str) -> str:
        data = cmd.encode()
        self.sock.sendall(b"$" + data + b"#%02x" % (sum(data) & 0xFF))
        return self.recv()

    def recv(self) -> str:
        while True:
            start = self.buf.find(b"$")
            end = self.buf.find(b"#", start + 1) if start >= 0 else -1
            if start >= 0 and end >= 0 and len(self.buf) >= end + 3:
                pkt = self.buf[start + 1:end].decode()
                self.buf = self.buf[end + 3:]
                try:
                    self.sock.sendall(b"+")
                except OSError:  # QEMU closes the connection right after reporting the program's exit
                    pass
                return pkt
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("QEMU closed the gdb connection")
            self.buf += chunk

    def features(self, annex: str) -> str:
        out, off = "", 0
        while True:
            r = self.send(f"qXfer:features:read:{annex}:{off:x},fff")
            if not r or r[0] not in "ml":
                raise SlmcError(f"QEMU's gdb stub did not describe {annex}", "this QEMU is not supported")
            out, off = out + r[1:], off + len(r) - 1
            if r[0] == "l":
                return out

    def reg(self, n: int) -> int:
        return int.from_bytes(bytes.fromhex(self.send(f"p{n:x}")), "little")


def _minstret_regnum(r: Remote) -> int:
    target_xml = r.features("target.xml")
    for annex in re.findall(r'href="([^"]+)"', target_xml):
        m = re.search(r'<reg name="minstret"[^>]*regnum="(\d+)"', r.features(annex))
        if m:
            return int(m.group(1))
    raise SlmcError("QEMU's gdb stub offers no minstret register", "this QEMU is not supported")


def run_qemu_gdb(target: Target, elf: Path, code: CodeMap, args: list[str],
                 on_token: Callable[[int], None] = lambda t: None) -> tuple[RunResult, Counts]:
    with tempfile.TemporaryDirectory(prefix="slmc-gdb-") as tmp:
        sock_path = str(Path(tmp) / "gdb.sock")
        cmd = qemu_command(target, elf, args, (*ICOUNT, "-S", "-gdb", f"unix:{sock_path},server=on,wait=off"))
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        parser = EventParser(on_token)
        reader = threading.Thread(target=lambda: [parser.line(ln) for ln in proc.stdout], daemon=True)  # type: ignore[union-attr]
        reader.start()
        try:
            sock = _connect(sock_path, proc)
            insns = instructions(elf, target.tool_prefix)
            counts, code_rc = _drive(Remote(sock), code, call_sites(code, insns), stage_copy(elf, target, insns))
            sock.close()
            rc = proc.wait(timeout=30)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        reader.join(timeout=10)
        proc.stdout.close()  # type: ignore[union-attr]
    res = finish(target, elf, parser, rc if code_rc is None else code_rc)
    return res, counts


def _connect(path: str, proc: subprocess.Popen) -> socket.socket:
    for _ in range(200):
        if proc.poll() is not None:
            raise SlmcError("QEMU exited before its gdb stub could be reached", "check that QEMU runs the program")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except OSError:
            s.close()
            time.sleep(0.02)
    raise SlmcError("QEMU's gdb stub did not open", "check that QEMU runs the program")


def call_sites(code: CodeMap, insns: list[Insn]) -> dict[int, str]:
    """Address of every call (or tail call) in model.c to a kernel -> that kernel's C file."""
    sites = {}
    for ins in insns:
        if ins.mnemonic in ("jal", "j", "c.jal", "c.j") and code.kind_at(ins.address) == "model":
            target = int(ins.operands.split(",")[-1], 16)
            if target in code.kernel_entries:
                sites[ins.address] = code.kernel_entries[target]
    return sites


def stage_copy(elf: Path, target: Target, insns: list[Insn]) -> tuple[set[int], set[int]]:
    """The entry and the returns of the emulated DMA copy (slmc_stage.c's slmc_stage_start), where a staged
    build has one: what runs between them is the DMA engine's work, not the core's (codegen/staging.py)."""
    from slmc.toolchain.elf import symbols

    syms = symbols(elf, target.tool_prefix)
    if "slmc_stage_start" not in syms.by_name:
        return set(), set()
    at = syms.by_name["slmc_stage_start"]
    size = syms.sizes[syms.names.index("slmc_stage_start")]
    rets = {i.address for i in insns if at <= i.address < at + size
            and (i.mnemonic in ("ret", "c.ret") or (i.mnemonic in ("jr", "c.jr") and i.operands == "ra"))}
    return ({at}, rets) if rets else (set(), set())


class _Breakpoints:
    """Breakpoints QEMU holds. Every insertion or removal flushes QEMU's translated code, and the
    cost is the re-translation after the next continue: so the stop's own breakpoint is lifted
    and the previous stop's put back in the same pause, and nothing is single-stepped."""

    def __init__(self, r: Remote, addrs: set[int]) -> None:
        self.r, self.on, self.lifted = r, set(), None
        for a in sorted(addrs):
            self.insert(a)

    def insert(self, a: int) -> None:
        if a not in self.on:
            self.r.send(f"Z0,{a:x},2")
            self.on.add(a)

    def lift(self, a: int) -> None:
        """Lets the program run past `a` now; `a` is armed again at the next stop."""
        if self.lifted is not None and self.lifted != a:
            self.insert(self.lifted)
        if a in self.on:
            self.r.send(f"z0,{a:x},2")
            self.on.discard(a)
        self.lifted = a


def _drive(r: Remote, code: CodeMap, sites: dict[int, str],
           stage: tuple[set[int], set[int]] = (set(), set())) -> tuple[Counts, int | None]:
    """Boundaries as in count.py: a model call starts at slmc_decode/slmc_prefill's entry when main
    called it; an operator starts one instruction after its call site in model.c (at the kernel's
    entry, where the Unicorn counter switches); the call ends at its return address in main."""
    r.send("qSupported")
    minstret = _minstret_regnum(r)
    bps = _Breakpoints(r, {code.decode, *([code.prefill] if code.prefill is not None else []), *sites, *stage[0],
                           *stage[1]})
    bounds = Boundaries(code)
    calls: list[Call] = []
    main_n, last, seg = 0, None, None   # seg: the open Segment; None outside model calls
    copied, copy_from = 0, None         # the emulated DMA copies' instructions, left out of every segment
    while True:
        stop = r.send("c")
        if stop[:1] in ("W", "X"):
            return (Counts("qemu-gdb", calls, main_n, None, copied if stage[0] else None),
                    (int(stop[1:3], 16) if stop[0] == "W" else 1))
        pc, n = r.reg(_PC), r.reg(minstret)
        bps.lift(pc)
        if pc in stage[0]:
            copy_from = n
            continue
        if pc in stage[1]:
            if copy_from is not None:
                d = (n - copy_from) & 0xFFFFFFFF
                copied += d
                if last is not None:
                    last = (last + d) & 0xFFFFFFFF
            copy_from = None
            continue
        if pc in sites:
            if bounds.ret is None:
                continue
            n = (n + 1) & 0xFFFFFFFF  # the call instruction belongs to what came before
            ev = ("op", sites[pc])
        else:
            ev = bounds.at(pc, r.reg(_RA))
            if ev is None:
                continue
        delta = (n - last) & 0xFFFFFFFF if last is not None else 0
        if seg is not None:
            seg.instructions += delta
        elif calls:
            main_n += delta
        last = n
        kind, what = ev
        if kind == "start":
            calls.append(Call(what, [Segment("prologue")]))
            seg = calls[-1].segments[-1]
            bps.insert(bounds.ret)  # type: ignore[arg-type]
        elif kind == "op":
            calls[-1].segments.append(Segment(what))
            seg = calls[-1].segments[-1]
        else:
            seg = None
