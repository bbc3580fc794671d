"""Each overlap contract against the C kernel it is declared for (issue 9).

A contract says where a kernel's output may lie over an input it consumes; it is written from the loop
order, so here the C kernel itself is the judge: every kernel with a contract is called (through its own
registry emitter) with the output at offsets across the declared range over that input, inside one
memory image, and must produce the bytes it produces with the output in a buffer of its own.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from slmc.driver import bind
from slmc.frontend.build import build_step_graph
from slmc.frontend.random_model import SHAPES, random_decoder
from slmc.ir import DType, Graph, Node, ValueKind
from slmc.ir.types import TensorType
from slmc.kernels.registry import C_DIR
from slmc.passes import fuse_gate
from slmc.targets import get_target

ROWS = 3
SMALL = replace(SHAPES["stories260K"], dim=16, hidden_dim=24, n_layers=1, n_heads=4, n_kv_heads=2, vocab_size=32, seq_len=8)


class _Ctx:
    """The code generator's CallContext over one memory image: every operand at a run-time offset."""

    def __init__(self, node: Node) -> None:
        self.node, self.ints_decls = node, []

    def ref(self, i: int) -> str:
        return "NULL" if i >= len(self.node.inputs) or self.node.inputs[i] is None else f"(void *)(mem + off[{i}])"

    def out(self, i: int = 0) -> str:
        return f"(void *)(mem + off[{len(self.node.inputs) + i}])"

    def scratch(self) -> str:
        return f"(void *)(mem + off[{len(self.node.inputs) + len(self.node.outputs)}])"

    @property
    def rows(self) -> str:
        return str(ROWS)

    @property
    def pos(self) -> str:
        return "0"

    def attr(self, key: str, wide: bool = False) -> str:   # the int8 kernels' attributes, as literals
        return f"{int(self.node.attrs[key])}{'LL' if wide else ''}"

    def ints(self, values: list[int]) -> str:
        name = f"ints{len(self.ints_decls)}"
        self.ints_decls.append(f"static const int32_t {name}[] = {{{', '.join(map(str, values)) or '0'}}};")
        return name


def _data(v, rng) -> bytes:
    if v.kind == ValueKind.CONST:
        return np.ascontiguousarray(v.data).tobytes()
    if v.dtype == DType.F32:
        return rng.standard_normal(v.type.numel).astype(np.float32).tobytes()
    if v.dtype == DType.U16:   # binary16 bit patterns of the KV cache
        return rng.standard_normal(v.type.numel).astype(np.float16).tobytes()
    return rng.integers(-100, 100, v.type.numel).astype(v.dtype.np).tobytes()


def _program(tmp: Path, node: Node, spec) -> Path:
    ctx = _Ctx(node)
    call = spec.emit(node, ctx)
    files = [spec.c_file, *spec.deps]
    n_ops = len(node.inputs) + len(node.outputs) + 1
    src = "\n".join(["#include <stdio.h>", "#include <stdlib.h>", '#include "slmc_kernels.h"',
                     *(f'#include "{f}"' for f in files), *ctx.ints_decls,
                     f"static long off[{n_ops}];", "static unsigned char *mem;",
                     "int main(int argc, char **argv) {",
                     f"    for (int i = 0; i < {n_ops}; i++) off[i] = atol(argv[3 + i]);",
                     "    long size = atol(argv[2]);",
                     "    mem = malloc((size_t)size);   /* 16-byte aligned on the host */",
                     '    FILE *f = fopen(argv[1], "rb");',
                     "    if (!f || fread(mem, 1, (size_t)size, f) != (size_t)size) return 3;",
                     "    fclose(f);",
                     f"    {call}",
                     '    f = fopen(argv[1], "wb");',
                     "    fwrite(mem, 1, (size_t)size, f);",
                     "    fclose(f);",
                     "    return 0;", "}"])
    c = tmp / f"harness_{node.name.replace('.', '_').replace('/', '_')}.c"
    c.write_text(src)
    exe = c.with_suffix("")
    subprocess.run(["gcc", *get_target("host").cflags, "-I", str(C_DIR), "-o", str(exe), str(c), "-lm"],
                   check=True, capture_output=True)
    return exe


def _run(exe: Path, tmp: Path, node: Node, spec, blobs: list[bytes | None], share, d: int | None) -> bytes:
    """Operands one after another; with `d`, output share.out at the tested input's offset + d."""
    sizes = [len(b) if b is not None else 0 for b in blobs] + [o.nbytes for o in node.outputs] + [spec.scratch(node)]
    al = lambda x: -(-x // 16) * 16  # noqa: E731
    offs, at = [], 4096
    for s in sizes:
        offs.append(at)
        at += al(s) + 4096
    n_in = len(node.inputs)
    if d is not None:
        offs[n_in + share.out] = offs[share.inp] + d
    size = at + 4096
    image = bytearray(size)
    for o, b in zip(offs, blobs):
        if b is not None:
            image[o:o + len(b)] = b
    path = tmp / "image.bin"
    path.write_bytes(bytes(image))
    subprocess.run([str(exe), str(path), str(size), *map(str, offs)], check=True)
    out = path.read_bytes()
    o = offs[n_in + share.out]
    return out[o:o + node.outputs[share.out].nbytes]


def _nodes():
    """One node per kernel with a contract that runs on the host, from small graphs of each flavour."""
    rng = np.random.default_rng(0)
    graphs = []
    for numerics, kw in (("fp32", {}), ("q8", {}), ("fp32", dict(kv_cache="fp16")), ("fp32", dict(kv_cache="int8"))):
        graphs.append(build_step_graph(random_decoder(SMALL, seed=1), ROWS, numerics, **kw))
    graphs[0] = fuse_gate.run(graphs[0])
    # the q8 and int8 FFN pairs and the row-streamed q8 products (kernels/ffn_pair.py), as the host binds them
    from slmc.frontend.build import build_float_graph
    from slmc.frontend.calibrate import formats_for
    from slmc.passes import quantize_int8, stream_rows

    host = get_target("host").features
    graphs.append(stream_rows.run(fuse_gate.run(build_step_graph(random_decoder(SMALL, seed=1), ROWS, "q8"), host), host))
    m8 = random_decoder(SMALL, seed=1)
    graphs.append(fuse_gate.run(quantize_int8.run(build_float_graph(m8, ROWS, "fp32"), formats_for(m8), ""), host))
    hf = replace(SMALL, rope_interleaved=False)
    graphs.append(build_step_graph(random_decoder(hf, seed=2), ROWS, "fp32"))
    gpt = replace(SMALL, norm="layer", ffn="gelu", pos="learned")
    graphs.append(build_step_graph(random_decoder(gpt, seed=3), ROWS, "fp32"))
    g = Graph("onnx")
    x = g.add_input("x", (2, 3, 4), DType.F32)
    t = TensorType((2, 3, 4), DType.F32)
    h = g.op("Exp", [x], t)
    a = g.op("Softmax", [h], t, axis=1)
    b = g.op("Softmax", [a], t, axis=-1)
    c = g.op("Add", [b, x], t)
    ln = g.add_const("ln_w", rng.standard_normal(4).astype(np.float32))
    g.outputs = [g.op("LayerNormalization", [c, ln], t, axis=-1)]
    graphs.append(g)
    seen: dict[tuple, tuple] = {}
    for gr in graphs:
        binding = bind([gr], get_target("host"))
        for n in gr.nodes:
            spec = binding.get(id(n))
            if spec is None:
                continue
            key = (spec.c_file, n.op, n.attrs.get("interleaved"), n.attrs.get("axis"))
            if key not in seen and spec.overlap(n):
                seen[key] = (n, spec)
    return list(seen.values())


NODES = _nodes()


@pytest.mark.parametrize("node,spec", NODES, ids=[f"{s.c_file}:{n.name}" for n, s in NODES])
def test_the_kernel_writes_the_same_bytes_anywhere_its_contract_allows(tmp_path, node, spec):
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    rng = np.random.default_rng(7)
    blobs = [None if v is None else _data(v, rng) for v in node.inputs]
    exe = _program(tmp_path, node, spec)
    for share in spec.overlap(node):
        want = _run(exe, tmp_path, node, spec, blobs, share, None)
        e = node.outputs[share.out].dtype.size
        ds = {share.lo, share.hi, 0, (share.lo + share.hi) // 2 // e * e}
        for d in sorted(x for x in ds if share.lo <= x <= share.hi and x % 4 == 0):
            assert _run(exe, tmp_path, node, spec, blobs, share, d) == want, (share.why, d)
