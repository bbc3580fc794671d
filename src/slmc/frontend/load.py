"""A model path -> the frontend that reads it: a HuggingFace folder, an ONNX file, else a llama2.c
checkpoint. The compile stages and the system simulator both start here (sim/ may not import the driver)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from slmc.errors import SlmcError
from slmc.frontend.decoder import DecoderModel
from slmc.ir import Graph


def load_model(path: Path, on_pass: Callable[[str, Graph], None] | None = None,
               onnx_convention: str = "auto") -> DecoderModel | Graph:
    """`on_pass`: sees an ONNX graph after each pass of the import pipeline (--dump-dir); `onnx_convention`:
    how an ONNX file is read where its author's toolchain departs from ONNX (frontend/onnx_convention.py)."""
    path = Path(path)
    if not path.exists():
        raise SlmcError(f"model '{path}' does not exist", "check the path")
    if not (path.is_dir() or path.is_file()):  # a FIFO or device would block or never end
        raise SlmcError(f"model '{path}' is not a regular file or folder", "give a model file or a HuggingFace folder")
    # imported per kind: reading a checkpoint never pays for onnx, and onnx_import is its only importer
    if path.is_dir():
        from slmc.frontend import hf

        return hf.load(path)
    if path.suffix == ".onnx":
        from slmc.frontend import onnx_import

        return onnx_import.load(path, on_pass, onnx_convention)
    from slmc.frontend import llama2c

    return llama2c.load(path)
