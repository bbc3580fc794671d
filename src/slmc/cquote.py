"""The one way text from a model file reaches generated C.

A model file is untrusted input: its graph, node, value, input and output names, its attributes, a
HuggingFace config's strings and the file's own name are chosen by whoever made it. Pasted into
model.c as they are, `*/ __attribute__((constructor)) ... /*` in a node name would be C that runs when
the project is built and started. So every string that is not slmc's own goes through one of:

- `c_comment(text)`: text for the inside of a /* */ comment. It cannot end the comment, open another,
  continue the line or hold a trigraph; it is printable ASCII, one line, of bounded length.
  `comment(text)` wraps it in /* */ and is how dynamic comments are written.
- `c_string(text)`: a C string literal of the text's UTF-8 bytes.
- `c_ident(name)`: a C identifier that is no C keyword, no name the C library headers model.c includes
  may use (their functions, macros and reserved name spaces) and none of slmc's own (slmc_, SLMC_),
  of bounded length. `Names` hands out identifiers that are unique within one C scope.
- `c_int(x)` / `c_float(x)`: a number, or an SlmcError when an attribute holds something else.
- `make_word(text)`: a file name or define in a Makefile or CMakeLists.txt (slmc's own today; checked
  so that it stays so).

Every function is deterministic: the same text gives the same C.
"""

from __future__ import annotations

import hashlib
import math
import re

from slmc.errors import SlmcError

NAME_CHARS = 80        # a name in a comment: longer ones end in "..."
IDENT_CHARS = 48       # an identifier: with slmc_graph_ before it or a Names suffix after it, within C99's 63

# ---- comments -----------------------------------------------------------------------------------------

# pairs that mean something inside a comment: its end, a nested start (-Wcomment), a trigraph (C99
# replaces ??/ by a backslash before comments are seen)
_PAIRS = frozenset({"*/", "/*", "??"})


def _visible(ch: str) -> str:
    o = ord(ch)
    if 0x20 <= o < 0x7F:
        return ch
    return f"\\x{o:02x}" if o < 0x80 else f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}"


def c_comment(text: object, limit: int | None = NAME_CHARS) -> str:
    """`text` for the inside of a one-line /* */ comment: characters outside printable ASCII (newlines
    included) become visible escapes such as \\x0a or \\u00e9, and a backslash goes between the two
    characters of `*/`, `/*` and `??`. Cut to `limit` characters (None: no limit) with "..." at the end.

    Idempotent: c_comment(c_comment(t)) == c_comment(t), so a comment made of escaped names and slmc's
    own text can be passed through again as a whole, which `comment` does."""
    out: list[str] = []
    size = 0
    for ch in str(text):
        piece = _visible(ch)
        if out and out[-1][-1] + piece[0] in _PAIRS:
            piece = "\\" + piece
        if limit is not None and size + len(piece) > limit:
            out.append("...")
            break
        out.append(piece)
        size += len(piece)
    return "".join(out)


def comment(text: object, limit: int | None = None) -> str:
    """A whole `/* text */`, the only way generated C writes a comment that holds anything not literal."""
    return f"/* {c_comment(text, limit)} */"


# ---- string literals ------------------------------------------------------------------------------------

def c_string(text: str | bytes) -> str:
    """A C string literal of `text` (UTF-8): printable ASCII as is but for `"`, `\\` and `?` (trigraphs),
    every other byte as a three-digit octal escape, which no following character can extend."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    out = []
    for b in raw:
        ch = chr(b)
        if ch in '"\\?':
            out.append("\\" + ch)
        elif 0x20 <= b < 0x7F:
            out.append(ch)
        else:
            out.append(f"\\{b:03o}")
    return '"' + "".join(out) + '"'


# ---- identifiers ------------------------------------------------------------------------------------------

_KEYWORDS = """auto break case char const continue default do double else enum extern float for goto if inline int
long register restrict return short signed sizeof static struct switch typedef union unsigned void volatile while
alignas alignof bool constexpr false nullptr static_assert thread_local true typeof typeof_unqual asm fortran
complex imaginary noreturn""".split()

# What <stddef.h>, <stdint.h>, <string.h> and <math.h> (model.c's includes) declare that the patterns
# below do not cover, with the BSD/XSI extras newlib and picolibc may add, the names GNU modes predefine
# and the C library's usual functions (gcc knows them as builtins). tests/codegen/test_cquote.py checks
# the list against the host's and the cross compilers' own headers.
_MATH = """acos asin atan atan2 cos sin tan acosh asinh atanh cosh sinh tanh exp exp2 expm1 exp10 frexp ilogb ldexp
log log10 log1p log2 logb modf scalbn scalbln cbrt fabs hypot pow pow10 sqrt erf erfc lgamma tgamma gamma ceil floor
nearbyint rint lrint llrint round lround llround trunc fmod remainder remquo copysign nan nextafter nexttoward fdim
fmax fmin fma j0 j1 jn y0 y1 yn drem finite scalb significand sincos infinity getpayload""".split()
_LIBC = """math_errhandling signgam offsetof fpclassify signbit isfinite isinf isnan isnormal isgreater
isgreaterequal isless islessequal islessgreater isunordered iseqsig issignaling issubnormal iszero isinff isnanf
finitef isfinitef isnormalf iszerof extu_ld bcmp bcopy bzero index rindex ffs ffsl ffsll fls flsl
explicit_bzero main errno assert abort exit atexit malloc calloc realloc free printf fprintf sprintf snprintf puts
putchar getchar fopen fclose fread fwrite fputs fgets stdin stdout stderr atoi atol atoll atof strtol abs labs llabs
div ldiv rand srand qsort bsearch getenv system clock time alloca linux unix i386 sun vax mips arm""".split()
_RESERVED = frozenset(_KEYWORDS + _LIBC + [f + s for f in _MATH for s in ("", "f", "l")])

_RESERVED_RE = re.compile(
    r"_"                          # the implementation's (leading underscore)
    r"|[Ss][Ll][Mm][Cc]"          # slmc's own: slmc_arena, slmc_graph_*, SLMC_*, SlmcConfig
    r"|(?:str|mem|wcs)[a-z]"      # <string.h>'s future names (C11 7.31.13)
    r"|fp_|fp[gs]et"              # picolibc's <ieeefp.h> (fp_rnd, fpgetround, ...), which its <math.h> includes
    r"|[^a-z]*$(?<=..)"           # no lower-case letter, two or more characters: a macro's look (INFINITY, EOF, INT8_MAX)
    r"|\w*_t$"                    # types (size_t, int8_t, float_t; POSIX reserves *_t)
)


def _hash(name: str) -> str:
    return hashlib.sha1(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def c_ident(name: str) -> str:
    """A C identifier for `name`: each character outside [A-Za-z0-9_] becomes '_'; a name that starts with
    a digit or is reserved (see the module docstring) gets the prefix v_; one longer than IDENT_CHARS keeps
    its start and ends in a hash of the whole name. Not unique by itself: "a.b" and "a_b" are both a_b
    (Names makes them unique)."""
    s = re.sub(r"[^A-Za-z0-9_]", "_", str(name))
    if not s or s[0].isdigit() or s in _RESERVED or _RESERVED_RE.match(s):
        s = "v_" + s
    if len(s) > IDENT_CHARS:
        s = f"{s[:IDENT_CHARS - 9]}_{_hash(str(name))}"
    return s


def is_reserved(ident: str) -> bool:
    """Whether c_ident would prefix this identifier (for the tests' check against real headers)."""
    return ident in _RESERVED or bool(_RESERVED_RE.match(ident))


# The names generated functions declare themselves: a graph function's parameters n and pos, and the
# locals of the tiled loops (codegen/tiled.py: t, t_o, t_x, ..., rows, len, a0, b0, na, nb, h). A tensor of
# the same name would be shadowed by them (a weight) or clash with them (a local): Names keeps off both.
LOCALS = frozenset("n pos t rows len a0 b0 na nb h".split())
LOCAL_PREFIXES = ("t_",)


class Names:
    """Identifiers unique within one C scope. `taken`: names already in the scope (or shadowing it);
    `avoid`: prefixes the scope's own generated code uses (a name starting with one gets the prefix v_)."""

    def __init__(self, taken: "set[str] | frozenset[str] | tuple[str, ...]" = (), avoid: tuple[str, ...] = ()) -> None:
        self.used = set(taken)
        self.avoid = avoid
        self._next: dict[str, int] = {}

    def add(self, name: str) -> str:
        base = c_ident(name)
        if self.avoid and base.startswith(self.avoid):
            base = "v_" + base
        s = base
        if s in self.used:        # the first clash gets a trailing '_', later ones _2, _3, ...
            s = base + "_"
            k = self._next.get(base, 2)
            while s in self.used:
                s, k = f"{base}_{k}", k + 1
            self._next[base] = k
        self.used.add(s)
        return s


# ---- numbers ---------------------------------------------------------------------------------------------

def _bad(what: str, x: object, kind: str) -> SlmcError:
    return SlmcError(f"{c_comment(what)} is {c_comment(repr(x), 40)}, not {kind}",
                     "check the model's attributes")


def c_int(x: object, what: str = "an attribute", lo: int = -2**31, hi: int = 2**31 - 1) -> str:
    """An integer literal for an int parameter of a kernel: an integer (or a whole float) in [lo, hi]."""
    try:
        if isinstance(x, (str, bytes)):   # int("7") would parse what C must not see as text
            raise TypeError
        v = int(x)  # type: ignore[call-overload]
        if v != x:
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise _bad(what, x, "an integer") from None
    if not lo <= v <= hi:
        raise _bad(what, x, f"an integer in {lo}..{hi}")
    return str(v)


def c_float(x: object, what: str = "an attribute") -> str:
    """A float literal (INFINITY and NAN from math.h for the values C has no literal for)."""
    try:
        if isinstance(x, (str, bytes)):
            raise TypeError
        f = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise _bad(what, x, "a number") from None
    if math.isnan(f):
        return "NAN"
    if math.isinf(f):
        return "INFINITY" if f > 0 else "(-INFINITY)"
    return f"{f!r}f"


# ---- Makefile and CMakeLists.txt ----------------------------------------------------------------------------

_WORD = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+=/-]*")


def make_word(text: str) -> str:
    """`text` as a word of a Makefile or CMakeLists.txt (a file name, a -D define): only characters that
    neither make nor cmake nor the shell give a meaning to. Anything else is slmc's bug, not the model's."""
    if not _WORD.fullmatch(text) or ".." in text:
        raise ValueError(f"not a safe Makefile word: {text!r}")
    return text
