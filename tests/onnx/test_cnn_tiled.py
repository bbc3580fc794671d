"""Convolutions and pools tiled through L1 (issue 20: plan/conv_tiling.py, codegen/tiled_conv.py), run on the
host with siracusa-like's memory hierarchy (L1 above the L2 arena, weights in L3; DMA is memcpy here):
- every geometry of tests/plan/conv_cases.py (strides, dilations, asymmetric pads, groups, a depthwise
  multiplier, pointwise, pools with count_include_pad and ceil_mode, ConvTranspose, 1-D by positions, 3-D by depth
  slices) with L1 = 2 KiB (1-D: 1 KiB), against
  onnxruntime and bit for bit against the same graph compiled without levels;
- the float DS-CNN and MobileNetV2 of tests/onnx/cnn_nets.py with an L1 far smaller than their largest
  layer, against onnxruntime within 1e-4, with and without memory sharing (the same bytes; a smaller arena
  with sharing, the tiled loops' contracts checked by the plan checker before any C is written);
- the same networks quantized by onnxruntime (QDQ): ConvInteger tiles, and so does every other operator (the
  quantizers, Requantize, QLinearAdd, QLinearGlobalAveragePool, MatMulInteger), outputs equal to onnxruntime's."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from slmc.driver import CompileOptions, compile_model, run_graph
from slmc.targets import TARGETS, get_target

rt = pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.slow

sys.path.append(str(Path(__file__).parent))
sys.path.append(str(Path(__file__).parent.parent / "plan"))
from conv_cases import conv_int_model, conv_models  # noqa: E402

TARGET = "host+siracusa-levels"
L1 = {"ds_cnn": "8KiB", "mobilenet_v2": "32KiB"}


@pytest.fixture
def target(monkeypatch) -> str:
    """The host's compiler and machine with siracusa-like's memory hierarchy, for this test only."""
    monkeypatch.setitem(TARGETS, TARGET, dataclasses.replace(get_target("host"), name=TARGET,
                                                             levels=get_target("siracusa-like").levels))
    return TARGET


def _compile_run(path: Path, x: np.ndarray, target: str, tag: str, mem: str | None = None,
                 sharing: str = "on") -> tuple[list[np.ndarray], dict]:
    out = path.parent / f"out_{tag}"
    compile_model(CompileOptions(model=path, out=out, target=target, mem=mem, memory_sharing=sharing))
    got, _ = run_graph(out, {"x": x})
    return [got[f"output_{i}"] for i in range(len(got))], json.loads((out / "report.json").read_text())


@pytest.mark.parametrize("case", [0, 1, 2], ids=["conv2d", "conv1d", "conv3d"])
def test_every_geometry_tiled_matches_onnxruntime_and_the_untiled_build(target, tmp_path, case):
    name, model, x = conv_models()[case]
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    want = rt.InferenceSession(str(path)).run(None, {"x": x})
    l1 = (2048, 1024, 2048)[case]
    got, rep = _compile_run(path, x, target, "tiled", mem=f"L1={l1 // 1024}KiB")
    ref, _ = _compile_run(path, x, target, "untiled")
    tiles = rep["levels"]["tiles"]
    n_tiled = sum(1 for n in model.graph.node if n.op_type in ("Conv", "ConvTranspose", "MaxPool", "AveragePool"))
    assert len(tiles) == n_tiled and not rep["levels"]["in_place"]
    assert any(t["calls"] > 1 for t in tiles) and rep["levels"]["l1_bytes"] <= l1
    for g, r, w in zip(got, ref, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
        assert np.array_equal(g, r)


def test_conv_integer_tiled_equals_untiled(target, tmp_path):
    """ConvInteger tiles (uint8 data, int8 weights with per-channel zero points sliced per channel tile) give
    the untiled build's int32 sums (which tests/onnx/test_qdq.py checks against onnxruntime)."""
    path = tmp_path / "convint.onnx"
    onnx.save(conv_int_model(), str(path))
    x = np.random.default_rng(2).integers(0, 255, (1, 6, 9, 7)).astype(np.uint8)
    got, rep = _compile_run(path, x, target, "tiled", mem="L1=1KiB")
    ref, _ = _compile_run(path, x, target, "untiled")
    assert len(rep["levels"]["tiles"]) == 3 and sum(t["calls"] for t in rep["levels"]["tiles"]) > 3
    for g, r in zip(got, ref):
        assert g.dtype == np.int32 and np.array_equal(g, r)


def _largest_layer(rep: dict) -> int:
    """Bytes of the largest tiled operator's input, weights and output: what an untiled kernel in L1 would need."""
    return max(t["compulsory_bytes"] for t in rep["levels"]["tiles"])


@pytest.mark.parametrize("name", ["ds_cnn", "mobilenet_v2"])
def test_float_network_tiled_matches_onnxruntime_and_sharing_shrinks_the_arena(target, tmp_path, name):
    from test_cnn_networks import export

    path, x = export(name, tmp_path / "net")
    want = rt.InferenceSession(str(path)).run(None, {"x": x})[0]
    mem = f"L1={L1[name]}"
    (on,), rep_on = _compile_run(path, x, target, "on", mem=mem, sharing="on")
    (off,), rep_off = _compile_run(path, x, target, "off", mem=mem, sharing="off")
    np.testing.assert_allclose(on, want, rtol=1e-4, atol=1e-4)
    assert np.array_equal(on, off)
    lv = rep_on["levels"]
    capacity = lv["placement"][0]["capacity"]
    assert lv["placement"][0]["used"] <= capacity < _largest_layer(rep_on)
    convs = [t for t in lv["tiles"] if t["op"] == "Conv"]
    assert len(convs) == sum(1 for n in onnx.load(str(path)).graph.node if n.op_type == "Conv")
    assert sum(t["calls"] for t in convs) > 2 * len(convs)
    assert rep_on["arena_bytes"] < rep_off["arena_bytes"]


@pytest.mark.parametrize("name", ["ds_cnn", "mobilenet_v2"])
def test_qdq_network_tiled_equals_onnxruntime(target, tmp_path, name):
    from test_qdq import quantized

    path, x = quantized(name, "QDQ", tmp_path / "net")
    want = rt.InferenceSession(str(path)).run(None, {"x": x})[0]
    (got,), rep = _compile_run(path, x, target, "tiled", mem=f"L1={L1[name]}")
    assert np.array_equal(got, want)
    convs = [t for t in rep["levels"]["tiles"] if t["op"] == "ConvInteger"]
    assert convs and sum(t["calls"] for t in convs) > 2 * len(convs)
    tiled = {t["node"] for t in rep["levels"]["tiles"]}
    assert not [o["op"] for o in rep["ops"] if o["name"] not in tiled], "every operator tiled (quantizers, " \
        "Requantize, QLinearAdd, QLinearGlobalAveragePool, MatMulInteger included)"
