"""slmc/cquote.py, the one way text from a model file reaches generated C: what each function returns,
checked by property and, independently of its own lists, against real compilers and their headers."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slmc.cquote import IDENT_CHARS, Names, c_comment, c_float, c_ident, c_int, c_string, comment, is_reserved
from slmc.errors import SlmcError

PAYLOADS = [
    "*/ __attribute__((constructor)) static void pwn(void) { } /*",
    '\n#include "/etc/passwd"\n',
    "??/\nint pwned;",           # a trigraph backslash, then a newline: a line splice in C99
    "\\\nint pwned;",            # a backslash-newline
    "a*/*/b/**/c//d", "*/*", "/*/", "???/", "??=define X", '"', "'", "\\", "\r\n\t\v\f\x00\x7f",
    "é名前\u202e\U0001f600", "\ud800",   # a lone surrogate (Python strings may hold one)
    "x" * 5000,
]

texts = st.one_of(st.sampled_from(PAYLOADS), st.text(), st.text(alphabet="*/?\\\n\"' ab"))


def _comment_ok(s: str) -> bool:
    return ("*/" not in s and "/*" not in s and "??" not in s
            and all(0x20 <= ord(ch) < 0x7F for ch in s))


@given(texts)
@settings(max_examples=400, deadline=None)
def test_comment_text_cannot_leave_the_comment(t: str) -> None:
    s = c_comment(t)
    assert _comment_ok(s)
    assert len(s) <= 80 + 3
    assert c_comment(s, None) == s               # idempotent: a whole comment may be escaped again
    whole = comment(t)
    assert whole.startswith("/* ") and whole.endswith(" */") and _comment_ok(whole[3:-3])


def test_comment_keeps_plain_text_and_shows_the_rest() -> None:
    assert c_comment("layers.0.attn: x [1,64]") == "layers.0.attn: x [1,64]"  # unchanged: same C as before
    assert c_comment("a*/b") == "a*\\/b"
    assert c_comment("*/*") == "*\\/\\*"
    assert c_comment("x\ny") == "x\\x0ay"
    assert c_comment("é") == "\\u00e9"
    assert c_comment("x" * 100).endswith("...") and len(c_comment("x" * 100)) == 83
    assert c_comment("x" * 100, None) == "x" * 100


@given(texts)
@settings(max_examples=300, deadline=None)
def test_identifiers_are_plain_bounded_and_not_reserved(t: str) -> None:
    s = c_ident(t)
    assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", s) and len(s) <= IDENT_CHARS
    assert not s.startswith("_") and not s.lower().startswith("slmc")
    assert c_ident(t) == s  # deterministic


def test_identifier_examples() -> None:
    assert c_ident("layers.0.wq") == "layers_0_wq"       # the names slmc's own graphs use stay as they were
    assert c_ident("tok_embeddings") == "tok_embeddings"
    for kw in ("int", "main", "memcpy", "exp", "expf", "sqrt", "NULL", "INFINITY", "EOF", "size_t", "while",
               "slmc_arena", "SLMC_VOCAB_SIZE", "SlmcConfig", "__x", "_Y", "strlen", "isnan", "y0"):
        assert c_ident(kw) == "v_" + kw
    assert c_ident("3d") == "v_3d" and c_ident("") == "v_" and c_ident("é") == "v__"
    long_a, long_b = "a" * 300 + "1", "a" * 300 + "2"
    assert c_ident(long_a) != c_ident(long_b)             # the hash of the whole name tells them apart


def test_names_are_unique_within_a_scope() -> None:
    n = Names({"w"}, avoid=("t_",))
    got = [n.add(x) for x in ["a.b", "a_b", "a-b", "a b", "w", "t_o", "t_o", "int", "v_int"]]
    assert got == ["a_b", "a_b_", "a_b_2", "a_b_3", "w_", "v_t_o", "v_t_o_", "v_int", "v_int_"]
    many = Names()
    out = [many.add("?") for _ in range(2000)]
    assert len(set(out)) == 2000 and max(map(len, out)) <= 8   # bounded, not one more '_' per clash


def test_numbers_or_an_error() -> None:
    assert c_int(3) == "3" and c_int(2.0) == "2" and c_int(True) == "1"
    assert c_float(1e-5) == "1e-05f" and c_float(float("inf")) == "INFINITY" and c_float(float("nan")) == "NAN"
    for bad in ("0); system(\"x\"); (0", b"1", 2.5, 2**40, None, [1]):
        with pytest.raises(SlmcError) as e:
            c_int(bad, "ArgMax node '*/\nx' select_last_index")
        assert "\n" not in str(e.value.cause)             # one-line errors, whatever the name
    with pytest.raises(SlmcError):
        c_float("1.0f); evil(")


def _cc(cc: str) -> str:
    if shutil.which(cc) is None:
        pytest.skip(f"{cc} is not installed")
    return cc


@pytest.mark.slow
def test_string_literals_give_back_the_bytes(tmp_path) -> None:
    """Compiled (C99, trigraphs on) and printed, each literal is exactly the text's UTF-8."""
    cc = _cc("gcc")
    items = [p for p in PAYLOADS if p != "\ud800"] + ["\x01\x02" + "7" * 3, "\\0777", "??/??'??(??)??!??<??>??-"]
    body = "\n".join(f"    fwrite({c_string(t)}, 1, {len(t.encode())}, stdout);" for t in items)
    (tmp_path / "s.c").write_text(f"#include <stdio.h>\nint main(void) {{\n{body}\n    return 0;\n}}\n")
    subprocess.run([cc, "-std=c99", "-Wall", "-Werror", "-o", "s", "s.c"], cwd=tmp_path, check=True)
    out = subprocess.run(["./s"], cwd=tmp_path, check=True, capture_output=True).stdout
    assert out == b"".join(t.encode() for t in items)  # (NULs included: each literal has its length)


HEADERS = "#include <stddef.h>\n#include <stdint.h>\n#include <string.h>\n#include <math.h>\n"


def _declared(cc: str, flags: list[str]) -> set[str]:
    """Every macro, and every function, type and object declared at file scope, by the headers model.c
    includes (kernels/c/slmc_kernels.h), as this compiler sees them in model.c's C99 mode."""
    def run(*mode: str) -> str:
        return subprocess.run([cc, *flags, "-std=c99", *mode, "-E", "-x", "c", "-"], input=HEADERS,
                              capture_output=True, text=True, check=True).stdout

    out = set(re.findall(r"#define\s+(\w+)", run("-dM")))
    pre = run("-P")
    toks = re.findall(r"[A-Za-z_]\w*|\S", pre)
    depth = 0
    for i, t in enumerate(toks):
        if t == "(":
            depth += 1
            if depth == 1 and i and re.match(r"[A-Za-z_]", toks[i - 1]):
                out.add(toks[i - 1])                       # a function (or attribute) at file scope
        elif t == ")":
            depth -= 1
    out |= set(re.findall(r"typedef[^;]*?(\w+)\s*(?:\[[^]]*\])?\s*;", pre))
    out |= set(re.findall(r"extern[^;(]*?(\w+)\s*;", pre))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("cc,flags", [
    ("gcc", []),
    ("arm-none-eabi-gcc", ["-mcpu=cortex-m33", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-sp-d16", "-specs=picolibc.specs"]),
    ("riscv64-unknown-elf-gcc", ["-march=rv32imac", "-mabi=ilp32", "-specs=picolibc.specs"]),
], ids=["host", "cortex-m33", "rv32"])
def test_no_identifier_is_a_name_the_headers_declare(cc: str, flags: list[str]) -> None:
    """The reserved lists, checked against the compilers themselves: a tensor named after anything these
    headers declare (exp, y0, fpgetround, INT8_MAX, ...) never becomes that identifier."""
    names = _declared(_cc(cc), flags)
    assert len(names) > 500
    assert sorted(n for n in names if not is_reserved(n)) == []
    assert all(c_ident(n) != n for n in names)
