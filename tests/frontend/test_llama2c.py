"""llama2.c checkpoints: files written here in the layouts that llama2.c's export.py documents (legacy v0 and
Q8_0 v2), the real stories260K checkpoint, and broken files that must raise SlmcError, not a traceback."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from slmc.errors import SlmcError
from slmc.frontend import llama2c
from slmc.frontend.decoder import DecoderConfig, DecoderModel, LayerWeights, Q8Tensor

MAGIC = 0x616B3432


@dataclass
class Weights:
    """A random llama2.c model in export.py's terms: (dim, hidden, layers, heads, kv heads, vocab, seq)."""

    hdr: tuple[int, int, int, int, int, int, int]
    t: dict[str, np.ndarray]
    shared: bool

    @classmethod
    def random(cls, dim: int = 16, hidden: int = 48, layers: int = 2, heads: int = 4, kv: int = 2, vocab: int = 32,
               seq: int = 8, shared: bool = True, seed: int = 0) -> Weights:
        rng = np.random.default_rng(seed)
        kvd = dim // heads * kv

        def r(*shape: int) -> np.ndarray:
            return rng.standard_normal(shape).astype(np.float32)

        t = dict(tok=r(vocab, dim), att_norm=r(layers, dim), wq=r(layers, dim, dim), wk=r(layers, kvd, dim),
                 wv=r(layers, kvd, dim), wo=r(layers, dim, dim), ffn_norm=r(layers, dim), w1=r(layers, hidden, dim),
                 w2=r(layers, dim, hidden), w3=r(layers, hidden, dim), norm=r(dim), wcls=r(vocab, dim))
        if shared:
            t["wcls"] = t["tok"]
        return cls((dim, hidden, layers, heads, kv, vocab, seq), t, shared)

    def v0(self) -> bytes:
        """export.py legacy_export: negative vocab_size marks an unshared classifier."""
        dim, hidden, layers, heads, kv, vocab, seq = self.hdr
        t = self.t
        out = struct.pack("<7i", dim, hidden, layers, heads, kv, vocab if self.shared else -vocab, seq)
        for k in ("tok", "att_norm", "wq", "wk", "wv", "wo", "ffn_norm", "w1", "w2", "w3", "norm"):
            out += t[k].tobytes()
        out += np.zeros((2, seq, dim // heads // 2), np.float32).tobytes()  # freq_cis_real, freq_cis_imag
        return out + (b"" if self.shared else t["wcls"].tobytes())

    def model(self) -> DecoderModel:
        dim, hidden, layers, heads, kv, vocab, seq = self.hdr
        t = self.t
        cfg = DecoderConfig(dim=dim, hidden_dim=hidden, n_layers=layers, n_heads=heads, n_kv_heads=kv,
                            vocab_size=vocab, seq_len=seq)
        ls = [LayerWeights(attn_norm=t["att_norm"][i], wq=t["wq"][i], wk=t["wk"][i], wv=t["wv"][i], wo=t["wo"][i],
                           ffn_norm=t["ffn_norm"][i], w1=t["w1"][i], w2=t["w2"][i], w3=t["w3"][i])
              for i in range(layers)]
        return DecoderModel(cfg, t["tok"], ls, t["norm"], None if self.shared else t["wcls"])

    def v2(self, group: int) -> bytes:
        """export.py version2_export with quantize_q80 (slmc's writer, llama2c.save_v2)."""
        return llama2c.v2_bytes(self.model(), group)

    def quantized(self) -> list[np.ndarray]:
        """The tensors export.py quantizes, in its order."""
        t = self.t
        ws = [t["tok"]] + [t[k][i] for k in ("wq", "wk", "wv", "wo", "w1", "w2", "w3") for i in range(self.hdr[2])]
        return ws + ([] if self.shared else [t["wcls"]])


q80 = llama2c.quantize_q80


def _dense(w: object) -> np.ndarray:
    return w.dequantize() if isinstance(w, Q8Tensor) else np.asarray(w)


def _loaded_quantized(m: DecoderModel) -> list[np.ndarray]:
    ws = [m.tok_emb]
    for name in ("wq", "wk", "wv", "wo", "w1", "w2", "w3"):
        ws += [getattr(layer, name) for layer in m.layers]
    if m.wcls is not None:
        ws.append(m.wcls)
    return [_dense(w) for w in ws]


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_v0_round_trip(tmp_path: Path) -> None:
    for shared in (True, False):
        w = Weights.random(shared=shared, seed=3)
        m = llama2c.load(_write(tmp_path, f"v0_{shared}.bin", w.v0()))
        assert (m.config.dim, m.config.kv_dim, m.config.vocab_size) == (16, 8, 32)
        np.testing.assert_array_equal(m.layers[1].w2, w.t["w2"][1])
        np.testing.assert_array_equal(m.layers[0].wk, w.t["wk"][0])
        np.testing.assert_array_equal(m.final_norm, w.t["norm"])
        assert (m.wcls is None) == shared
        if not shared:
            np.testing.assert_array_equal(m.wcls, w.t["wcls"])


@pytest.mark.parametrize("shared, group, hidden", [(True, 8, 48), (False, 16, 48), (True, 8, 36)],
                         ids=["shared_g8", "unshared_g16", "group_straddles_w2_rows"])
def test_v2_dequantizes_within_half_a_step(tmp_path: Path, shared: bool, group: int, hidden: int) -> None:
    w = Weights.random(hidden=hidden, shared=shared, seed=1)
    m = llama2c.load(_write(tmp_path, "v2.bin", w.v2(group)))
    assert m.config.hidden_dim == hidden and (m.wcls is None) == shared
    np.testing.assert_array_equal(m.layers[1].attn_norm, w.t["att_norm"][1])
    np.testing.assert_array_equal(m.layers[0].ffn_norm, w.t["ffn_norm"][0])
    np.testing.assert_array_equal(m.final_norm, w.t["norm"])
    originals = w.quantized()
    loaded = _loaded_quantized(m)
    assert len(loaded) == len(originals)
    for orig, got in zip(originals, loaded):
        assert got.shape == orig.shape
        _, scale = q80(orig, group)
        err = np.abs(got - orig).reshape(-1, group)
        assert np.all(err <= scale[:, None] * (0.5 + 1e-5)), "dequantized weight off by more than half a step"
    if hidden % group:
        assert isinstance(m.layers[0].w2, np.ndarray) and m.notes  # kept as float, and the user is told
    else:
        assert isinstance(m.layers[0].w2, Q8Tensor) and m.layers[0].w2.group == group


def test_stories260k_header_and_v2_conversion(tmp_path: Path, shared: Callable[[str], Path]) -> None:
    path = shared("models/stories260K/stories260K.bin")
    m = llama2c.load(path)
    c = m.config
    # the values the checkpoint's README states
    assert (c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len) == \
        (64, 172, 5, 8, 4, 512, 512)
    assert m.wcls is None
    t = dict(tok=m.tok_emb, norm=m.final_norm, wcls=m.tok_emb)
    for k, attr in (("att_norm", "attn_norm"), ("ffn_norm", "ffn_norm"), ("wq", "wq"), ("wk", "wk"), ("wv", "wv"),
                    ("wo", "wo"), ("w1", "w1"), ("w2", "w2"), ("w3", "w3")):
        t[k] = np.stack([getattr(layer, attr) for layer in m.layers])
    w = Weights((64, 172, 5, 8, 4, 512, 512), t, shared=True)
    # export.py halves the group until it divides dim (64); w2's rows of 172 then straddle groups
    q = llama2c.load(_write(tmp_path, "stories_q8.bin", w.v2(64)))
    for orig, got in zip(w.quantized(), _loaded_quantized(q)):
        _, scale = q80(orig, 64)
        assert np.all(np.abs(got - orig).reshape(-1, 64) <= scale[:, None] * (0.5 + 1e-5))


def _v0_cases(raw: bytes) -> dict[str, bytes]:
    return {
        "empty": b"",
        "short_header": raw[:20],
        "header_only": raw[:28],
        "cut_in_embedding": raw[:28 + 100],
        "cut_in_middle": raw[: len(raw) // 2],
        "cut_in_rope_tables": raw[: len(raw) - 4],
        "zero_header": b"\0" * 4096,
        "odd_heads": struct.pack("<7i", 16, 48, 2, 3, 1, 32, 8) + raw[28:],
        "heads_not_multiple_of_kv": struct.pack("<7i", 16, 48, 2, 4, 3, 32, 8) + raw[28:],
        "huge_dims": struct.pack("<7i", 1 << 19, 1 << 19, 100, 8, 8, 1 << 19, 512) + raw[28:],
        "garbage": np.random.default_rng(7).bytes(len(raw)),
        "nan_weights": raw[:28] + np.full((len(raw) - 28) // 4, np.nan, np.float32).tobytes(),
    }


def test_v0_truncated_and_garbage(tmp_path: Path) -> None:
    raw = Weights.random().v0()
    for name, data in _v0_cases(raw).items():
        with pytest.raises(SlmcError):
            llama2c.load(_write(tmp_path, name, data))
    with pytest.raises(SlmcError, match="cannot read"):
        llama2c.load(tmp_path / "missing.bin")


def test_stories260k_truncated(tmp_path: Path, shared: Callable[[str], Path]) -> None:
    raw = shared("models/stories260K/stories260K.bin").read_bytes()
    for cut in (1000, len(raw) // 3, len(raw) - 64 * 4 - 1, len(raw) - 1):
        with pytest.raises(SlmcError, match="truncated"):
            llama2c.load(_write(tmp_path, f"cut{cut}.bin", raw[:cut]))


def test_v2_truncated_and_bad_header(tmp_path: Path) -> None:
    raw = Weights.random().v2(8)
    cases = {
        "cut_in_header": raw[:100],
        "cut_in_norms": raw[:300],
        "cut_in_weights": raw[: len(raw) - 1],
        "version_1": raw[:4] + struct.pack("<i", 1) + raw[8:],
        "group_zero": raw[:37] + struct.pack("<i", 0) + raw[41:],
        "group_negative": raw[:37] + struct.pack("<i", -8) + raw[41:],
        "bad_dims": raw[:8] + struct.pack("<7i", 0, 48, 2, 4, 2, 32, 8) + raw[36:],
    }
    for name, data in cases.items():
        with pytest.raises(SlmcError):
            llama2c.load(_write(tmp_path, name, data))


def test_v2_group_not_dividing_a_tensor(tmp_path: Path) -> None:
    raw = Weights.random().v2(8)
    data = raw[:37] + struct.pack("<i", 7) + raw[41:]  # 7 divides none of the 16-wide rows
    with pytest.raises(SlmcError):
        llama2c.load(_write(tmp_path, "group7.bin", data))


def test_save_v2_header_and_group_backoff(tmp_path: Path) -> None:
    """export.py's layout: magic, version, 7 ints, shared flag byte, group int, zero padding to 256 bytes;
    the group halves until it divides dim (64 -> 8 for dim 24)."""
    w = Weights.random(dim=24, hidden=40, heads=4, kv=2, shared=False, seed=5)
    path = tmp_path / "q.bin"
    llama2c.save_v2(w.model(), path, 64)
    raw = path.read_bytes()
    assert struct.unpack_from("<Ii7iBi", raw, 0) == (MAGIC, 2, *w.hdr, 0, 8)
    assert raw[41:256] == b"\0" * 215
    q, s = q80(w.t["tok"], 8)
    assert raw[256 + 4 * (2 * 2 * 24 + 24):][: q.size] == q.tobytes()
    m = llama2c.load(path)
    assert m.wcls is not None and isinstance(m.layers[0].wq, Q8Tensor) and m.layers[0].wq.group == 8
    np.testing.assert_array_equal(m.tok_emb.s.ravel(), s)


def test_quantize_q80_matches_torch_round_half_even() -> None:
    w = np.array([[127.0, 0.5, 1.5, -2.5, -127.0, 63.5, 0.0, 2.0]], np.float32)
    q, s = q80(w, 8)
    assert s[0] == np.float32(1.0)
    assert q.ravel().tolist() == [127, 0, 2, -2, -127, 64, 0, 2]
    q0, s0 = q80(np.zeros((1, 4), np.float32), 4)
    assert s0[0] == 0 and not q0.any()
