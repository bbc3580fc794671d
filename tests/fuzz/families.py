"""Fuzz case families: each turns (seed, folder) into one `slmc` command line over files it writes there.

The malformed model files come from the seeded generators beside the loaders' tests (gen_models.py) and
the ONNX graph generator (tests/onnx/onnx_fuzz.py); the CLI families vary every option of `compile` and
`run` over valid and invalid values on a tiny valid model. Every family is deterministic in its seed.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np

from fuzz.harness import Case

TINY = dict(dim=16, hidden_dim=32, n_layers=2, n_heads=2, n_kv_heads=1, vocab_size=300, seq_len=32)


@lru_cache(maxsize=None)
def bases(root: Path) -> dict[str, Path]:
    """A tiny valid llama2.c v0 and v2 checkpoint and a tokenizer.bin that fits them, made once."""
    from slmc.frontend.decoder import DecoderConfig
    from slmc.frontend.llama2c import save_v0, save_v2
    from slmc.frontend.random_model import random_decoder

    root.mkdir(parents=True, exist_ok=True)
    model = random_decoder(DecoderConfig(**TINY), seed=1)
    paths = dict(v0=root / "tiny_v0.bin", v2=root / "tiny_v2.bin", tok=root / "tokenizer.bin")
    save_v0(model, paths["v0"])
    save_v2(model, paths["v2"], group=16)
    paths["tok"].write_bytes(tokenizer_bin(TINY["vocab_size"]))
    return paths


def tokenizer_bin(vocab: int) -> bytes:
    """llama2.c's layout: <unk>, <s>, </s>, the 256 byte pieces, then a few merges."""
    pieces = [b"<unk>", b"\n<s>\n", b"\n</s>\n"] + [f"<0x{b:02X}>".encode() for b in range(256)]
    words = [b" ", b"e", b"t", b"a", b"o", b" t", b"he", b" the", b"in", b"an", b" a"]
    while len(pieces) < vocab:
        pieces.append(words[len(pieces) % len(words)] + str(len(pieces)).encode())
    body = b"".join(struct.pack("<fi", -float(i), len(p)) + p for i, p in enumerate(pieces[:vocab]))
    return struct.pack("<i", max(map(len, pieces))) + body


def _gen():
    from fuzz import gen_models  # the malformed-file generators beside the loaders' tests

    return gen_models


def _compile_ok(out: str) -> Callable[[Path], str | None]:
    def check(workdir: Path) -> str | None:
        d = workdir / out
        rep = d / "manifest.json" if (d / "manifest.json").exists() else d / "report.json"
        if not rep.is_file():
            return "exit 0 without report.json"
        try:
            json.loads(rep.read_text())
        except ValueError:
            return "report.json is not JSON"
        return None
    return check


def _compile_case(family: str, seed: int, workdir: Path, model: Path, *extra: str,
                  expect_ok: bool | None = None) -> Case:
    return Case(family, seed, ("compile", str(model), "-o", "out", *extra), workdir, workdir / "out",
                expect_ok, _compile_ok("out"))


def llama2c(version: str) -> Callable[[int, Path, Path], Case]:
    def make(seed: int, workdir: Path, root: Path) -> Case:
        rng = np.random.default_rng(seed)
        data, valid = _gen().mutate_llama2c(rng, bases(root)[version].read_bytes())
        (workdir / "m.bin").write_bytes(data)
        return _compile_case(f"llama2c_{version}", seed, workdir, workdir / "m.bin",
                             expect_ok=None if valid else False)
    return make


def hf(seed: int, workdir: Path, root: Path) -> Case:
    rng = np.random.default_rng(seed)
    valid = _gen().random_hf_folder(rng, workdir / "hf")
    return _compile_case("hf", seed, workdir, workdir / "hf", expect_ok=None if valid else False)


def safetensors(seed: int, workdir: Path, root: Path) -> Case:
    rng = np.random.default_rng(seed)
    valid = _gen().mutate_safetensors(rng, workdir / "hf")
    return _compile_case("safetensors", seed, workdir, workdir / "hf", expect_ok=None if valid else False)


def tokenizer(seed: int, workdir: Path, root: Path) -> Case:
    rng = np.random.default_rng(seed)
    data, valid = _gen().mutate_tokenizer_bin(rng, bases(root)["tok"].read_bytes())
    (workdir / "tokenizer.bin").write_bytes(data)
    return _compile_case("tokenizer", seed, workdir, bases(root)["v0"], "--tokenizer", "tokenizer.bin",
                         expect_ok=None if valid else False)


@lru_cache(maxsize=None)
def _onnx_fuzz():
    # tests/onnx is not importable as `onnx` (the onnx package owns that name): load the file itself
    import importlib.util

    spec = importlib.util.spec_from_file_location("onnx_fuzz", Path(__file__).parents[1] / "onnx" / "onnx_fuzz.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def sentencepiece(seed: int, workdir: Path, root: Path) -> Case:
    rng = np.random.default_rng(seed)
    data, valid = _gen().mutate_sentencepiece(rng, TINY["vocab_size"])
    (workdir / "tokenizer.model").write_bytes(data)
    return _compile_case("sentencepiece", seed, workdir, bases(root)["v0"], "--tokenizer", "tokenizer.model",
                         expect_ok=None if valid else False)


def onnx_graph(seed: int, workdir: Path, root: Path) -> Case:
    rng = np.random.default_rng(seed)
    data, valid = _onnx_fuzz().random_onnx_case(rng)
    (workdir / "m.onnx").write_bytes(data)
    return _compile_case("onnx", seed, workdir, workdir / "m.onnx", expect_ok=None if valid else False)


# option -> values tried: valid ones, then the kinds of wrong a user or a script produces
_COMPILE_OPTS: dict[str, list[str]] = {
    "-t": ["host", "cortex-m33", "rv32imac", "rp2350-arm", "rp2350-riscv", "siracusa-like", "nope", "", "../host"],
    "-q": ["fp32", "q8", "int8", "q4", "", "FP32"],
    "--seq": ["0", "1", "4", "16", "-1", "99999999999", "x", "nan"],
    "--context": ["1", "8", "32", "33", "0", "-5", "1e3", "4294967297"],
    "--kv-cache": ["fp32", "fp16", "int4", ""],
    "--weights-sram": ["auto", "off", "on"],
    "--chips": ["1", "2", "0", "-1", "1000", "two"],
    "--fan-in": ["2", "3", "1", "0", "-2"],
    "--mem": ["L1=64KiB", "L1=4KiB,L2=1MiB", "L1=0", "L9=1KiB", "L1=-5", "L1=1e99KiB", "garbage", "L1=64KiB,L1=8KiB"],
    "-m": ["decode", "prefill", "train"],
    "--cores": ["1", "2", "8", "0", "-1", "4096"],
    "--engine": ["linear=npu", "linear=cluster", "ffn_bits=4", "linear=gpu", "=", "ffn_bits=99"],
    "--memory-sharing": ["on", "off", "maybe"],
    "--tokenizer": ["tokenizer.bin", "missing.bin", ".", "/dev/null"],
}


def cli_compile(seed: int, workdir: Path, root: Path) -> Case:
    rng = np.random.default_rng(seed)
    b = bases(root)
    (workdir / "tokenizer.bin").write_bytes(b["tok"].read_bytes())
    model = b["v2" if rng.random() < 0.3 else "v0"]
    extra: list[str] = []
    for opt in rng.choice(list(_COMPILE_OPTS), size=int(rng.integers(1, 4)), replace=False):
        vals = _COMPILE_OPTS[str(opt)]
        extra += [str(opt), vals[int(rng.integers(len(vals)))]]
    return _compile_case("cli_compile", seed, workdir, model, *extra)


_RUN_OPTS: dict[str, list[str]] = {
    "--steps": ["1", "8", "32", "1000", "0", "-3", "x"],
    "--temperature": ["0", "0.8", "1.5", "-1", "nan", "inf", "1e309"],
    "--top-p": ["0.9", "1", "0", "5", "nan", "-0.1"],
    "--seed": ["0", "42", "-1", "4294967295", "4294967296", "99999999999999999999"],
    "--prompt-ids": ["1", "1,2,3", "1,,2", "", "-1", "300", "1," * 40, "a,b", "1;2"],
    "--prompt": ["Once upon a time", "", "\u00e9\u00e8 \U0001f600", "x" * 200],
    "--dump-logits": ["logits.f32", "nope/logits.f32", ".", "/proc/version"],
    "--inputs": ["in.npz", "missing.npz"],
    "--on": ["host", "mars"],
}


def cli_run(project: Path) -> Callable[[int, Path, Path], Case]:
    """`slmc run` of one prebuilt project (built once by the caller) with random options."""
    def make(seed: int, workdir: Path, root: Path) -> Case:
        rng = np.random.default_rng(seed)
        extra: list[str] = []
        for opt in rng.choice(list(_RUN_OPTS), size=int(rng.integers(1, 4)), replace=False):
            vals = _RUN_OPTS[str(opt)]
            extra += [str(opt), vals[int(rng.integers(len(vals)))]]
        if rng.random() < 0.5:
            extra.append("--json" if rng.random() < 0.5 else "--ids")
        (workdir / "in.npz").write_bytes(b"PK\x03\x04 not really a zip")
        return Case("cli_run", seed, ("run", str(project), *extra), workdir, None, None,
                    lambda w: None)
    return make


FAMILIES: dict[str, Callable[[int, Path, Path], Case]] = {
    "llama2c_v0": llama2c("v0"), "llama2c_v2": llama2c("v2"), "hf": hf, "safetensors": safetensors,
    "tokenizer": tokenizer, "sentencepiece": sentencepiece, "onnx": onnx_graph, "cli_compile": cli_compile,
}
