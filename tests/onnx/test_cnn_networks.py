"""Whole float networks built here in torch from public architectures, exported with torch.onnx.export,
compiled by slmc and run, against onnxruntime within 1e-4 (issue 20):
- a DS-CNN keyword-spotting net (Zhang et al., "Hello Edge", arXiv 1711.07128: a strided conv stem, then
  depthwise-separable blocks, each depthwise 3x3 + BatchNorm + ReLU, pointwise 1x1 + BatchNorm + ReLU;
  average pool; a linear classifier) over a 49x10 MFCC map;
- a 1-D convolutional autoencoder with BatchNorm and ConvTranspose (the DCASE anomaly-detection style:
  Conv1d/BN/ReLU down, ConvTranspose1d/BN/ReLU up);
- MobileNetV2 at width 0.35 on 3x96x96 (Sandler et al., arXiv 1801.04381; written from the paper in torchvision's
  structure: ReLU6 as Clip, inverted residuals with their residual Add, global average pool, Gemm);
- a Compact Convolutional Transformer, CCT-2 (Hassani et al., arXiv 2104.05704: conv tokenizer with MaxPool,
  LayerNorm, multi-head self-attention, GELU (Erf or Gelu by exporter), sequence pooling) on 3x32x32.
The builders are tests/onnx/cnn_nets.py. All in eval mode, so every BatchNormalization folds into its Conv (passes/fold_batchnorm.py) or, after a
ConvTranspose, runs as its own kernel. A copy with its nodes shuffled compiles to the same C. The slow tier
runs every network on the Cortex-M33 and on RV32IMAC under QEMU."""

from __future__ import annotations

import random
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from slmc.frontend.onnx_import import load

torch = pytest.importorskip("torch")
rt = pytest.importorskip("onnxruntime")
nn = torch.nn


sys.path.append(str(Path(__file__).parent))
from cnn_nets import NETWORKS  # noqa: E402  (the builders live beside the tests)
from cnn_nets import compile_run as _compile_run, ort_output as _ort  # noqa: E402

NETS = ["ds_cnn", "autoencoder_1d", "mobilenet_v2", "cct_2"]
# BatchNormalization nodes left after folding (those after a ConvTranspose run as their own kernel)
BN_LEFT = {"ds_cnn": 0, "autoencoder_1d": 2, "mobilenet_v2": 0}
MARKERS = {"mobilenet_v2": ("Clip", "Add", "ReduceMean"), "cct_2": ("MaxPool", "LayerNormalization", "Softmax", "Erf")}


def export(name: str, folder: Path) -> tuple[Path, np.ndarray]:
    model, xn = NETWORKS[name]()
    x = torch.from_numpy(xn)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    # torch's constant folding would fuse Conv and BatchNorm itself: off, so the file keeps them for slmc's pass
    torch.onnx.export(model, (x,), str(path), input_names=["x"], output_names=["y"], dynamo=False, opset_version=17,
                      do_constant_folding=False)
    return path, x.numpy()




@pytest.mark.parametrize("name", NETS)
def test_network_matches_onnxruntime_and_shuffled_copy_compiles_the_same(name: str, tmp_path: Path) -> None:
    path, x = export(name, tmp_path / "net")
    want = _ort(path, x)
    got, out = _compile_run(path, x)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    ops = [n.op for n in load(path).nodes]
    assert "Conv" in ops and all(k in ops for k in MARKERS.get(name, ())), ops
    if name in BN_LEFT:
        assert any(n.op_type == "BatchNormalization" for n in onnx.load(str(path)).graph.node)
        assert ops.count("BatchNormalization") == BN_LEFT[name], ops
    m = onnx.load(str(path))
    nodes = list(m.graph.node)
    random.Random(7).shuffle(nodes)
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    (tmp_path / "shuffled").mkdir()
    onnx.save(m, str(tmp_path / "shuffled" / "model.onnx"))
    np.testing.assert_allclose(_ort(tmp_path / "shuffled" / "model.onnx", x), want, rtol=1e-6)
    got2, out2 = _compile_run(tmp_path / "shuffled" / "model.onnx", x)
    np.testing.assert_array_equal(got2, got)
    for f in ("model.c", "model.h", "weights.bin"):
        assert (out2 / f).read_bytes() == (out / f).read_bytes(), f


@pytest.mark.slow
@pytest.mark.parametrize("target", ["cortex-m33", "rv32imac"])
@pytest.mark.parametrize("name", NETS)
def test_network_on_an_emulated_mcu(name: str, target: str, tmp_path: Path) -> None:
    tools = {"cortex-m33": ("arm-none-eabi-gcc", "qemu-system-arm"), "rv32imac": ("riscv64-unknown-elf-gcc", "qemu-system-riscv32")}
    if any(shutil.which(t) is None for t in tools[target]):
        pytest.skip(f"{target}: cross compiler or QEMU not installed (make toolchains)")
    path, x = export(name, tmp_path / "net")
    got, _ = _compile_run(path, x, target)
    np.testing.assert_allclose(got, _ort(path, x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", NETS)
def test_network_from_torchs_default_exporter(name: str, tmp_path: Path) -> None:
    """torch.onnx.export's default (torch.export-based, onnxscript) exporter writes other graphs: the same."""
    pytest.importorskip("onnxscript")
    model, xn = NETWORKS[name]()
    x = torch.from_numpy(xn)
    (tmp_path / "net").mkdir()
    path = tmp_path / "net" / "model.onnx"
    torch.onnx.export(model, (x,), str(path), input_names=["x"], output_names=["y"])
    got, _ = _compile_run(path, x.numpy())
    np.testing.assert_allclose(got, _ort(path, x.numpy()), rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_instructions_of_one_inference_on_the_m33(tmp_path: Path) -> None:
    """toolchain/graph_count.py: Unicorn counts main's one call of slmc_run_packed, split by kernel C file
    (benchmarks/networks.py reports these counts)."""
    pytest.importorskip("unicorn")
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("cortex-m33: cross compiler not installed (make toolchains)")
    from slmc.toolchain.graph_count import count_graph

    path, x = export("ds_cnn", tmp_path / "net")
    _, out = _compile_run(path, x, "cortex-m33")
    c = count_graph(out, {"x": x})
    assert (c.target, c.counter, c.macs) == ("cortex-m33", "unicorn", 652384)
    assert sum(k.macs for k in c.kernels) == c.macs and sum(k.calls for k in c.kernels) == 16
    assert c.kernels[0].kernel == "conv_f32.c" and c.kernels[0].calls == 7
    assert sum(k.instructions for k in c.kernels) < c.instructions < 20 * c.macs
