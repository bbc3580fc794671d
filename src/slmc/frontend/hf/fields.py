"""Typed reads of a HuggingFace config.json: each field is checked against the JSON type it must have,
because Python's truthiness would take "tie_word_embeddings": "false" as true and 64.0 as a width.
A null counts as absent, as it does for transformers' configs."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from slmc.errors import SlmcError
from slmc.frontend.safe_io import show

_MISSING = object()


class Fields:
    """`c` is config.json (or an object inside it, named by `where`, e.g. "rope_parameters."); `arch`, once
    the family is known, is the architecture that refusals name."""

    def __init__(self, c: dict[str, Any], path: Path, where: str = "", arch: str = "") -> None:
        self.c, self.path, self.where, self.arch = c, path, where, arch

    def within(self, key: str) -> "Fields":
        """The object at `key` ({} when absent), read with the same checks."""
        return Fields(self.obj(key), self.path, f"{self.where}{key}.", self.arch)

    def has(self, key: str) -> bool:
        return self.c.get(key) is not None

    def bad(self, key: str, v: object, want: str) -> SlmcError:
        return SlmcError(f"{self.path}: field {self.where + key!r} is {show(v)}, expected {want}", "fix config.json")

    def refuse(self, cause: str, fix: str) -> SlmcError:
        """A configuration slmc reads correctly but cannot compile exactly: `cause` names the feature."""
        return SlmcError(f"{self.path}: {self.arch + ': ' if self.arch else ''}{cause}", fix)

    def _get(self, key: str, default: object, want: str) -> object:
        v = self.c.get(key)
        if v is None:
            if default is _MISSING:
                raise SlmcError(f"{self.path}: field {self.where + key!r} is missing, expected {want}",
                                "the config is incomplete")
            return default
        return v

    def int(self, key: str, default: object = _MISSING) -> int:
        v = self._get(key, default, "an integer")
        if not isinstance(v, int) or isinstance(v, bool):
            raise self.bad(key, v, "an integer")
        return v

    def bool(self, key: str, default: bool) -> bool:
        v = self._get(key, default, "true or false")
        if not isinstance(v, bool):
            raise self.bad(key, v, "true or false")
        return v

    def num(self, key: str, default: object = _MISSING) -> float:
        """A positive finite number."""
        v = self._get(key, default, "a positive number")
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v <= 0:
            raise self.bad(key, v, "a positive number")
        return float(v)

    def nums(self, key: str, n: int) -> tuple[float, ...]:
        """A list of `n` positive finite numbers."""
        v = self._get(key, _MISSING, f"a list of {n} positive numbers")
        if not isinstance(v, list) or len(v) != n or not all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0 for x in v):
            raise self.bad(key, v, f"a list of {n} positive numbers")
        return tuple(float(x) for x in v)

    def str(self, key: str, default: object = _MISSING) -> str:
        v = self._get(key, default, "a string")
        if not isinstance(v, str):
            raise self.bad(key, v, "a string")
        return v

    def strs(self, key: str) -> list[str] | None:
        """A list of strings, or None when absent."""
        v = self.c.get(key)
        if v is not None and (not isinstance(v, list) or not all(isinstance(x, str) for x in v)):
            raise self.bad(key, v, "a list of names")
        return v

    def obj(self, key: str) -> dict[str, Any]:
        v = self._get(key, {}, "an object")
        if not isinstance(v, dict):
            raise self.bad(key, v, "an object")
        return v
