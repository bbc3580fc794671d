"""`slmc sweep`: design-space sweeps over compile options, one point = one compile plus one emulated run.

spec.py reads the TOML spec (or the CLI's quick-grid flags) into points; point.py computes one point;
cache.py keys a point's result by content (model bytes, options, slmc version); engine.py spreads the
points over Ray (in-process by default, or a cluster); search.py proposes points with Optuna's NSGA-II;
results.py writes results.parquet; pareto.py draws the fronts into a PNG and an HTML page.
"""
