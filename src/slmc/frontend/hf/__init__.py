"""HuggingFace folders (config.json + model.safetensors, or shards with an index) as a DecoderModel, for
every family in families.FAMILIES; the others are refused by name (families.REFUSED).

Everything read from the folder is untrusted: config.json fields are type-checked (fields.py), shard names
must stay inside the folder and safetensors headers are validated before any tensor is mapped (files.py),
and every tensor's shape is checked against what config.json implies.
"""

from __future__ import annotations

from pathlib import Path

from slmc.errors import SlmcError
from slmc.frontend.decoder import DecoderModel
from slmc.frontend.hf.families import pick
from slmc.frontend.hf.fields import Fields
from slmc.frontend.hf.files import Weights
from slmc.frontend.safe_io import load_json


def load(folder: Path) -> DecoderModel:
    folder = Path(folder)
    if not folder.is_dir():
        raise SlmcError(f"{folder} is not a folder", "pass the HuggingFace model folder (with config.json)")
    path = folder / "config.json"
    f = Fields(load_json(path, "config file", "a HuggingFace model folder needs config.json"), path)
    family = pick(f)
    f.arch = family.architecture
    spec = family.config(f)
    try:
        spec.config.validate()
    except SlmcError as e:
        raise SlmcError(f"{path}: {e.cause}", e.fix) from None
    model = family.weights(spec, Weights(folder))
    model.source = f"huggingface {family.model_type} {folder.name}"
    model.notes = list(spec.notes)
    return model


