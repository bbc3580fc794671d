"""Hostile names in model files (issue 15, point 2): an ONNX graph, a HuggingFace folder and a llama2.c
checkpoint whose names, strings and file name hold C. Checked without trusting slmc/cquote.py: the
projects build with warnings as errors and run, their outputs match onnxruntime / the numpy reference,
the constructor the payload defines never runs, and no payload survives in the C once comments are gone."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import shared_path
from slmc.codegen.emit_c import BANNER_CHARS

pytestmark = pytest.mark.slow
SLMC = [sys.executable, "-m", "slmc.cli"]


def _payloads(marker: Path) -> list[str]:
    """C that, pasted into model.c outside a comment or string, would run or break the build."""
    ctor = (f'void *fopen(const char *, const char *); '
            f'__attribute__((constructor)) static void pwn(void) {{ fopen("{marker}", "w"); }}')
    return [
        f"*/ {ctor} /*",
        f'\n#include "/etc/passwd"\n{ctor}\n',
        f"??/\n{ctor}",                     # a trigraph backslash and a newline: a line splice in C99
        f"\\\n{ctor}",                      # a backslash-newline
        f'"; {ctor} char *pwned = "',
        f"*/ int pwned; /* ??= ??' \u202e é 名前",
    ]


def _need(*tools: str) -> None:
    for t in tools:
        if shutil.which(t) is None:
            pytest.skip(f"{t} is not installed")


def _check_c(project: Path, marker: Path) -> None:
    """The generated text: ASCII, no trigraph, and with comments stripped by the preprocessor itself,
    nothing of any payload; model.c compiles with -Wall -Wextra -Werror (-Wcomment: no /* in a comment)."""
    for f in [project / "model.c", project / "model.h", project / "Makefile"]:
        raw = f.read_bytes()
        assert raw.isascii(), f
        assert b"??" not in raw, f
    code = subprocess.run(["gcc", "-std=c99", "-fpreprocessed", "-dD", "-E", "-P", "model.c"], cwd=project,
                          check=True, capture_output=True, text=True).stdout
    tokens = set(re.findall(r"[A-Za-z_]\w*", code))
    assert not tokens & {"pwn", "pwned", "fopen", "constructor"}   # (v_..._pwned_... identifiers are fine)
    assert re.findall(r'"[^"\n]*"', code) == ['"model.h"', '"slmc_kernels.h"']  # no string but our includes
    # no directive but our includes and the layer table's address macros (codegen/layers.py), all slmc's own text
    table = re.compile(r"#define SLMC_(WEIGHT|WEIGHT_RAM|ARENA)\(type,offset\) \(\((const )?type \*\)\(slmc_(weights|weights_ram|arena) \+ \(offset\)\)\)$")
    assert [ln for ln in code.splitlines() if ln.startswith("#") and not table.match(ln)] == ['#include "model.h"', '#include "slmc_kernels.h"']
    assert all(len(w) <= 63 for w in re.findall(r"[A-Za-z_]\w*", code))
    subprocess.run(["gcc", "-std=c99", "-O0", "-Wall", "-Wextra", "-Werror", "-Wno-unused-variable", "-Wno-unused-parameter",
                    "-Wno-sign-compare", "-Wno-unused-but-set-variable", "-Ikernels", "-I.", "-c", "model.c", "-o", "/dev/null"],
                   cwd=project, check=True)


# ---- ONNX --------------------------------------------------------------------------------------------------

def _hostile_onnx(marker: Path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    p = _payloads(marker)
    long_a, long_b = "w" * 4000 + "a", "w" * 4000 + "b"       # one identifier after cutting, but for the hash
    rng = np.random.default_rng(7)
    f32 = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    inits = [numpy_helper.from_array(f32(6, 5), n) for n in ("memcpy", "exp", long_a)] + \
            [numpy_helper.from_array(f32(5), n) for n in ("slmc_arena", "main", long_b, "a.b", "a_b", "NULL", p[3])]
    x = p[1]                                                  # the graph input
    nodes = [
        helper.make_node("MatMul", [x, "memcpy"], ["int"], name=p[0], doc_string=p[0]),
        helper.make_node("MatMul", [x, "exp"], ["t_o"], name=p[2]),
        helper.make_node("MatMul", [x, long_a], ["pos"], name=p[4]),
        helper.make_node("Add", ["int", "slmc_arena"], ["a-b"], name="int"),
        helper.make_node("Add", ["t_o", "main"], ["a b"], name="main"),
        helper.make_node("Add", ["pos", long_b], ["n"], name="a.b"),
        helper.make_node("Mul", ["a-b", "a.b"], ["rows"], name="a_b"),
        helper.make_node("Mul", ["a b", "a_b"], [p[5]], name=p[5]),
        helper.make_node("Sub", ["n", "NULL"], ["SlmcConfig"], name=long_a),
        helper.make_node("Add", ["rows", p[3]], ["__x"], name=long_b),
        helper.make_node("Relu", [p[5]], [p[0]], name="é"),
        helper.make_node("Softmax", ["SlmcConfig"], ["名前"], axis=-1, name="\u202e"),
        helper.make_node("Identity", ["__x"], [p[4]], name=p[1]),
    ]
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [3, 5]) for n in (p[0], "名前", p[4], "rows")]
    g = helper.make_graph(nodes, p[0], [helper.make_tensor_value_info(x, TensorProto.FLOAT, [3, 6])], outs,
                          initializer=inits, doc_string=p[2])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=8, doc_string=p[1],
                          producer_name=p[0])
    onnx.checker.check_model(m)
    return m, x


def test_onnx_names_cannot_inject_c(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    _need("gcc", "make")
    import onnx

    from slmc.driver import run_graph

    marker = tmp_path / "PWNED"
    model, x = _hostile_onnx(marker)
    path = tmp_path / "hostile.onnx"
    onnx.save(model, path)
    out = tmp_path / "out"
    r = subprocess.run([*SLMC, "compile", str(path), "-o", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    _check_c(out, marker)
    feeds = {x: np.random.default_rng(1).standard_normal((3, 6)).astype(np.float32)}
    got, _ = run_graph(out, {"input_0": feeds[x]})
    want = ort.InferenceSession(model.SerializeToString()).run(None, feeds)
    assert len(got) == len(want) == 4
    for i, w in enumerate(want):
        np.testing.assert_allclose(got[f"output_{i}"], w, rtol=1e-5, atol=1e-5)
    assert not marker.exists()
    # the same input gives the same C, byte for byte
    again = tmp_path / "again"
    subprocess.run([*SLMC, "compile", str(path), "-o", str(again)], check=True, capture_output=True)
    for f in ("model.c", "model.h", "Makefile"):
        assert (out / f).read_bytes() == (again / f).read_bytes()


def test_string_attribute_where_a_number_goes_is_refused(tmp_path: Path) -> None:
    """ArgMax's select_last_index reaches C as a number: a string there is a one-line error, not C."""
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("ArgMax", ["x"], ["y"], axis=1)
    node.attribute.append(helper.make_attribute("select_last_index", '0); int pwned = (1'))
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.INT64, None)])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=8), tmp_path / "a.onnx")
    out = tmp_path / "out"
    r = subprocess.run([*SLMC, "compile", str(tmp_path / "a.onnx"), "-o", str(out)], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not out.exists()


# ---- language models: the file name in the banner, HuggingFace config strings -------------------------------------

def _build_and_run(project: Path, args: list[str]) -> subprocess.CompletedProcess:
    subprocess.run(["make", "-s"], cwd=project, check=True, capture_output=True)
    return subprocess.run(["./model", *args], cwd=project, check=True, capture_output=True, text=True)


def test_llama2c_file_name_cannot_inject_c(tmp_path: Path) -> None:
    """A checkpoint in a folder `p*` whose name starts `*` and holds newlines, `#include`, the trigraph `??=`
    (#) and a backslash-newline: its path holds `*/` (a file name cannot)."""
    _need("gcc", "make")
    marker = tmp_path / "PWNED"
    folder = tmp_path / "p*"
    folder.mkdir()
    ckpt = folder / ('*\n#include "etc|passwd"\n??=define x\n\\\n' + "x" * 200 + ".bin")  # (at most 255 bytes)
    shutil.copyfile(shared_path("models/stories260K/stories260K.bin"), ckpt)
    out = tmp_path / "out"
    subprocess.run([*SLMC, "compile", str(ckpt), "-o", str(out)], check=True, capture_output=True)
    _check_c(out, marker)
    assert len((out / "model.c").read_text().splitlines()[0]) <= BANNER_CHARS + 6   # the banner is bounded
    r = _build_and_run(out, ["-n", "24", "-t", "0"])
    ids = [int(ln.split()[1]) for ln in r.stdout.splitlines() if ln.startswith("T ")]
    want = [int(v) for v in shared_path("models/stories260K/greedy_ids_from_bos.txt").read_text().split()]
    assert ids == want[:len(ids)] and len(ids) >= 8


def _hf_folder(folder: Path, payload: str) -> None:
    from safetensors.numpy import save_file

    D, H, L, NH, KV, V, S = 16, 32, 1, 2, 1, 32, 8
    hd = D // NH
    rng = np.random.default_rng(3)
    w = lambda *s: (0.3 * rng.standard_normal(s)).astype(np.float32)  # noqa: E731
    t = {"model.embed_tokens.weight": w(V, D), "model.norm.weight": 1 + w(D), "lm_head.weight": w(V, D)}
    for i in range(L):
        p = f"model.layers.{i}."
        t |= {p + "input_layernorm.weight": 1 + w(D), p + "post_attention_layernorm.weight": 1 + w(D),
              p + "self_attn.q_proj.weight": w(NH * hd, D), p + "self_attn.k_proj.weight": w(KV * hd, D),
              p + "self_attn.v_proj.weight": w(KV * hd, D), p + "self_attn.o_proj.weight": w(D, NH * hd),
              p + "mlp.gate_proj.weight": w(H, D), p + "mlp.up_proj.weight": w(H, D), p + "mlp.down_proj.weight": w(D, H)}
    folder.mkdir()
    save_file(t, str(folder / "model.safetensors"), metadata={"format": "pt", "note": payload})
    cfg = dict(architectures=["LlamaForCausalLM", payload], model_type="llama", hidden_size=D, intermediate_size=H,
               num_hidden_layers=L, num_attention_heads=NH, num_key_value_heads=KV, vocab_size=V,
               max_position_embeddings=S, rms_norm_eps=1e-5, hidden_act="silu", tie_word_embeddings=False,
               torch_dtype=payload, transformers_version=payload, _name_or_path=payload, bos_token_id=1,
               custom_pipelines={payload: payload})
    (folder / "config.json").write_text(json.dumps(cfg))


def test_hf_folder_strings_cannot_inject_c(tmp_path: Path) -> None:
    _need("gcc", "make")
    from slmc.frontend import hf
    from slmc.frontend.logits import reference_logits

    marker = tmp_path / "PWNED"
    p = _payloads(marker)
    (tmp_path / "hf*").mkdir()   # the folder's path holds `*/`, its name C (a name holds no '/')
    folder = tmp_path / "hf*" / '*\n#include "etc|passwd"\n??=define x\n\\\n__attribute__((constructor)) void pwn(void) {}'
    _hf_folder(folder, p[0] + p[1] + p[2])
    out = tmp_path / "out"
    r = subprocess.run([*SLMC, "compile", str(folder), "-o", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    _check_c(out, marker)
    ids = [1, 17, 5, 30, 2]
    _build_and_run(out, ["-i", ",".join(map(str, ids)), "-n", str(len(ids)), "-l", "logits.f32"])
    got = np.fromfile(out / "logits.f32", np.float32).reshape(-1, 32)
    want = reference_logits(hf.load(folder), ids)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    assert not marker.exists()
