"""No import cycle between slmc's packages (issue 16, item 3).

Every module under src/slmc is parsed with `ast` (nothing is imported, so the test is fast and sees
imports that never run); every import counts, at any depth, because a function-local "lazy" import is
still a dependency: it only moves the cycle from import time to call time. Each module maps to its
package (slmc.codegen, slmc.kernels, ...); a top-level module (slmc.cli, slmc.driver, slmc.errors) is a
node of its own. The graph's strongly connected components of more than one node are the cycles.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = SRC / "slmc"

# Imports left in on purpose: (importing file under src/, imported package) -> why, and what removes it.
# Each excuses that one file only, never the whole package edge. Keep this empty where possible.
KNOWN_EXCEPTIONS: dict[tuple[str, str], str] = {}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _node(module: str) -> str:
    """The graph node a module belongs to: its package under slmc, or itself if it is a top-level
    module (slmc.driver), or "slmc" for the root package."""
    parts = module.split(".")
    return ".".join(parts[:2])


def _imported(tree: ast.AST, module: str, is_package: bool) -> list[tuple[str, int]]:
    """(imported slmc module, line) for every import in `tree`, relative ones resolved. For
    `from X import y` both X and X.y are candidates; y is kept only where it names a module file."""
    out: list[tuple[str, int]] = []
    base = module.split(".") if is_package else module.split(".")[:-1]
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            out += [(a.name, n.lineno) for a in n.names]
        elif isinstance(n, ast.ImportFrom):
            if n.level:
                src = ".".join(base[: len(base) - n.level + 1] + ([n.module] if n.module else []))
            else:
                src = n.module or ""
            out.append((src, n.lineno))
            for a in n.names:
                sub = f"{src}.{a.name}"
                if _is_module(sub):
                    out.append((sub, n.lineno))
    return [(m, ln) for m, ln in out if m == "slmc" or m.startswith("slmc.")]


def _is_module(name: str) -> bool:
    p = SRC.joinpath(*name.split("."))
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


def package_graph(exceptions: dict[tuple[str, str], str] | None = None) -> dict[tuple[str, str], list[str]]:
    """(from package, to package) -> ["file:line", ...] where the edge comes from, leaving out the
    imports `exceptions` excuses ((file, package) pairs)."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in sorted(ROOT.rglob("*.py")):
        module = _module_name(path)
        src = _node(module)
        rel = path.relative_to(SRC).as_posix()
        tree = ast.parse(path.read_text(), filename=str(path))
        for target, line in _imported(tree, module, path.name == "__init__.py"):
            dst = _node(target)
            # importing slmc.x.y also runs slmc/__init__.py, which imports nothing: "slmc" itself is
            # no dependency worth an edge unless a name is taken from it
            if dst != src and not (dst == "slmc" and target != "slmc") and (rel, dst) not in (exceptions or {}):
                edges[(src, dst)].append(f"{rel}:{line}")
    return edges


def strongly_connected(nodes: set[str], succ: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (the graph is small but recursion limits are not worth a thought)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    comps: list[list[str]] = []
    counter = 0
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(sorted(succ.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(succ.get(w, ())))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    comps.append(sorted(comp))
    return comps


def package_cycles(exceptions: dict[tuple[str, str], str] | None = None) -> list[tuple[list[str], list[str]]]:
    """Each cycle (a strongly connected component of 2+ packages) with the edges inside it."""
    edges = package_graph(exceptions)
    succ: dict[str, set[str]] = defaultdict(set)
    nodes: set[str] = set()
    for (a, b) in edges:
        nodes |= {a, b}
        succ[a].add(b)
    out = []
    for comp in strongly_connected(nodes, succ):
        if len(comp) < 2:
            continue
        inside = set(comp)
        lines = [
            f"  {a} -> {b}: {', '.join(edges[(a, b)][:4])}{' ...' if len(edges[(a, b)]) > 4 else ''}"
            for (a, b) in sorted(edges)
            if a in inside and b in inside
        ]
        out.append((comp, lines))
    return out


def test_tarjan_finds_cycles() -> None:
    succ = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    comps = strongly_connected(set("abcde"), succ)
    assert sorted(map(tuple, comps)) == [("a", "b", "c"), ("d",), ("e",)]


def test_lazy_and_relative_imports_are_seen() -> None:
    tree = ast.parse("def f():\n    from ..ir import graph\n    import slmc.driver\nfrom . import x\n")
    got = {m for m, _ in _imported(tree, "slmc.plan.memory", is_package=False)}
    assert {"slmc.ir", "slmc.ir.graph", "slmc.driver", "slmc.plan"} <= got


def test_known_exceptions_are_still_needed() -> None:
    # an exception whose import is gone is a stale licence for a cycle: remove it
    sites = {(site.rsplit(":", 1)[0], b) for (a, b), where in package_graph().items() for site in where}
    stale = [e for e in KNOWN_EXCEPTIONS if e not in sites]
    assert not stale, f"remove these from KNOWN_EXCEPTIONS, the import is gone: {stale}"


def test_no_package_import_cycle() -> None:
    cycles = package_cycles(KNOWN_EXCEPTIONS)
    msg = "\n".join(f"cycle {' / '.join(comp)}:\n" + "\n".join(lines) for comp, lines in cycles)
    assert not cycles, f"package-level import cycles (move the shared helper down a layer):\n{msg}"


def test_sim_and_targets_never_import_the_driver() -> None:
    # models and target data are read by the planner and the driver; the other way round they would
    # pull the whole compiler into every cost query (issue 16: sim/dvfs.py once compiled models itself)
    driver_side = {"slmc.driver", "slmc.stages", "slmc.config", "slmc.cli", "slmc.cli_systems", "slmc.dvfs_profile",
                   "slmc.demo", "slmc.toolchain", "slmc.codegen"}
    edges = package_graph()
    bad = {(a, b): where for (a, b), where in edges.items() if a in ("slmc.sim", "slmc.targets") and b in driver_side}
    assert not bad, f"sim/ or targets/ import the driver's side: {bad}"
