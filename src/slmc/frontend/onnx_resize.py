"""ONNX Resize (and the older Upsample) in canonical form: x and the constant per-axis tap tables of
ir/resize.py, with the output sizes and scales worked out here from roi/scales/sizes, axes and
keep_aspect_ratio_policy as the ONNX reference does (frontend/onnx_canon.py calls it for both)."""

from __future__ import annotations

import numpy as np

from slmc.errors import SlmcError
from slmc.frontend.onnx_canon import NodeIn


def _floats(n: NodeIn, i: int, what: str) -> list[float] | None:
    data = n.static(i, what)
    if data is None or np.asarray(data).size == 0:
        return None
    vals = np.asarray(data, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(vals)):
        raise SlmcError(f"ONNX {n.op} node '{n.name}': its {what} {vals.tolist()} are not finite",
                        "the model is malformed: export it again")
    return vals.tolist()


def canonicalize(n: NodeIn) -> None:
    """Resize (and the older Upsample) become x and the constant per-axis tap tables of ir/resize.py: the
    output sizes and scales worked out here (axes, keep_aspect_ratio_policy), as the ONNX reference does."""
    from slmc.ir.resize import tables
    from slmc.ir.verify import check_shape

    x = n.inputs[0]
    assert x is not None
    r = len(x.shape)
    a = n.attrs
    fail = lambda what: SlmcError(f"ONNX {n.op} node '{n.name}': {what}", "see docs/ONNX_COVERAGE.md for what Resize accepts")  # noqa: E731
    if n.op == "Upsample" or n.opset < 11:  # Upsample and Resize-10: scales only, asymmetric coordinates, floor
        scales = a.pop("scales", None) if n.op == "Upsample" and n.opset < 9 else _floats(n, 1, "scales")
        roi, sizes = None, None
        a.setdefault("coordinate_transformation_mode", "asymmetric")
        a.setdefault("nearest_mode", "floor")
    else:
        roi, scales, sizes = _floats(n, 1, "roi"), _floats(n, 2, "scales"), n.ints(3, "sizes") if n.input(3) is not None else None
        sizes = sizes or None
    if a.get("mode", "nearest") not in ("nearest", "linear", "cubic", "bilinear" if n.op == "Upsample" else "linear"):
        raise fail(f"mode {a.get('mode')!r} is not nearest, linear or cubic")
    if a.get("mode") == "bilinear":
        a["mode"] = "linear"
    axes = a.pop("axes", None)
    axes = list(range(r)) if axes is None else [int(d) % r if -r <= int(d) < r else -1 for d in axes]
    if -1 in axes or len(set(axes)) != len(axes):
        raise fail(f"axes {n.attrs.get('axes')} are not distinct axes of an input of rank {r}")
    if (scales is None) == (sizes is None):
        raise fail("it must have scales or sizes (one of them)")
    given = scales if scales is not None else sizes
    if len(given) != len(axes):  # type: ignore[arg-type]
        raise fail(f"{'scales' if scales is not None else 'sizes'} {given} do not give one value per axis ({len(axes)})")
    if a.get("coordinate_transformation_mode") != "tf_crop_and_resize":
        roi = None  # (only tf_crop_and_resize reads it)
    elif roi is not None and len(axes) != r and len(roi) == 2 * len(axes):
        lo, hi = dict(zip(axes, roi[:len(axes)])), dict(zip(axes, roi[len(axes):]))
        roi = [lo.get(d, 0.0) for d in range(r)] + [hi.get(d, 1.0) for d in range(r)]
    if roi is not None and len(roi) != 2 * r:
        raise fail(f"roi {roi} does not give a start and an end per axis")
    if scales is not None:
        if any(s <= 0 for s in scales):
            raise fail(f"scales {scales} must be positive")
        full = [1.0] * r
        for d, s in zip(axes, scales):
            full[d] = s
        out = [int(full[d] * x.shape[d]) for d in range(r)]
    else:
        if any(s < 0 for s in sizes):  # type: ignore[union-attr]
            raise fail(f"sizes {sizes} hold a negative size")
        out = list(x.shape)
        for d, s in zip(axes, sizes):  # type: ignore[arg-type]
            out[d] = int(s)
        full = [out[d] / x.shape[d] if x.shape[d] else 1.0 for d in range(r)]
        policy = a.get("keep_aspect_ratio_policy", "stretch")
        if policy != "stretch":
            if policy not in ("not_larger", "not_smaller"):
                raise fail(f"keep_aspect_ratio_policy {policy!r} is not stretch, not_larger or not_smaller")
            one = (min if policy == "not_larger" else max)(full[d] for d in axes)
            full = [one if d in axes else 1.0 for d in range(r)]
            out = [int(one * x.shape[d] + 0.5) if d in axes else x.shape[d] for d in range(r)]
    check_shape(out, x.dtype.size, f"the output of {n.op} node '{n.name}'")  # before any table is sized by it
    canon = {"mode": a.get("mode", "nearest"), "sizes": out, "scales": full, "roi": roi,
             "coordinate_transformation_mode": a.get("coordinate_transformation_mode", "half_pixel"),
             "nearest_mode": a.get("nearest_mode", "round_prefer_floor"), "cubic_coeff_a": a.get("cubic_coeff_a", -0.75),
             "exclude_outside": a.get("exclude_outside", 0), "antialias": a.get("antialias", 0)}
    if canon["coordinate_transformation_mode"] not in ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel",
                                                       "align_corners", "asymmetric", "tf_crop_and_resize"):
        raise fail(f"coordinate_transformation_mode {canon['coordinate_transformation_mode']!r} is not one ONNX defines")
    if canon["nearest_mode"] not in ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil"):
        raise fail(f"nearest_mode {canon['nearest_mode']!r} is not one ONNX defines")
    idx, w, taps = tables(x.shape, canon)
    n.op = "Resize"
    n.inputs = [x, n.make_const(f"{n.name}.taps", idx), n.make_const(f"{n.name}.weights", w)]
    n.attrs = {"sizes": out, "taps": taps, "extrapolation_value": float(a.get("extrapolation_value", 0.0))}
