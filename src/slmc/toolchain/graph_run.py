"""Run a compiled graph (not a language model) on its inputs, on the host or under the target's emulator.

Inputs bind to the graph inputs in order: `input_i`, else the input's name, else the i-th array of the
file (Deeploy's test vectors are called arr_0, _0, ...). An array may be of any numeric type whose
values the graph input's type holds exactly (integer networks take integers stored as float or int64);
anything else is refused rather than silently converted. On an emulated target the program reads and
writes its packed files through semihosting (main_graph.c's fopen works the same under picolibc).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from slmc.errors import SlmcError
from slmc.frontend.onnx_deeploy import bind_feed
from slmc.ir import DType
from slmc.targets import get_target


def _coerce(arr: np.ndarray, i: int, row: dict) -> np.ndarray:
    dt = {d.short: d.np for d in DType}[row["dtype"]]
    want = f"{row['dtype']}{row['shape']}"
    if list(arr.shape) != row["shape"]:
        raise SlmcError(f"input_{i} is {arr.dtype}{list(arr.shape)}, the graph takes {want}",
                        "give arrays of the graph's shapes and types")
    if np.can_cast(arr.dtype, dt, casting="same_kind") and not (dt.kind in "iu" and arr.dtype.kind in "iu"):
        return np.ascontiguousarray(arr, dtype=dt)
    if dt.kind in "iu" and arr.dtype.kind in "iuf":
        info = np.iinfo(dt)
        vals = arr.astype(np.float64) if arr.dtype.kind == "f" else arr
        ok = np.all(np.isfinite(vals)) and np.all(vals == np.rint(vals)) if arr.dtype.kind == "f" else True
        if ok and (arr.size == 0 or (vals.min() >= info.min and vals.max() <= info.max)):
            return np.ascontiguousarray(np.rint(vals) if arr.dtype.kind == "f" else vals, dtype=dt)
        raise SlmcError(f"input_{i} holds values that {row['dtype']} does not hold exactly (the compiled graph "
                        f"takes {want})", "give integer values within the input's type")
    if dt.kind == "f" and arr.dtype.kind in "iu":
        return np.ascontiguousarray(arr, dtype=dt)
    raise SlmcError(f"input_{i} is {arr.dtype}{list(arr.shape)}, the graph takes {want}",
                    "give arrays of the graph's shapes and types")


def pack_inputs(io: dict, feeds: dict[str, np.ndarray]) -> bytes:
    packed = bytearray(io["inputs_bytes"])
    for i, row in enumerate(io["inputs"]):
        arr = bind_feed(feeds, i, row["name"])
        if arr is None:
            raise SlmcError(f"no value for graph input {i} ('{row['name']}' {row['dtype']}{row['shape']})",
                            f"pass it as input_{i} in the .npz file")
        packed[row["offset"]:row["offset"] + row["nbytes"]] = _coerce(np.asarray(arr), i, row).tobytes()
    return bytes(packed)


def run_graph(project: Path, feeds: dict[str, np.ndarray], repeats: int = 1,
              timeout: float | None = 600) -> tuple[dict[str, np.ndarray], float]:
    """Returns `output_0`, ... and the seconds one run took (0.0 on an emulated target)."""
    from slmc.toolchain.build import build
    from slmc.toolchain.run import run_program

    rep = json.loads((Path(project) / "report.json").read_text())
    target = get_target(rep["target"])
    io = rep["graph_io"]
    dtypes = {d.short: d.np for d in DType}
    packed = pack_inputs(io, feeds)
    binary = build(Path(project))
    with tempfile.TemporaryDirectory(prefix="slmc-run-") as tmp:
        src, dst = Path(tmp) / "inputs.bin", Path(tmp) / "outputs.bin"
        src.write_bytes(packed)
        seconds = 0.0
        if target.emulator is None:
            try:
                r = subprocess.run([str(binary.resolve()), str(src), str(dst), "-r", str(repeats)], capture_output=True,
                                   text=True)
            except OSError as e:
                raise SlmcError(f"cannot start the program '{binary}' ({e.strerror})", "build the project again (`make` in it)") from None
            if r.returncode != 0:
                raise SlmcError(f"the generated program exited with code {r.returncode}: "
                                f"{(r.stderr or r.stdout).strip()[-300:]}", "this is a bug in slmc; please report it")
            seconds = next((float(ln.split()[2]) for ln in r.stdout.splitlines() if ln.startswith("S seconds")), 0.0)
        else:
            run_program(target, binary, [str(src.resolve()), str(dst.resolve())], timeout=timeout)
        raw = dst.read_bytes()
    if len(raw) < io["outputs_bytes"]:
        raise SlmcError(f"the program wrote {len(raw)} of {io['outputs_bytes']} output bytes", "this is a bug in slmc")
    outs = {}
    for i, row in enumerate(io["outputs"]):
        chunk = raw[row["offset"]:row["offset"] + row["nbytes"]]
        outs[f"output_{i}"] = np.frombuffer(chunk, dtype=dtypes[row["dtype"]]).reshape(row["shape"]).copy()
    return outs, seconds
