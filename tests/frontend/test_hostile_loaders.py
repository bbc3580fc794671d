"""Hostile and broken inputs to the llama2.c, HuggingFace and tokenizer loaders (issue 15, points 4 and 5).

Every broken file must end in one SlmcError that names the file and the problem: no traceback, no
blocking on a pipe, no reading a whole huge file before its header is checked, no NaN weights accepted.
The seeded generators of tests/fuzz/gen_models.py drive the property tests here and the CLI fuzz suite.
"""

from __future__ import annotations

import json
import math
import os
import signal
import struct
import subprocess
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_path
from fuzz import gen_models as G
from fuzz.gen_hf import HF_CONFIG, hf_tensors, safetensors_file, safetensors_parts, write_hf_folder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slmc.errors import SlmcError
from slmc.frontend import hf, llama2c
from slmc.frontend.decoder import DecoderConfig
from slmc.frontend.random_model import random_decoder
from slmc.frontend.tokenizer import check_vocab, load_tokenizer

STORIES = "models/stories260K/stories260K.bin"
STORIES_BYTES = 1056540
TINY = DecoderConfig(dim=16, hidden_dim=32, n_layers=2, n_heads=2, n_kv_heads=1, vocab_size=300, seq_len=32)


@pytest.fixture(autouse=True)
def no_hang() -> Iterator[None]:
    """A loader that blocks (on a FIFO, say) fails the test instead of hanging the suite."""
    old = signal.signal(signal.SIGALRM, lambda *_: pytest.fail("the loader blocked"))
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    d = tmp_path_factory.mktemp("bases")
    m = random_decoder(TINY, seed=1, tied=False)
    llama2c.save_v0(m, d / "v0.bin")
    llama2c.save_v2(m, d / "v2.bin", group=16)
    pieces = [b"<unk>", b"\n<s>\n", b"\n</s>\n"] + [f"<0x{b:02X}>".encode() for b in range(256)]
    pieces += [b" w%d" % i for i in range(300 - len(pieces))]
    tok = G.tokenizer_bin_bytes(max(map(len, pieces)), [(-float(i), p) for i, p in enumerate(pieces)])
    return dict(v0=(d / "v0.bin").read_bytes(), v2=(d / "v2.bin").read_bytes(), tok=tok)


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    (tmp_path / name).write_bytes(data)
    return tmp_path / name


# not regular files, and files too big to read --------------------------------------------------------------

@pytest.mark.parametrize("load", [llama2c.load, load_tokenizer, lambda p: hf.load(p.parent)],
                         ids=["llama2c", "tokenizer", "hf_config"])
def test_fifo_and_devices_are_refused_without_blocking(tmp_path: Path, load: Callable[[Path], object]) -> None:
    fifo = tmp_path / "config.json"
    os.mkfifo(fifo)
    with pytest.raises(SlmcError, match="not a regular file"):
        load(fifo)
    if load is not llama2c.load:
        return
    for dev in ("/dev/zero", "/dev/null"):
        with pytest.raises(SlmcError, match="not a regular file"):
            load(Path(dev))
    with pytest.raises(SlmcError, match="is a folder"):
        load(tmp_path)


def test_huge_file_is_refused_from_its_header(tmp_path: Path) -> None:
    """A 6 GiB (sparse) file behind a valid header: refused from the header and the file size alone."""
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.write(shared_path(STORIES).read_bytes()[:28])
        f.truncate(6 << 30)
    tracemalloc.start()
    try:
        with pytest.raises(SlmcError, match=rf"implies {STORIES_BYTES} bytes, the file has {6 << 30}"):
            llama2c.load(big)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
    # a header within every per-field cap whose whole is still far too big: refused before any size maths
    hdr = struct.pack("<7i", 1 << 16, 1 << 18, 1 << 10, 64, 64, 1 << 20, 1 << 10)
    with pytest.raises(SlmcError, match="parameters"):
        llama2c.load(_write(tmp_path, "claims.bin", hdr + b"\0" * 100))


def test_size_must_equal_the_headers(tmp_path: Path) -> None:
    raw = shared_path(STORIES).read_bytes()
    with pytest.raises(SlmcError, match=rf"3 bytes past its last tensor.*implies {STORIES_BYTES} bytes, "
                                        rf"the file has {STORIES_BYTES + 3}"):
        llama2c.load(_write(tmp_path, "trailing.bin", raw + b"abc"))
    with pytest.raises(SlmcError, match=rf"truncated: its header implies {STORIES_BYTES} bytes, the file has "
                                        rf"{STORIES_BYTES - 5}"):
        llama2c.load(_write(tmp_path, "short.bin", raw[:-5]))


def test_stories260k_still_loads_identically(tmp_path: Path) -> None:
    """Written back, every tensor is byte for byte the file's (only the skipped RoPE tables differ)."""
    path = shared_path(STORIES)
    m = llama2c.load(path)
    llama2c.save_v0(m, tmp_path / "again.bin")
    c = m.config
    rope_at = 28 + 4 * (m.n_params())  # the tables follow the last tensor (tied: no wcls after them)
    assert (tmp_path / "again.bin").read_bytes()[:rope_at] == path.read_bytes()[:rope_at]
    assert rope_at + 4 * c.seq_len * c.head_dim == STORIES_BYTES


# headers -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("hdr, problem", [
    ((64, 172, 5, 128, 4, 512, 512), "dim 64 is not a multiple of n_heads 128"),   # n_heads > dim
    ((64, 172, 5, 6, 3, 512, 512), "dim 64 is not a multiple of n_heads 6"),
    ((64, 172, 5, 8, 3, 512, 512), "n_heads 8 is not a multiple of n_kv_heads 3"),
    ((64, 172, 5, 0, 4, 512, 512), "implausible n_heads 0"),
    ((2**31 - 1, 172, 5, 8, 4, 512, 512), "implausible dim 2147483647"),
    ((64, 172, 5, 8, 4, -(2**31), 512), "implausible vocab_size 2147483648"),
    ((64, 172, -1, 8, 4, 512, 512), "implausible n_layers -1"),
    ((48, 172, 5, 16, 4, 512, 512), "head size 3 is odd"),
])
def test_v0_header_rules(tmp_path: Path, hdr: tuple[int, ...], problem: str) -> None:
    raw = shared_path(STORIES).read_bytes()
    with pytest.raises(SlmcError, match=problem) as e:
        llama2c.load(_write(tmp_path, "h.bin", struct.pack("<7i", *hdr) + raw[28:]))
    assert "h.bin" in str(e.value)


def test_config_field_types() -> None:
    good = dict(dim=8, hidden_dim=16, n_layers=1, n_heads=2, n_kv_heads=1, vocab_size=10, seq_len=16)
    DecoderConfig(**good).validate()
    for key, bad in (("dim", 8.0), ("dim", True), ("dim", "8"), ("seq_len", None)):
        with pytest.raises(SlmcError, match=f"{key} is .*not an integer"):
            DecoderConfig(**(good | {key: bad})).validate()
    for key, bad in (("norm_eps", math.nan), ("rope_theta", -1.0), ("norm", "batch"), ("rope_interleaved", "no")):
        with pytest.raises(SlmcError, match=key):
            DecoderConfig(**good, **{key: bad}).validate()


# non-finite weights ------------------------------------------------------------------------------------------

V0_TENSORS = ["token_embedding", "rms_att", "wq", "wk", "wv", "wo", "rms_ffn", "w1", "w2", "w3", "rms_final", "wcls"]


@pytest.mark.parametrize("name", V0_TENSORS)
def test_v0_nonfinite_weight_named(tmp_path: Path, bases: dict[str, bytes], name: str) -> None:
    cfg, L = TINY, TINY.n_layers
    sizes = dict(token_embedding=300 * 16, rms_att=L * 16, wq=L * 256, wk=L * 128, wv=L * 128, wo=L * 256,
                 rms_ffn=L * 16, w1=L * 512, w2=L * 512, w3=L * 512, rms_final=16)
    at = 28 + 4 * sum(sizes[n] for n in V0_TENSORS[: V0_TENSORS.index(name)])
    if name == "wcls":
        at = 28 + 4 * (sum(sizes.values()) + cfg.seq_len * cfg.head_dim)
    elif name not in ("token_embedding", "rms_final"):
        at += 4 * (sizes[name] // L)  # the second layer's
    data = bytearray(bases["v0"])
    struct.pack_into("<f", data, at, math.inf)
    where = " of layer 1" if name not in ("token_embedding", "rms_final", "wcls") else ""
    with pytest.raises(SlmcError, match=rf"tensor {name}{where} holds a non-finite value \(inf\)"):
        llama2c.load(_write(tmp_path, "nan.bin", bytes(data)))


def test_v2_nonfinite_norms_and_scales_named(tmp_path: Path, bases: dict[str, bytes]) -> None:
    raw = bases["v2"]
    D, L = TINY.dim, TINY.n_layers
    for at, name in ((256 + 4 * (L * D + 3), "rms_ffn"), (256 + 4 * (2 * L * D + 1), "rms_final"),
                     (256 + 4 * (2 * L * D + D) + 300 * 16, "token_embedding \\(its scales\\)")):
        data = bytearray(raw)
        struct.pack_into("<f", data, at, math.nan)
        with pytest.raises(SlmcError, match=f"tensor {name}"):
            llama2c.load(_write(tmp_path, "nan.bin", bytes(data)))
    data = bytearray(raw)
    struct.pack_into("<f", data, 256 + 4 * (2 * L * D + D) + 300 * 16, 3e38)  # q * s would overflow
    with pytest.raises(SlmcError, match="would overflow float32"):
        llama2c.load(_write(tmp_path, "big_scale.bin", bytes(data)))
    data = bytearray(raw)
    data[36] = 7
    with pytest.raises(SlmcError, match="shared-classifier flag 7"):
        llama2c.load(_write(tmp_path, "flag.bin", bytes(data)))


# HuggingFace config.json --------------------------------------------------------------------------------------

def _folder(tmp_path: Path, **cfg: object) -> Path:
    d = tmp_path / "hf"
    c = {k: v for k, v in (HF_CONFIG | cfg).items() if v is not None}
    write_hf_folder(d, c, hf_tensors(np.random.default_rng(0), HF_CONFIG))
    return d


@pytest.mark.parametrize("cfg, problem", [
    ({"tie_word_embeddings": "false"}, "'tie_word_embeddings' is 'false', expected true or false"),
    ({"tie_word_embeddings": 1}, "'tie_word_embeddings' is 1"),
    ({"architectures": "LlamaForCausalLM"}, "'architectures' is 'LlamaForCausalLM', expected a list"),
    ({"architectures": 5}, "'architectures' is 5"),
    ({"hidden_size": 8.0}, "'hidden_size' is 8.0, expected an integer"),
    ({"hidden_size": 10**30}, "implausible dim"),
    ({"num_attention_heads": 16}, "dim 8 is not a multiple of n_heads 16"),
    ({"num_key_value_heads": 0}, "implausible n_kv_heads 0"),
    ({"rms_norm_eps": float("nan")}, "'rms_norm_eps' is nan"),
    ({"rope_theta": "1e4"}, "'rope_theta' is '1e4', expected a positive number"),
    ({"attention_bias": "false"}, "'attention_bias' is 'false'"),
    ({"rope_scaling": "yes"}, "'rope_scaling' is 'yes', expected an object"),
    ({"head_dim": 0}, "'head_dim' is 0"),
    ({"max_position_embeddings": None}, "'max_position_embeddings' is missing"),
])
def test_config_fields_are_type_checked(tmp_path: Path, cfg: dict[str, object], problem: str) -> None:
    with pytest.raises(SlmcError, match=problem) as e:
        hf.load(_folder(tmp_path, **cfg))
    assert "config.json" in str(e.value)


@pytest.mark.parametrize("text, problem", [
    (b'\xff\xfe{"hidden_size": 8}', "not UTF-8"),
    (b"[" * 100000 + b"]" * 100000, "nests JSON too deeply"),
    (b"[1, 2]", "holds a JSON list, not an object"),
    (b'{"hidden_size": ' + b"9" * 5000 + b"}", "not valid JSON"),
    (b"", "not valid JSON"),
])
def test_config_json_itself(tmp_path: Path, text: bytes, problem: str) -> None:
    d = _folder(tmp_path)
    (d / "config.json").write_bytes(text)
    with pytest.raises(SlmcError, match=problem):
        hf.load(d)


def test_tied_string_false_no_longer_ties(tmp_path: Path) -> None:
    assert hf.load(_folder(tmp_path, tie_word_embeddings=True)).wcls is None
    with pytest.raises(SlmcError, match="tie_word_embeddings"):
        hf.load(_folder(tmp_path, tie_word_embeddings="false"))


# safetensors ----------------------------------------------------------------------------------------------

def _st(tmp_path: Path, edit: Callable[[dict], None] = lambda h: None, data_edit: Callable[[bytes], bytes] = bytes,
        raw: bytes | None = None) -> Path:
    d = _folder(tmp_path)
    header, data = safetensors_parts(hf_tensors(np.random.default_rng(0), HF_CONFIG))
    edit(header)
    (d / "model.safetensors").write_bytes(raw if raw is not None else
                                          safetensors_file(json.dumps(header).encode(), data_edit(data)))
    return d


def _entry(h: dict, name: str = "model.norm.weight") -> dict:
    return h[name]


@pytest.mark.parametrize("edit, data_edit, problem", [
    (lambda h: _entry(h).update(data_offsets=[o - 4 for o in _entry(h)["data_offsets"]]), bytes, "overlap"),
    (lambda h: _entry(h).update(data_offsets=[0, 10**12]), bytes, r"lies at bytes 0\.\.1000000000000 of a"),
    (lambda h: _entry(h).update(shape=[9]), bytes, r"takes 32 bytes, but shape \[9\] of F32 needs 36"),
    (lambda h: _entry(h).update(shape=[True] * 8), bytes, "not a list of at most 8 sizes"),
    (lambda h: _entry(h).update(dtype="F33"), bytes, "dtype 'F33', not a safetensors dtype"),
    (lambda h: _entry(h).update(dtype="I32"), bytes, "dtype I32; float32/float16/bfloat16 are read"),
    (lambda h: h.update({"__metadata__": 5}), bytes, "__metadata__ is not an object"),
    (lambda h: h.update({"model.norm.weight": [1]}), bytes, "described by \\[1\\], not an object"),
    (lambda h: None, lambda d: d + b"xyz", r"tensors end at data byte \d+, the data section holds \d+ bytes"),
    (lambda h: None, lambda d: d[:-3], "truncated or corrupt"),
    (lambda h: None, lambda d: d[:4] + struct.pack("<f", math.nan) + d[8:], "non-finite"),
])
def test_safetensors_layout(tmp_path: Path, edit: Callable, data_edit: Callable, problem: str) -> None:
    with pytest.raises(SlmcError, match=problem):
        hf.load(_st(tmp_path, edit, data_edit))


def test_safetensors_header_length_and_gaps(tmp_path: Path) -> None:
    header, data = safetensors_parts(hf_tensors(np.random.default_rng(0), HF_CONFIG))
    good = safetensors_file(json.dumps(header).encode(), data)
    for n in (0, 2**64 - 1, len(good)):
        with pytest.raises(SlmcError, match=f"header length {n}, file size {len(good)}"):
            hf.load(_st(tmp_path, raw=struct.pack("<Q", n) + good[8:]))
    first = min((e for k, e in header.items() if k != "__metadata__"), key=lambda e: e["data_offsets"][0])
    first["data_offsets"] = [o + 4 for o in first["data_offsets"]]  # bytes 0..4 belong to nobody
    with pytest.raises(SlmcError, match=r"data bytes 0\.\.4 belong to no tensor"):
        hf.load(_st(tmp_path, raw=safetensors_file(json.dumps(header).encode(), b"\0" * 4 + data)))


def test_shards_must_agree_with_the_index(tmp_path: Path) -> None:
    d = tmp_path / "sharded"
    write_hf_folder(d, HF_CONFIG, hf_tensors(np.random.default_rng(0), HF_CONFIG), shards=2)
    assert hf.load(d).config.dim == 8
    idx = json.loads((d / "model.safetensors.index.json").read_text())
    name, shard = next(iter(idx["weight_map"].items()))
    other = next(s for s in idx["weight_map"].values() if s != shard)
    (d / "model.safetensors.index.json").write_text(json.dumps({"weight_map": idx["weight_map"] | {name: other}}))
    with pytest.raises(SlmcError, match=f"listed in {other} but stored in {shard}"):
        hf.load(d)
    for bad in ("..", "", "a/../b"):
        (d / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {name: bad}}))
        with pytest.raises(SlmcError, match="points outside the folder"):
            hf.load(d)
    (d / "model-00002-of-00002.safetensors").write_bytes((d / "model-00001-of-00002.safetensors").read_bytes())
    (d / "model.safetensors.index.json").write_text(json.dumps(idx))
    with pytest.raises(SlmcError, match="is in both"):
        hf.load(d)


# tokenizers --------------------------------------------------------------------------------------------------

def test_tokenizer_bin_corruptions(tmp_path: Path, bases: dict[str, bytes]) -> None:
    tok = bases["tok"]
    max_len, recs = G._parse_tokenizer_bin(tok)
    cases = {
        "negative": (tok[:4] + struct.pack("<fi", 0.0, -5) + tok[12:], "length -5"),
        "past_end": (tok + struct.pack("<fi", 0.0, max_len), rf"its {max_len} bytes run past the end"),
        "huge_max": (struct.pack("<i", 2**31 - 1) + tok[4:], "implausible max_token_length 2147483647"),
        "max_too_small": (G.tokenizer_bin_bytes(2, recs), r"length \d+ \(max_token_length 2\)"),
    }
    for name, (data, problem) in cases.items():
        with pytest.raises(SlmcError, match=problem):
            load_tokenizer(_write(tmp_path, f"{name}.bin", data))
    t = load_tokenizer(_write(tmp_path, "more.bin", tok + struct.pack("<fi", 0.0, 1) + b"x"))
    with pytest.raises(SlmcError, match="301 tokens but the model has 300"):
        check_vocab(t, 300)


def test_tokenizer_pieces_are_bytes(tmp_path: Path, bases: dict[str, bytes]) -> None:
    max_len, recs = G._parse_tokenizer_bin(bases["tok"])
    recs[300 - 1] = (-1.0, b"\xff\xfe*/\n\0")
    t = load_tokenizer(_write(tmp_path, "bytes.bin", G.tokenizer_bin_bytes(max_len, recs)))
    assert t.pieces[299] == b"\xff\xfe*/\n\0"
    assert t.decode([299]) == "\ufffd\ufffd*/\n\0"


@pytest.mark.parametrize("vary, problem", [
    (lambda ps: ps.__setitem__(300 - 1, (b"\xff\xfe", -1.0, 1)), "piece 299 is not UTF-8"),
    (lambda ps: ps.__setitem__(300 - 1, ps[300 - 2]), "is not a sentencepiece model .*already defined"),
])
def test_sentencepiece_corruptions(tmp_path: Path, vary: Callable, problem: str) -> None:
    ps = G.sentencepiece_pieces(300)
    assert load_tokenizer(_write(tmp_path, "ok.model", G.sentencepiece_bytes(ps))).vocab_size == 300
    vary(ps)
    with pytest.raises(SlmcError, match=problem):
        load_tokenizer(_write(tmp_path, "bad.model", G.sentencepiece_bytes(ps)))
    for data in (b"", b"\x0a\x02\x0a\x05", np.random.default_rng(0).bytes(3000)):
        with pytest.raises(SlmcError, match="not a sentencepiece model"):
            load_tokenizer(_write(tmp_path, "junk.model", data))


# seeded generators: every case the fuzz suite runs, without the CLI ------------------------------------------

def _outcome(load: Callable[[], object], maybe_valid: bool) -> None:
    try:
        load()
    except SlmcError as e:
        assert "\n" not in str(e), "an error message must be one line"
        return
    assert maybe_valid, "a broken input was accepted"


_FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@_FAST
@given(seed=st.integers(0, 2**32 - 1), version=st.sampled_from(["v0", "v2"]))
def test_mutated_llama2c(tmp_path: Path, bases: dict[str, bytes], seed: int, version: str) -> None:
    data, ok = G.mutate_llama2c(np.random.default_rng(seed), bases[version])
    p = _write(tmp_path, "m.bin", data)
    _outcome(lambda: llama2c.load(p), ok)


@_FAST
@given(seed=st.integers(0, 2**32 - 1))
def test_mutated_tokenizers(tmp_path: Path, bases: dict[str, bytes], seed: int) -> None:
    data, ok = G.mutate_tokenizer_bin(np.random.default_rng(seed), bases["tok"])
    p = _write(tmp_path, "tokenizer.bin", data)
    _outcome(lambda: check_vocab(load_tokenizer(p), 300), ok)
    data, ok = G.mutate_sentencepiece(np.random.default_rng(seed), 300)
    p = _write(tmp_path, "tokenizer.model", data)
    _outcome(lambda: check_vocab(load_tokenizer(p), 300), ok)


@_FAST
@given(seed=st.integers(0, 2**32 - 1))
def test_mutated_hf_folders_and_safetensors(tmp_path: Path, seed: int) -> None:
    ok = G.random_hf_folder(np.random.default_rng(seed), tmp_path / "hf")
    _outcome(lambda: hf.load(tmp_path / "hf"), ok)
    ok = G.mutate_safetensors(np.random.default_rng(seed), tmp_path / "st")
    _outcome(lambda: hf.load(tmp_path / "st"), ok)


def test_generators_are_deterministic(tmp_path: Path, bases: dict[str, bytes]) -> None:
    for seed in range(20):
        assert G.mutate_llama2c(np.random.default_rng(seed), bases["v2"]) == \
            G.mutate_llama2c(np.random.default_rng(seed), bases["v2"])
        G.random_hf_folder(np.random.default_rng(seed), tmp_path / "a")
        G.random_hf_folder(np.random.default_rng(seed), tmp_path / "b")
        for f in (tmp_path / "a").rglob("*"):
            g = tmp_path / "b" / f.relative_to(tmp_path / "a")
            assert f.is_dir() == g.is_dir() and (f.is_dir() or f.read_bytes() == g.read_bytes())


# through the CLI: one line on stderr, exit 2, nothing written --------------------------------------------------

def _cli_fails_cleanly(tmp_path: Path, *args: str) -> str:
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "slmc.cli", "compile", *args, "-o", str(out)], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120, env=os.environ | {"COLUMNS": "400"})
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2, r.stderr
    assert len(lines) == 1 and "Traceback" not in r.stderr + r.stdout, r.stderr
    assert not out.exists()
    return lines[0]


def test_cli_one_line_per_family(tmp_path: Path, bases: dict[str, bytes]) -> None:
    v0 = bytearray(bases["v0"])
    struct.pack_into("<f", v0, 28 + 4 * 300 * 16 + 4, math.nan)
    assert "rms_att" in _cli_fails_cleanly(tmp_path, str(_write(tmp_path, "nan_v0.bin", bytes(v0))))
    assert "past its last tensor" in _cli_fails_cleanly(tmp_path, str(_write(tmp_path, "v2.bin", bases["v2"] + b"!")))
    d = _folder(tmp_path, tie_word_embeddings="false")
    assert "tie_word_embeddings" in _cli_fails_cleanly(tmp_path, str(d))
    d = _st(tmp_path, lambda h: _entry(h).update(data_offsets=[o - 4 for o in _entry(h)["data_offsets"]]))
    assert "overlap" in _cli_fails_cleanly(tmp_path, str(d))
    good = _write(tmp_path, "good.bin", bases["v0"])
    bad_tok = _write(tmp_path, "tok.bin", struct.pack("<i", 2**31 - 1) + bases["tok"][4:])
    assert "max_token_length" in _cli_fails_cleanly(tmp_path, str(good), "--tokenizer", str(bad_tok))
    ps = G.sentencepiece_pieces(300)
    ps[299] = (b"\xff", -1.0, 1)
    bad_sp = _write(tmp_path, "tok.model", G.sentencepiece_bytes(ps))
    assert "not UTF-8" in _cli_fails_cleanly(tmp_path, str(good), "--tokenizer", str(bad_sp))
