"""README's families x routes table, rendered from the figures the tests recorded (figures.py):

    SLMC_FIGURES=/tmp/figures.json python -m pytest -q -m slow tests/families/test_hf_families.py \
        tests/onnx/test_onnx_families.py -k "host_logits or export"
    python tests/families/table.py /tmp/figures.json README.md

replaces what lies between the two families-table markers in README.md. A family a route refuses (a one-line
error naming the feature, tested) shows the feature; one not measured shows a dash.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from figures import ROUTES  # noqa: E402

START, END = "<!-- families-table:start -->", "<!-- families-table:end -->"
# what a route refuses, by family (tests/onnx/test_onnx_families.py::test_refused_features checks the errors)
REFUSED = {(f, r): "MoE: not measured" for f in ("mixtral", "qwen2_moe", "qwen3_moe", "olmoe")
           for r in ("onnx", "onnx_past")}


def render(figures: dict[str, dict[str, float]]) -> str:
    families = sorted(figures)
    head = "| family | " + " | ".join(ROUTES.values()) + " |"
    rows = [head, "|---|" + "---|" * len(ROUTES)]
    for f in families:
        cells = [f"{figures[f][r]:.1e}" if r in figures[f] else REFUSED.get((f, r), "-") for r in ROUTES]
        rows.append(f"| {f} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main(figures_path: str, readme_path: str) -> None:
    figures = json.loads(Path(figures_path).read_text())
    readme = Path(readme_path)
    text = readme.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{readme_path} has no {START} ... {END} markers")
    a, b = text.index(START) + len(START), text.index(END)
    readme.write_text(text[:a] + "\n" + render(figures) + "\n" + text[b:])


if __name__ == "__main__":
    main(*sys.argv[1:3])
