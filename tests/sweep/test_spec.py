"""The sweep spec, the cache key and the Pareto front: checked without Ray or a compiler."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import one_line_error, run_slmc
from slmc.errors import SlmcError
from slmc.sweep.cache import Cache, point_key
from slmc.sweep.pareto import front, write_pareto
from slmc.sweep.point import PointResult, load_blob
from slmc.sweep.spec import Point, parse_spec, quick_axes


@pytest.fixture
def model(tmp_path: Path) -> Path:
    p = tmp_path / "m.bin"
    p.write_bytes(b"\0" * 64)
    return p


def test_grid_points_in_order(model):
    spec = parse_spec(dict(models=[str(model)], targets=["cortex-m33", "rv32imac"], steps=4,
                           grid=dict(kv_cache=["fp32", "fp16"], numerics=["q8", "int8", "q8"])))
    pts = spec.points()
    assert spec.count() == len(pts) == 8
    # axes in AXES order whatever the spec's order; repeated values dropped
    assert pts[0] == Point(str(model), "cortex-m33", 4, (("numerics", "q8"), ("kv_cache", "fp32")))
    assert pts[-1].target == "rv32imac" and pts[-1].options == (("numerics", "int8"), ("kv_cache", "fp16"))


@pytest.mark.parametrize("data, needle", [
    (dict(grid=dict(numerics=["q4"])), "numerics value 'q4'"),
    (dict(grid=dict(colour=["red"])), "unknown axis 'colour'"),
    (dict(grid=dict(cores=[0])), "cores = 0"),
    (dict(grid=dict(cores=["2"])), "cores = '2'"),
    (dict(grid=dict(numerics=[])), "'numerics' is empty"),
    (dict(steps=0), "steps = 0"),
    (dict(timeout_s=-1), "timeout_s"),
    (dict(targets=["z80"]), "unknown target 'z80'"),
    (dict(speed=1), "unknown key 'speed'"),
    (dict(grid={}, search={}), "both [grid] and [search]"),
    (dict(search=dict(objectives=["status"])), "objective 'status'"),
    (dict(search=dict(trials=0)), "trials = 0"),
])
def test_bad_specs_are_one_line_errors(model, data, needle):
    with pytest.raises(SlmcError) as e:
        parse_spec(dict(models=[str(model)], **data))
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_missing_model_and_quick_axes(model):
    with pytest.raises(SlmcError, match="does not exist"):
        parse_spec(dict(models=[str(model) + ".nope"]))
    assert quick_axes(["numerics=q8,int8", "cores=1,2"]) == dict(numerics=["q8", "int8"], cores=[1, 2])
    for bad in ("numerics", "cores=a", "nope=1"):
        with pytest.raises(SlmcError):
            quick_axes([bad])


def test_cache_key_follows_content(model, tmp_path):
    blob = load_blob(str(model))
    p = Point("a.bin", "cortex-m33", 4, (("numerics", "q8"),))
    k = point_key(p, blob.digest)
    assert k == point_key(Point("b/renamed.bin", "cortex-m33", 4, (("numerics", "q8"),)), blob.digest)
    assert k != point_key(Point("a.bin", "cortex-m33", 5, (("numerics", "q8"),)), blob.digest)
    assert k != point_key(Point("a.bin", "cortex-m33", 4, (("numerics", "int8"),)), blob.digest)
    model.write_bytes(b"\1" * 64)
    assert k != point_key(p, load_blob(str(model)).digest)
    cache = Cache(tmp_path / "cache")
    assert cache.get(k) is None
    cache.put(k, PointResult("ok", {"est_ms_per_token": 1.5, "ids": "1 2"}))
    assert cache.get(k).figures == {"est_ms_per_token": 1.5, "ids": "1 2"}
    cache.put("x" * 32, PointResult("timed out after 1 s", cacheable=False))
    assert cache.get("x" * 32) is None


def _row(ms, uj, ram, **kw):
    return dict(status="ok", est_ms_per_token=ms, est_uj_per_token=uj, sram_bytes=ram, **kw)


def test_pareto_front():
    rows = [_row(1, 10, 100), _row(2, 20, 200), _row(2, 5, 300), _row(1, 10, 100), dict(status="error: x"),
            _row(None, 1, 1)]
    assert front(rows) == [True, False, True, True, False, False]
    files = write_pareto([_row(1, 10, 100, numerics="q8"), _row(3, 30, 50, numerics="int8")])
    assert files["pareto.png"].startswith(b"\x89PNG")
    html = files["sweep.html"].decode()
    assert "data:image/png;base64," in html and "coloured by numerics" in html and "<script" not in html


def test_cli_bad_spec_is_one_line(tmp_path, model):
    spec = tmp_path / "s.toml"
    spec.write_text(f'models = ["{model}"]\n[grid]\nnumerics = ["q9"]\n')
    one_line_error(run_slmc("sweep", spec, "-o", tmp_path / "out"), "numerics value 'q9'")
    spec.write_text("models = [\n")
    one_line_error(run_slmc("sweep", spec, "-o", tmp_path / "out"), "not valid TOML")
    one_line_error(run_slmc("sweep", "--report", tmp_path), "no results.parquet")
    assert not (tmp_path / "out").exists()


def test_search_feed_asks_and_learns(model):
    """NSGA-II (Optuna) proposes points of the space; results and failures are told back."""
    from slmc.sweep.search import SearchFeed

    spec = parse_spec(dict(models=[str(model)], targets=["cortex-m33", "rv32imac"],
                           search=dict(trials=12, seed=3, space=dict(numerics=["q8", "int8"], context=[64, 128]))))
    feed = SearchFeed(spec)
    seen = []
    while (nxt := feed.next()) is not None:
        i, p = nxt
        seen.append(p)
        ctx = p.value("context")
        fig = dict(est_ms_per_token=ctx / 64, est_uj_per_token=2.0 if p.value("numerics") == "q8" else 1.0,
                   sram_bytes=ctx * 1000)
        feed.done(i, PointResult("ok", fig) if p.target == "cortex-m33" else PointResult("error: x"))
    assert len(seen) == 12 and {p.value("numerics") for p in seen} <= {"q8", "int8"}
    assert all(feed.study.trials[n].params["target"] == "cortex-m33" for n in feed.best())
