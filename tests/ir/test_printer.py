"""ir/printer.py: the stable text form of every stage (`--dump-dir`). The same input prints the same
text, a one-attribute change is a one-line diff, and a dump can be counted back."""

from __future__ import annotations

import numpy as np

from conftest import shared_path
from slmc.frontend.build import build_step_graph
from slmc.frontend.random_model import SHAPES, random_decoder
from slmc.ir import DType, Graph, TensorType
from slmc.ir.printer import Dumps, print_graph, render, summary
from slmc.passes import run_pipeline

F32 = DType.F32


def _model():
    return random_decoder(SHAPES["stories260K"], seed=7)


def _counts_match(text: str, g: Graph) -> None:
    s = summary(text)
    assert s.get("node", 0) == len(g.nodes)
    assert s.get("input", 0) == len(g.inputs) and s.get("output", 0) == len(g.outputs)
    assert s.get("const", 0) == len(g.consts()) and s.get("state", 0) == len(g.states())


def test_same_graph_same_text() -> None:
    m = _model()
    g = build_step_graph(m, 1, "q8")
    assert print_graph(g) == print_graph(g)
    # a second build of the same weights: no id(), no dict order, no timing leaks into the text
    assert print_graph(build_step_graph(m, 1, "q8")) == print_graph(g)


def test_one_attribute_is_one_line() -> None:
    m = _model()
    a, b = build_step_graph(m, 1, "fp32"), build_step_graph(m, 1, "fp32")
    node = next(n for n in b.nodes if n.op == "rmsnorm")
    node.attrs["eps"] = 2e-5
    la, lb = print_graph(a).splitlines(), print_graph(b).splitlines()
    assert len(la) == len(lb)
    diff = [(x, y) for x, y in zip(la, lb) if x != y]
    assert len(diff) == 1 and "eps=2e-05" in diff[0][1] and "eps=1e-05" in diff[0][0]


def test_constants_by_hash_never_data() -> None:
    m = _model()
    g = build_step_graph(m, 1, "fp32")
    text = print_graph(g)
    assert len(text) < 200 * (len(g.nodes) + len(g.values))  # weights would be megabytes
    w = next(v for v in g.consts() if v.data is not None and v.data.size > 100)
    before = next(line for line in text.splitlines() if line.startswith(f"const  {w.name}:"))
    w.data = w.data.copy()
    w.data.flat[0] += 1
    after = next(line for line in print_graph(g).splitlines() if line.startswith(f"const  {w.name}:"))
    assert before != after and before.split("#")[0] == after.split("#")[0]


def test_hostile_names_stay_on_one_line() -> None:
    g = Graph("g")
    x = g.add_input("x\nnode   forged = add()", (2,), F32)
    y = g.op("Relu", [x], TensorType((2,), F32), name="y */ evil")
    g.outputs = [y]
    text = print_graph(g)
    assert summary(text) == {"graph": 1, "input": 1, "node": 1, "output": 1}
    assert "'x\\nnode   forged = add()'" in text


def test_stories260k_dump_counts_back(tmp_path) -> None:
    from slmc.frontend import llama2c

    g = build_step_graph(llama2c.load(shared_path("models/stories260K/stories260K.bin")), 1, "q8")
    dumps = Dumps(True)
    dumps.add("02-build", g)
    text = dumps.files["02-build.txt"].decode()
    _counts_match(text, g)
    assert text == print_graph(g)


def test_binding_and_plan(tmp_path) -> None:
    from slmc.plan.plan import plan_memory
    from slmc.stages.program import bind
    from slmc.targets import get_target

    graphs = [build_step_graph(_model(), 1, "q8")]
    binding = bind(graphs, get_target("host"))
    text = render(binding, graphs)
    assert summary(text) == {"graph": 1, "bind": len(graphs[0].nodes)}
    assert render(binding, graphs) == text
    scratch = {k: spec.scratch(n) for g in graphs for n in g.nodes if (spec := binding.get(k := id(n)))}
    plan = plan_memory(graphs, scratch)
    ptext = render(plan)
    assert summary(ptext)["buffer"] == len(plan.buffers)
    assert "seconds" not in ptext  # timings differ on every run
    assert render(plan_memory(graphs, scratch)) == ptext


def test_dump_off_and_names() -> None:
    off = Dumps(False)
    off.add("x", "text")
    assert off.files == {} and off.on_pass("p") is None
    on = Dumps(True)
    on.add("../evil name", "text")
    assert on.files == {"_evil_name.txt": b"text\n"}


def test_model_prints_as_data() -> None:
    text = render(_model())
    assert "config.dim = 64" in text and "tok_emb = f32[512,64]#" in text
    assert render(_model()) == text


def test_pipeline_reports_each_pass() -> None:
    g = Graph("g")
    x = g.add_input("x", (2,), F32)
    c = g.add_const("c", np.ones(2, np.float32))
    g.outputs = [g.op("Add", [x, c], TensorType((2,), F32), name="y")]
    seen: list[str] = []
    run_pipeline(g, on_pass=lambda stage, graph: seen.append(f"{stage}:{summary(print_graph(graph))['node']}"))
    assert seen == ["1-simplify:1", "2-fold:1", "3-simplify:1", "4-fold_batchnorm:1", "5-dce:1"]


def test_compile_dump_dir(tmp_path) -> None:
    """`slmc compile --dump-dir D`: the ONNX graph after each import pass, then graphs, kernels and plan;
    the same input dumps the same bytes, and a dump folder is an slmc folder like -o (output.py)."""
    import onnx
    from onnx import TensorProto, helper

    from slmc.driver import CompileOptions, compile_model

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    w = helper.make_tensor("w", TensorProto.FLOAT, [3], [1.0, 2.0, 3.0])
    g = helper.make_graph([helper.make_node("Mul", ["x", "w"], ["m"]), helper.make_node("Relu", ["m"], ["y"])],
                          "g", [x], [y], [w])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "m.onnx")
    texts = []
    for run in ("a", "b"):
        d = tmp_path / f"dump_{run}"
        compile_model(CompileOptions(tmp_path / "m.onnx", out=tmp_path / f"out_{run}", dump_dir=d))
        files = sorted(p.name for p in d.iterdir() if p.suffix == ".txt")
        assert files[0].startswith("00-model") and "01-onnx-import-1-simplify.txt" in files
        assert {"10-graphs.txt", "11-bind.txt", "12-plan.txt"} <= set(files)
        texts.append({f: (d / f).read_bytes() for f in files})
    assert texts[0] == texts[1]
    assert b"node   " in texts[0]["10-graphs.txt"] and b"Relu" in texts[0]["10-graphs.txt"]
