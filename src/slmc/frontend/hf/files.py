"""The safetensors files of a HuggingFace folder: model.safetensors, or shards listed in an index whose
names must stay inside the folder. Headers are validated before any tensor is mapped (safetensors_file.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from slmc.errors import SlmcError
from slmc.frontend.safe_io import load_json, show
from slmc.frontend.safetensors_file import Entry, Tensors, read_header

_FIX = "re-download the model"


class Weights:
    """The folder's tensors by name, each read as float32 with the shape config.json implies."""

    def __init__(self, folder: Path) -> None:
        self.tensors = Tensors(_index(folder), folder)

    def has(self, name: str) -> bool:
        return name in self.tensors.entries

    def __call__(self, name: str, *shape: int) -> np.ndarray:
        return self.tensors.get(name, shape)


def _shard_name(name: str, index: Path) -> str:
    """A shard named by the index must be a plain file name in the folder: no path, no '..'."""
    if name in ("", ".", "..") or Path(name).name != name or "\\" in name or "\0" in name:
        raise SlmcError(f"{index}: shard name {show(name)} points outside the folder", _FIX)
    return name


def _index(folder: Path) -> dict[str, Entry]:
    single = folder / "model.safetensors"
    index = folder / "model.safetensors.index.json"
    if index.exists():
        wmap = load_json(index, "weights index", _FIX).get("weight_map")
        if not isinstance(wmap, dict) or not all(isinstance(v, str) for v in wmap.values()):
            raise SlmcError(f"{index} has no weight_map of tensor names to files", _FIX)
        files = sorted({_shard_name(v, index) for v in wmap.values()})
    elif single.exists():
        wmap, files = {}, [single.name]
    else:
        raise SlmcError(f"{folder} has neither model.safetensors nor model.safetensors.index.json",
                        "download the safetensors weights (PyTorch .bin files are not read)")
    out: dict[str, Entry] = {}
    for name in files:
        for tname, e in read_header(folder / name).items():
            if tname in out:  # which copy would be meant is a guess; refuse instead
                raise SlmcError(f"{folder}: tensor {show(tname)} is in both {out[tname].file.name} and {name}", _FIX)
            out[tname] = e
    for tname, shard in wmap.items():
        if tname in out and out[tname].file.name != shard:
            raise SlmcError(f"{index}: tensor {show(tname)} is listed in {shard} but stored in "
                            f"{out[tname].file.name}", _FIX)
    return out
