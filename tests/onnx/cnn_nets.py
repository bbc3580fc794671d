"""Whole float networks from public architectures, written in plain torch, for the network tests (issue 20).

NETWORKS maps a name to a builder returning (module in eval mode with randomised BatchNorm statistics,
example input as numpy float32). Every builder seeds torch itself, so a name always yields the same weights
and input. Users: tests/onnx/test_cnn_networks.py (float, against onnxruntime), the quantized QDQ network
tests, and benchmarks/networks.py (instructions per inference on the Cortex-M33).

- ds_cnn: DS-CNN keyword spotting (Zhang et al., "Hello Edge", arXiv 1711.07128) over a 49x10 MFCC map.
- autoencoder_1d: a DCASE-style 1-D conv autoencoder with BatchNorm and ConvTranspose.
- mobilenet_v2: MobileNetV2 (Sandler et al., arXiv 1801.04381) at width 0.35 on 3x96x96.
- cct_2: a Compact Convolutional Transformer (Hassani et al., arXiv 2104.05704) on 3x32x32.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

SEED = 20


def ds_cnn(classes: int = 12, width: int = 32, blocks: int = 3) -> nn.Module:
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dec(self.enc(x))


# --- MobileNetV2 -------------------------------------------------------------------------------------------
# Written from the paper (Sandler et al., arXiv 1801.04381, Table 2) following torchvision's
# models/mobilenetv2.py structure, because torchvision is not installable here (its wheel pulls a 5.5 GB
# CUDA torch). Same module tree, so torchvision's state_dict keys load into it.

def _make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """torchvision's rounding: channels to a multiple of 8, never more than 10% below the scaled width."""
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def _conv_bn_relu6(inp: int, oup: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inp, oup, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(oup), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    """1x1 expansion (ReLU6), 3x3 depthwise (ReLU6), linear 1x1 projection; residual add when shapes allow."""

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(_conv_bn_relu6(inp, hidden, kernel=1))
        layers += [_conv_bn_relu6(hidden, hidden, stride=stride, groups=hidden),
                   nn.Conv2d(hidden, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    # t (expansion), c (channels), n (repeats), s (first stride): the paper's Table 2
    SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))

    def __init__(self, num_classes: int = 10, width_mult: float = 0.35, dropout: float = 0.2) -> None:
        super().__init__()
        inp = _make_divisible(32 * width_mult)
        self.last_channel = _make_divisible(1280 * max(1.0, width_mult))
        features: list[nn.Module] = [_conv_bn_relu6(3, inp, stride=2)]
        for t, c, n, s in self.SETTING:
            oup = _make_divisible(c * width_mult)
            for i in range(n):
                features.append(InvertedResidual(inp, oup, s if i == 0 else 1, t))
                inp = oup
        features.append(_conv_bn_relu6(inp, self.last_channel, kernel=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(self.last_channel, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


# --- CCT ---------------------------------------------------------------------------------------------------
# Compact Convolutional Transformer (Hassani et al., arXiv 2104.05704), following the authors' reference code
# (SHI-Labs/Compact-Transformers): convolutional tokenizer, pre-norm encoder layers whose MLP residual adds to
# the normalised stream (norm1), learnable positions, sequence pooling, linear classifier.

class Tokenizer(nn.Module):
    """n_conv_layers x (Conv 3x3 no bias, ReLU, MaxPool 3/2 pad 1), then (B, C, H, W) -> (B, H*W, C)."""

    def __init__(self, in_ch: int, planes: int, dim: int, n_conv_layers: int = 2, kernel: int = 3) -> None:
        super().__init__()
        chans = [in_ch] + [planes] * (n_conv_layers - 1) + [dim]
        self.conv_layers = nn.Sequential(*[nn.Sequential(
            nn.Conv2d(chans[i], chans[i + 1], kernel, stride=max(1, kernel // 2 - 1), padding=max(1, kernel // 2), bias=False),
            nn.ReLU(), nn.MaxPool2d(3, 2, 1)) for i in range(n_conv_layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_layers(x).flatten(2, 3).transpose(-2, -1)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1) * self.scale).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class EncoderLayer(nn.Module):
    def __init__(self, dim: int, heads: int, mlp: int) -> None:
        super().__init__()
        self.pre_norm = nn.LayerNorm(dim)
        self.self_attn = Attention(dim, heads)
        self.norm1 = nn.LayerNorm(dim)
        self.linear1 = nn.Linear(dim, mlp)
        self.linear2 = nn.Linear(mlp, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.self_attn(self.pre_norm(x)))
        return x + self.linear2(F.gelu(self.linear1(x)))


class CCT(nn.Module):
    def __init__(self, img: int = 32, dim: int = 64, planes: int = 32, layers: int = 2, heads: int = 2,
                 mlp_ratio: float = 1.0, num_classes: int = 10) -> None:
        super().__init__()
        self.tokenizer = Tokenizer(3, planes, dim)
        seq = (img // 4) ** 2
        self.positional_emb = nn.Parameter(torch.empty(1, seq, dim).normal_(std=0.2))
        self.blocks = nn.ModuleList([EncoderLayer(dim, heads, int(dim * mlp_ratio)) for _ in range(layers)])
        self.norm = nn.LayerNorm(dim)
        self.attention_pool = nn.Linear(dim, 1)
        self.fc = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.tokenizer(x) + self.positional_emb
        for blk in self.blocks:
            x = blk(x)
        x = self.norm(x)
        # sequence pooling: a softmax over the tokens weights their sum
        w = F.softmax(self.attention_pool(x), dim=1).transpose(-1, -2)
        return self.fc(torch.matmul(w, x).squeeze(-2))


# --- the table ---------------------------------------------------------------------------------------------

def randomise_norms(model: nn.Module, seed: int = SEED) -> None:
    """Trained-looking BatchNorm statistics (a fresh layer's are 0 and 1, which folding would not test), and
    LayerNorm affine parameters away from 1 and 0."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(n, generator=g) * 0.5 + 1)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.2)
        elif isinstance(m, nn.LayerNorm):
            m.weight.data.copy_(torch.randn(m.weight.shape, generator=g) * 0.2 + 1)
            m.bias.data.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)


def _builder(make: Callable[[], nn.Module], shape: tuple[int, ...]) -> Callable[[], tuple[nn.Module, np.ndarray]]:
    def build() -> tuple[nn.Module, np.ndarray]:
        torch.manual_seed(SEED)
        model = make()
        randomise_norms(model, SEED)
        model.eval()
        return model, torch.randn(*shape).numpy()
    return build


NETWORKS: dict[str, Callable[[], tuple[nn.Module, np.ndarray]]] = {
    "ds_cnn": _builder(ds_cnn, (1, 1, 49, 10)),
    "autoencoder_1d": _builder(Autoencoder1d, (1, 4, 64)),
    "mobilenet_v2": _builder(MobileNetV2, (1, 3, 96, 96)),
    "cct_2": _builder(CCT, (1, 3, 32, 32)),
}


def macs(model: nn.Module, x: np.ndarray) -> int:
    """Multiply-accumulates of one inference: Conv, Linear and the attention matmuls (hooks count what ran)."""
    total = 0

    def conv(m: nn.Module, inp: tuple, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(m, nn.ConvTranspose1d):  # every input element meets every kernel tap of its group
            total += inp[0].numel() * (m.out_channels // m.groups) * math.prod(m.kernel_size)
        else:
            total += out.numel() * (m.in_channels // m.groups) * math.prod(m.kernel_size)

    def linear(m: nn.Module, inp: tuple, out: torch.Tensor) -> None:
        nonlocal total
        total += out.numel() * m.in_features

    def attention(m: Attention, inp: tuple, out: torch.Tensor) -> None:
        nonlocal total
        b, n, c = inp[0].shape
        total += 2 * b * n * n * c  # q @ k^T and attn @ v over all heads

    hooks = []
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose1d)):
            hooks.append(m.register_forward_hook(conv))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear))
        elif isinstance(m, Attention):
            hooks.append(m.register_forward_hook(attention))
    with torch.no_grad():
        model(torch.from_numpy(x))
    for h in hooks:
        h.remove()
    return total


def ort_output(path, x: np.ndarray) -> np.ndarray:
    """onnxruntime's output of the model at `path` for input x (the one input "x")."""
    import onnxruntime as rt

    return rt.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def compile_run(path, x: np.ndarray, target: str = "host"):
    """slmc's compiled C for `target` run on input x (driver.run_graph): (its output, the project folder)."""
    from slmc.driver import CompileOptions, compile_model, run_graph

    out = path.parent / f"out_{path.stem}_{target}"
    compile_model(CompileOptions(model=path, out=out, target=target))
    got, _ = run_graph(out, {"x": x})
    return got["output_0"], out
