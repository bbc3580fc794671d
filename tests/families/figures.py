"""The figures the family tests measure, kept for README's families x routes table (tests/families/table.py).

With SLMC_FIGURES=PATH in the environment, each route test records the largest logit difference it measured
(slmc's fp32 host build against transformers and, for the ONNX routes, onnxruntime) into the JSON file PATH,
merged with what is there: {family: {route: error}}. Without it, nothing is written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

ROUTES = {"hf": "HF folder", "onnx": "ONNX export", "onnx_past": "ONNX with past"}


def record(family: str, route: str, err: float) -> None:
    path = os.environ.get("SLMC_FIGURES")
    if not path:
        return
    assert route in ROUTES, route
    p = Path(path)
    data = json.loads(p.read_text()) if p.exists() else {}
    data.setdefault(family, {})[route] = float(err)
    p.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
