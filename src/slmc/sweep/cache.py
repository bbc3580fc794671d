"""Results cached by content: a point's key hashes the model's bytes, the point's options and positions,
and slmc's version, so a re-run or an extended sweep computes only new points, and a renamed copy of a
model reuses its results. One JSON file per key under DIR/cache (or a folder given with --cache)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import slmc
from slmc.sweep.point import PointResult
from slmc.sweep.spec import Point

FORMAT = 1   # of the cache files: bump when a figure's meaning changes


def point_key(point: Point, model_digest: str) -> str:
    what = dict(format=FORMAT, slmc=slmc.__version__, model=model_digest, target=point.target, steps=point.steps,
                options=[[a, v] for a, v in point.options])
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:32]


class Cache:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> PointResult | None:
        try:
            d = json.loads(self._path(key).read_text())
            return PointResult(d["status"], d["figures"], d.get("compile_s", 0.0), d.get("run_s", 0.0), d.get("node", ""))
        except (OSError, ValueError, KeyError, TypeError):
            return None   # absent or damaged: computed again

    def put(self, key: str, res: PointResult) -> None:
        if not res.cacheable:
            return
        p = self._path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key}.", dir=p.parent)
        with os.fdopen(fd, "w") as f:
            json.dump(dict(status=res.status, figures=res.figures, compile_s=res.compile_s, run_s=res.run_s,
                           node=res.node), f)
        os.replace(tmp, p)   # a reader never sees half a file
