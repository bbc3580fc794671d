"""kernels/ffn_pair.py's row-streamed forms on the Cortex-M33 and RV32 (issue 21), built for the core with the
ISA kernels they wrap (linear_q8_dsp.c / linear_q8_rv32.c, linear_i8_dsp.c / linear_i8_rv32.c, and the gate and
quantizer kernels those targets bind) and run under QEMU: each form's call, as its registry emitter writes it,
against the unfused operators' calls, as theirs write them, on the same operands, byte for byte. int8 compiles
no prompt step, so this is where its ISA pair runs; the q8 forms also run in whole programs
(tests/e2e/test_sharing.py)."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import numpy as np
import pytest

from slmc.codegen.emit_c import prototypes
from slmc.ir import DType, Node, ValueKind
from slmc.kernels.registry import C_DIR, select
from slmc.passes import fuse_gate, stream_rows
from slmc.targets import get_target

pytestmark = pytest.mark.slow
ROWS = 3
TESTS = Path(__file__).resolve().parents[1]


def _load(path: Path, name: str):
    """A test module by path (a `kernels` package in site-packages shadows this folder's name)."""
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


PATHS = _load(TESTS / "kernels" / "test_isa_kernel_paths.py", "_isa_paths")
PAIRS = _load(TESTS / "passes" / "test_fuse_gate_quantized.py", "_pairs")


class _Ctx:
    """A kernel's CallContext over named static buffers."""

    def __init__(self, node: Node, names: dict[str, str], outs: list[str], scratch: str) -> None:
        self.node, self.names, self.outs, self._scratch = node, names, outs, scratch

    def ref(self, i: int) -> str:
        v = self.node.inputs[i] if i < len(self.node.inputs) else None
        return "NULL" if v is None else f"(void *){self.names[v.name]}"

    def out(self, i: int = 0) -> str:
        return f"(void *){self.outs[i]}"

    def scratch(self) -> str:
        return f"(void *){self._scratch}"

    @property
    def rows(self) -> str:
        return str(ROWS)

    @property
    def pos(self) -> str:
        return "0"

    def attr(self, key: str, wide: bool = False) -> str:
        return f"{int(self.node.attrs[key])}{'LL' if wide else ''}"


def _bytes(v, rng) -> bytes:
    if v.kind == ValueKind.CONST:
        return np.ascontiguousarray(v.data).tobytes()
    if v.dtype == DType.F32:
        return (3 * rng.standard_normal(v.type.numel)).astype(np.float32).tobytes()
    return rng.integers(-3000 if v.dtype in (DType.I16, DType.I32) else -100, 3000 if v.dtype in (DType.I16, DType.I32)
                        else 100, v.type.numel).astype(v.dtype.np).tobytes()


def _buffer(name: str, data: bytes | int) -> str:
    if isinstance(data, int):
        return f"static uint8_t {name}[{max(data, 1)}] __attribute__((aligned(16)));"
    return (f"static uint8_t {name}[{max(len(data), 1)}] __attribute__((aligned(16))) = {{"
            + ",".join(str(b) for b in data) + "};")


def _program(target: str, numerics: str, form: str, layer_name: str) -> tuple[str, list[str]]:
    """C that runs the form `form` (node `layer_name` of the rewritten graph) and the unfused operators it
    replaces, then prints `bad 0` when their outputs agree byte for byte; the C files both need."""
    feats = get_target(target).features
    model = PAIRS._model(numerics == "q8")
    plain = PAIRS._graph(model, numerics, ROWS, target)
    done = stream_rows.run(fuse_gate.run(PAIRS._graph(model, numerics, ROWS, target), feats), feats)
    node = next(n for n in done.nodes if n.op == form and n.name == layer_name)
    old = next(n for n in plain.nodes if n.name == layer_name)   # the unfused gate, or the unfused product
    if form in ("linear_swiglu_q8", "linear_swiglu_i8"):
        unfused = [old.inputs[1].producer, old]                  # w3, then the gate
    elif form == "quantize_linear_q8":
        unfused = [old.inputs[0].producer, old]                  # the quantizer, then the product
    else:
        unfused = [old]
    rng = np.random.default_rng(6)
    data: dict[str, bytes] = {}
    for v in [*node.inputs, *(w for n in unfused for w in n.inputs)]:
        if v is not None and v.name not in data and (v.producer is None or all(v.producer is not n for n in unfused)):
            data[v.name] = _bytes(v, rng)
    names = {name: f"b{i}" for i, name in enumerate(data)}
    decls = [_buffer(names[k], b) for k, b in data.items()]
    calls, files = [], []
    spec = select(node, feats)
    decls += [_buffer("fused_out", node.outputs[0].nbytes), _buffer("fused_scratch", spec.scratch(node))]
    calls.append(spec.emit(node, _Ctx(node, names, ["fused_out"], "fused_scratch")))  # type: ignore[arg-type]
    files += [spec.c_file, *spec.deps]
    for j, n in enumerate(unfused):
        s = select(n, feats)
        outs = []
        for k, o in enumerate(n.outputs):
            outs.append(f"u{j}_{k}")
            decls.append(_buffer(outs[-1], o.nbytes))
            names[o.name] = outs[-1]
        decls.append(_buffer(f"u{j}_scratch", s.scratch(n)))
        calls.append(s.emit(n, _Ctx(n, names, outs, f"u{j}_scratch")))  # type: ignore[arg-type]
        files += [s.c_file, *s.deps]
    last = f"u{len(unfused) - 1}_0"
    files = list(dict.fromkeys(files))
    protos = prototypes(files, {f: (C_DIR / f).read_text() for f in files})   # each C file compiled on its own
    src = "\n".join(["#include <stdio.h>", "#include <string.h>", '#include "slmc_kernels.h"', *protos, *decls,
                     "int main(void) {",
                     "    int n = " + str(ROWS) + "; (void)n;", *(f"    {c}" for c in calls),
                     f'    printf("bad %d\\n", memcmp(fused_out, {last}, {node.outputs[0].nbytes}) != 0);',
                     "    return 0;", "}"])
    return src, files


CASES = [("int8", "linear_swiglu_i8", "layers.1.ffn_act"), ("q8", "linear_swiglu_q8", "layers.1.ffn_act"),
         ("q8", "quantize_linear_q8", "layers.1.w2_out"), ("q8", "quantize_linear_q8", "layers.0.wo_out"),
         ("q8", "linear_q8_by_row", "layers.1.w1_out")]


@pytest.mark.parametrize("target", ["cortex-m33", "rv32imac"])
@pytest.mark.parametrize("numerics,form,layer_name", CASES)
def test_the_form_is_bit_identical_to_the_unfused_kernels_on_the_core(tmp_path, target, numerics, form, layer_name):
    PATHS.need_toolchain(target)
    cc, qemu, _, _ = PATHS.BUILD[target]
    src, files = _program(target, numerics, form, layer_name)
    assert any(f.endswith(("_dsp.c", "_rv32.c")) for f in files), files   # the ISA kernel, not the portable one
    (tmp_path / "check.c").write_text(src)
    elf = tmp_path / "check.elf"
    subprocess.run([*cc, f"-I{C_DIR}", "-o", str(elf), str(tmp_path / "check.c"), *(str(C_DIR / f) for f in files),
                    "-lm"], check=True)
    r = subprocess.run([*qemu, str(elf)], capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    out = r.stdout + r.stderr
    assert r.returncode == 0 and "bad 0" in out, out
