"""Element-wise and normalisation kernels tiled through L1 (issue 20: kernels/tiles.py `ChunkTiles`,
plan/chunk_tiling.py, codegen/tiled_chunk.py), run on the host with siracusa-like's memory hierarchy:
- unary ops, Clip, binary ops on operands of one shape or a scalar (by runs of elements, a shorter last
  tile included), a binary op with a per-channel operand ([C, 1, 1], by whole channels, the operand read in
  place), BatchNormalization, InstanceNormalization (by whole channels), GroupNormalization (by whole groups)
  and a ReduceMean over the spatial axes (by channels) with a 1 KiB L1: bit for bit the untiled build's outputs,
  within 1e-4 of onnxruntime; on a batch of two the per-channel ops and the normalisations stay untiled;
- the float DS-CNN, MobileNetV2 and 1-D autoencoder of tests/onnx/cnn_nets.py: every operator tiled (the
  element-wise ones, BatchNormalization, the pooling ReduceMean, Gemm, ConvTranspose), outputs bit-identical to
  the untiled build and within 1e-4 of onnxruntime, with memory sharing on (the tiled contracts checked by the
  plan checker);
- the same networks on siracusa-like itself (rv32imac, QEMU) equal rv32imac without levels bit for bit;
- the tiled overlap contracts are the untiled element-wise ones (plan/sharing.py)."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from slmc.driver import CompileOptions, compile_model, run_graph
from slmc.targets import TARGETS, get_target

rt = pytest.importorskip("onnxruntime")
sys.path.append(str(Path(__file__).parent))

TARGET = "host+siracusa-levels"
RNG = np.random.default_rng(20)
F = TensorProto.FLOAT


def _f(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


@pytest.fixture
def target(monkeypatch) -> str:
    monkeypatch.setitem(TARGETS, TARGET, dataclasses.replace(get_target("host"), name=TARGET,
                                                             levels=get_target("siracusa-like").levels))
    return TARGET


def _model(batch: int = 1) -> onnx.ModelProto:
    """x [batch, 12, 29, 1] through every tiled kind; each result is a graph output."""
    C = 12
    inits = {"lo": np.array(-0.5, np.float32), "hi": np.array(0.7, np.float32), "k": _f(C, 1, 1),
             "six": np.array(6, np.float32), "one": np.ones(1, np.float32), "axes": np.array([2, 3], np.int64),
             "s": _f(C), "b": _f(C), "mu": _f(C), "var": RNG.random(C).astype(np.float32) + 0.5}
    n = helper.make_node
    nodes = [n("Relu", ["x"], ["r"]), n("Sigmoid", ["r"], ["sg"]), n("Clip", ["x", "lo", "hi"], ["cl"]),
             n("Add", ["sg", "cl"], ["ad"]), n("Mul", ["ad", "x"], ["mu2"]), n("Mul", ["x", "k"], ["bc"], name="bc_node"),
             n("BatchNormalization", ["mu2", "s", "b", "mu", "var"], ["bn"]),
             n("InstanceNormalization", ["bn", "s", "b"], ["in"], epsilon=1e-3),
             n("GroupNormalization", ["in", "s", "b"], ["gn"], num_groups=4),
             n("Div", ["gn", "six"], ["dv"]), n("Sub", ["one", "dv"], ["sb"]),   # scalar operands, read in place
             n("ReduceMean", ["sb", "axes"], ["rm"], keepdims=1)]
    outs = ["ad", "bc", "bn", "in", "gn", "sb", "rm"]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", F, [batch, C, 29, 1])],
                          [helper.make_tensor_value_info(o, F, None) for o in outs],
                          initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)


def _build(path: Path, x: np.ndarray, target: str, tag: str, mem: str | None) -> tuple[list[np.ndarray], dict]:
    out = path.parent / f"out_{tag}"
    compile_model(CompileOptions(model=path, out=out, target=target, mem=mem))
    got, _ = run_graph(out, {"x": x})
    return [got[f"output_{i}"] for i in range(len(got))], json.loads((out / "report.json").read_text())


def _untiled_ops(rep: dict) -> list[str]:
    tiled = {t["node"] for t in rep["levels"]["tiles"]}
    return sorted(o["op"] for o in rep["ops"] if o["name"] not in tiled)


@pytest.mark.slow
def test_elementwise_and_norms_tiled_equal_untiled_and_onnxruntime(target, tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(_model(), str(path))
    x = _f(1, 12, 29, 1)
    want = rt.InferenceSession(str(path)).run(None, {"x": x})
    got, rep = _build(path, x, target, "tiled", "L1=1KiB")
    ref, rep0 = _build(path, x, target, "untiled", None)
    tiles = {t["op"]: t for t in rep["levels"]["tiles"]}
    assert _untiled_ops(rep) == [], "every operator tiled, the per-channel Mul and the ReduceMean included"
    assert set(tiles) == {"Relu", "Sigmoid", "Clip", "Add", "Mul", "BatchNormalization", "InstanceNormalization",
                          "GroupNormalization", "Div", "Sub", "ReduceMean"}
    bc = next(t for t in rep["levels"]["tiles"] if t["node"] == "bc_node")
    assert bc["rows"] == 12 and bc["x_tile"][1] == 29 and [b["role"] for b in bc["l1_buffers"]][0] == "in0"
    assert tiles["ReduceMean"]["rows"] == 12 and tiles["ReduceMean"]["out_tile"][1] == 1   # one mean per channel
    assert [b["role"] for b in tiles["Sub"]["l1_buffers"]] == ["in0", "in0", "out"]   # the scalar is not moved
    assert rep["levels"]["l1_bytes"] <= 1024 and not rep["levels"]["in_place"]
    assert all(t["calls"] > 1 for t in tiles.values())
    assert any(t["rows"] % t["x_tile"][0] for t in tiles.values()), "a shorter last tile is exercised"
    assert tiles["GroupNormalization"]["x_tile"][1] == 3 * 29   # whole groups of 3 channels
    assert tiles["BatchNormalization"]["x_tile"][1] == 29       # whole channels
    assert not rep0.get("levels")
    for g, r, w in zip(got, ref, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)
        assert np.array_equal(g, r)


@pytest.mark.slow
def test_a_batch_of_two_tiles_only_the_elementwise_ops(target, tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(_model(batch=2), str(path))
    x = _f(2, 12, 29, 1)
    want = rt.InferenceSession(str(path)).run(None, {"x": x})
    got, rep = _build(path, x, target, "tiled", "L1=1KiB")
    assert _untiled_ops(rep) == ["BatchNormalization", "GroupNormalization", "InstanceNormalization", "Mul",
                                 "ReduceMean"]
    assert {t["op"] for t in rep["levels"]["tiles"]} == {"Relu", "Sigmoid", "Clip", "Add", "Mul", "Div", "Sub"}
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)


def test_tiled_contracts_are_the_untiled_elementwise_ones():
    """plan/sharing.py: a chunk-tiled operator keeps its kernel's element-wise contract (a tile's inputs
    are loaded before its outputs are stored, tiles in memory order); a broadcast operand gets none."""
    import tempfile

    from slmc.driver import bind
    from slmc.frontend.onnx_import import load
    from slmc.plan.levels import choose_tiles
    from slmc.plan.sharing import contracts_for
    from slmc.targets.levels import levels_of

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "m.onnx"
        onnx.save(_model(), str(p))
        graph = load(p)
    host = get_target("host")
    binding = bind([graph], host)
    levels = levels_of(dataclasses.replace(host, name=TARGET, levels=get_target("siracusa-like").levels))
    chosen = [choose_tiles(n, binding.get(id(n)), levels) for n in graph.nodes]
    assert sum(1 for c in chosen if c is not None and c[1] is not None) == len(graph.nodes)   # the per-channel Mul too
    tiled = contracts_for([graph], binding, levels)
    untiled = contracts_for([graph], binding, None)
    assert tiled == untiled
    ops = {n.op: n for n in graph.nodes if id(n) in tiled}
    assert {"Relu", "Add", "BatchNormalization", "GroupNormalization"} <= set(ops)
    add = tiled[id(ops["Add"])]
    assert {s.inp for s in add} == {0, 1} and all(s.why == "element by element, in order" for s in add)


@pytest.mark.slow
@pytest.mark.parametrize("name,l1", [("ds_cnn", "8KiB"), ("mobilenet_v2", "32KiB"), ("autoencoder_1d", "2KiB")])
def test_float_network_elementwise_tiled_bit_identical(target, tmp_path, name, l1):
    from test_cnn_networks import export

    path, x = export(name, tmp_path / "net")
    want = rt.InferenceSession(str(path)).run(None, {"x": x})[0]
    (got,), rep = _build(path, x, target, "tiled", f"L1={l1}")
    (ref,), _ = _build(path, x, target, "untiled", None)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    assert np.array_equal(got, ref)
    assert _untiled_ops(rep) == [] and not rep["levels"]["in_place"], "every operator tiled (Gemm, ReduceMean, "\
        "ConvTranspose and the 1-D convs by positions included)"


@pytest.mark.slow
def test_siracusa_like_itself_tiled_equals_rv32imac_untiled(tmp_path):
    """The siracusa-like target proper (rv32imac recipe, QEMU virt, L1 of 1 KiB) against rv32imac without
    levels: the same bits, within 1e-4 of onnxruntime."""
    import shutil

    if any(shutil.which(t) is None for t in ("riscv64-unknown-elf-gcc", "qemu-system-riscv32")):
        pytest.skip("rv32imac: cross compiler or QEMU not installed (make toolchains)")
    path = tmp_path / "m.onnx"
    onnx.save(_model(), str(path))
    x = _f(1, 12, 29, 1)
    want = rt.InferenceSession(str(path)).run(None, {"x": x})
    got, rep = _build(path, x, "siracusa-like", "tiled", "L1=1KiB")
    ref, _ = _build(path, x, "rv32imac", "untiled", None)
    assert len(rep["levels"]["tiles"]) == 12 and rep["levels"]["l1_bytes"] <= 1024
    for g, r, w in zip(got, ref, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)
        assert np.array_equal(g, r)


@pytest.mark.slow
@pytest.mark.parametrize("name,l1", [("ds_cnn", "8KiB"), ("mobilenet_v2", "32KiB"), ("autoencoder_1d", "2KiB")])
def test_float_network_on_siracusa_like_itself_equals_rv32imac_untiled(tmp_path, name, l1):
    import shutil

    from test_cnn_networks import export

    if any(shutil.which(t) is None for t in ("riscv64-unknown-elf-gcc", "qemu-system-riscv32")):
        pytest.skip("rv32imac: cross compiler or QEMU not installed (make toolchains)")
    path, x = export(name, tmp_path / "net")
    want = rt.InferenceSession(str(path)).run(None, {"x": x})[0]
    (got,), rep = _build(path, x, "siracusa-like", "tiled", f"L1={l1}")
    (ref,), _ = _build(path, x, "rv32imac", "untiled", None)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    assert np.array_equal(got, ref)
    assert _untiled_ops(rep) == [] and not rep["levels"]["in_place"]
