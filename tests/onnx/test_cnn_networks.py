"""Whole float networks built here in torch from public architectures, exported with torch.onnx.export,
compiled by slmc and run, against onnxruntime within 1e-4 (issue 20):
- a DS-CNN keyword-spotting net (Zhang et al., "Hello Edge", arXiv 1711.07128: a strided conv stem, then
  depthwise-separable blocks, each depthwise 3x3 + BatchNorm + ReLU, pointwise 1x1 + BatchNorm + ReLU;
  average pool; a linear classifier) over a 49x10 MFCC map;
- a 1-D convolutional autoencoder with BatchNorm and ConvTranspose (the DCASE anomaly-detection style:
  Conv1d/BN/ReLU down, ConvTranspose1d/BN/ReLU up).
Both in eval mode, so every BatchNormalization folds into its Conv (passes/fold_batchnorm.py) or, after a
ConvTranspose, runs as its own kernel. A copy with its nodes shuffled compiles to the same C. The slow tier
also runs the DS-CNN on the Cortex-M33 and the autoencoder on RV32IMAC under QEMU."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from slmc.driver import CompileOptions, compile_model, run_graph
from slmc.frontend.onnx_import import load

torch = pytest.importorskip("torch")
rt = pytest.importorskip("onnxruntime")
nn = torch.nn


def ds_cnn(classes: int = 12, width: int = 32, blocks: int = 3) -> "nn.Module":
    layers = [nn.Conv2d(1, width, (10, 4), stride=(2, 2), padding=(5, 1), bias=False), nn.BatchNorm2d(width), nn.ReLU()]
    for _ in range(blocks):
        layers += [nn.Conv2d(width, width, 3, padding=1, groups=width, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                   nn.Conv2d(width, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, classes)]
    return nn.Sequential(*layers)


class Autoencoder1d(nn.Module):
    def __init__(self, ch: int = 4, width: int = 16) -> None:
        super().__init__()
        self.enc = nn.Sequential(nn.Conv1d(ch, width, 5, stride=2, padding=2), nn.BatchNorm1d(width), nn.ReLU(),
                                 nn.Conv1d(width, 2 * width, 3, stride=2, padding=1), nn.BatchNorm1d(2 * width), nn.ReLU(),
                                 nn.MaxPool1d(2))
        self.dec = nn.Sequential(nn.ConvTranspose1d(2 * width, 2 * width, 2, stride=2), nn.BatchNorm1d(2 * width), nn.ReLU(),
                                 nn.ConvTranspose1d(2 * width, width, 4, stride=2, padding=1), nn.BatchNorm1d(width), nn.ReLU(),
                                 nn.ConvTranspose1d(width, ch, 5, stride=2, padding=2, output_padding=1))

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        return self.dec(self.enc(x))


NETS = {"ds_cnn": (ds_cnn, (1, 1, 49, 10)), "autoencoder_1d": (Autoencoder1d, (1, 4, 64))}


def _randomise_bn(model: "nn.Module", seed: int) -> None:
    """Trained-looking BatchNorm statistics (a fresh layer's are 0 and 1, which folding would not test)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(n, generator=g) * 0.5 + 1)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.2)


def export(name: str, folder: Path) -> tuple[Path, np.ndarray]:
    torch.manual_seed(20)
    make, shape = NETS[name]
    model = make()
    _randomise_bn(model, 20)
    model.eval()
    x = torch.randn(*shape)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    # torch's constant folding would fuse Conv and BatchNorm itself: off, so the file keeps them for slmc's pass
    torch.onnx.export(model, (x,), str(path), input_names=["x"], output_names=["y"], dynamo=False, opset_version=17,
                      do_constant_folding=False)
    return path, x.numpy()


def _ort(path: Path, x: np.ndarray) -> np.ndarray:
    return rt.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def _compile_run(path: Path, x: np.ndarray, target: str = "host") -> tuple[np.ndarray, Path]:
    out = path.parent / f"out_{target}"
    compile_model(CompileOptions(model=path, out=out, target=target))
    got, _ = run_graph(out, {"x": x})
    return got["output_0"], out


@pytest.mark.parametrize("name", list(NETS))
def test_network_matches_onnxruntime_and_shuffled_copy_compiles_the_same(name: str, tmp_path: Path) -> None:
    path, x = export(name, tmp_path / "net")
    want = _ort(path, x)
    got, out = _compile_run(path, x)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    assert any(n.op_type == "BatchNormalization" for n in onnx.load(str(path)).graph.node)
    ops = [n.op for n in load(path).nodes]
    assert "Conv" in ops and ops.count("BatchNormalization") == (2 if name == "autoencoder_1d" else 0), ops
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
@pytest.mark.parametrize("name,target", [("ds_cnn", "cortex-m33"), ("autoencoder_1d", "rv32imac")])
def test_network_on_an_emulated_mcu(name: str, target: str, tmp_path: Path) -> None:
    tools = {"cortex-m33": ("arm-none-eabi-gcc", "qemu-system-arm"), "rv32imac": ("riscv64-unknown-elf-gcc", "qemu-system-riscv32")}
    if any(shutil.which(t) is None for t in tools[target]):
        pytest.skip(f"{target}: cross compiler or QEMU not installed (make toolchains)")
    path, x = export(name, tmp_path / "net")
    got, _ = _compile_run(path, x, target)
    np.testing.assert_allclose(got, _ort(path, x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", list(NETS))
def test_network_from_torchs_default_exporter(name: str, tmp_path: Path) -> None:
    """torch.onnx.export's default (torch.export-based, onnxscript) exporter writes other graphs: the same."""
    pytest.importorskip("onnxscript")
    torch.manual_seed(20)
    make, shape = NETS[name]
    model = make()
    _randomise_bn(model, 20)
    model.eval()
    x = torch.randn(*shape)
    (tmp_path / "net").mkdir()
    path = tmp_path / "net" / "model.onnx"
    torch.onnx.export(model, (x,), str(path), input_names=["x"], output_names=["y"])
    got, _ = _compile_run(path, x.numpy())
    np.testing.assert_allclose(got, _ort(path, x.numpy()), rtol=1e-4, atol=1e-4)
