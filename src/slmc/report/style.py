"""Colours and number formats shared by the pictures and the page, so a layer has one colour everywhere."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")   # no display on CI machines or MCU build hosts; must precede pyplot anywhere

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

# Tableau-10 minus its grey and red: grey means "outside any layer" and red means scratch.
LAYER_COLOURS = ("#4e79a7", "#59a14f", "#b07aa1", "#edc948", "#76b7b2", "#ff9da7", "#9c755f", "#f28e2b")
OTHER = "#a0a0a0"
SCRATCH = "#e15759"
KV_FACE = "#d5dde8"
KV_EDGE = "#5d7896"
LOWER_BOUND = "#222222"
ARENA = "#c0392b"
CAPACITY = "#1e8449"
DPI = 120


def new_figure(width_in: float, height_in: float) -> Figure:
    """A figure on its own Agg canvas: no pyplot, so no global figure registry to leak from."""
    fig = Figure(figsize=(width_in, height_in), dpi=DPI, facecolor="white")
    FigureCanvasAgg(fig)
    return fig


def layer_colour(layer: int | None) -> str:
    return OTHER if layer is None else LAYER_COLOURS[layer % len(LAYER_COLOURS)]


def text_colour(face: str) -> str:
    """Dark text on light faces, white on dark ones (relative luminance, Rec. 709 weights)."""
    r, g, b = matplotlib.colors.to_rgb(face)
    return "#111111" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.5 else "white"


def fmt_bytes(n: float) -> str:
    """Short human form (KiB = 1024 B) for labels; tables print exact bytes beside it."""
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= scale:
            v = n / scale
            return f"{v:.1f} {unit}" if v < 100 else f"{v:,.0f} {unit}"
    return f"{n:,.0f} B"


def fmt_count(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:,.0f}"


def save_png(fig: Figure, path) -> None:
    """Save with a 256-colour palette: flat charts lose nothing visible and the file (inlined in
    report.html as base64) shrinks about threefold, mostly in the antialiased text."""
    import io

    from PIL import Image   # matplotlib depends on Pillow

    buf = io.BytesIO()
    fig.savefig(buf, dpi=DPI, facecolor="white", format="png")
    with Image.open(buf) as im:
        im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                                   dither=Image.Dither.NONE).save(path, format="PNG", compress_level=6)
