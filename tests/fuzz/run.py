"""`make fuzz`: thousands of hostile inputs through the `slmc` command line, with a summary.

    python tests/fuzz/run.py --cases 10000 --seed 0 --jobs 2 [--families onnx,hf] [--json fuzz.json]

Cases go round-robin over the families (case i of family f has seed `seed + i`), so a finding is
reproduced by its family and seed alone: `--families F --first-seed N --cases 1`. Exits 1 when any
case ends in anything but exit 0 with a complete output or a one-line error with exit 2.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ (this file is also run as a script)

from fuzz.families import FAMILIES, bases, cli_run  # noqa: E402
from fuzz.harness import Case, Outcome, run_cases  # noqa: E402


def prebuilt_project(root: Path) -> Path:
    """The tiny model compiled for the host and built once, for the `slmc run` family."""
    from slmc.driver import CompileOptions, compile_model
    from slmc.toolchain.build import build

    proj = root / "proj"
    if not (proj / "report.json").exists():
        compile_model(CompileOptions(bases(root)["v0"], out=proj, tokenizer=bases(root)["tok"]))
    build(proj)
    return proj


def families(names: list[str] | None, root: Path) -> dict:
    fams = dict(FAMILIES)
    if names is None or "cli_run" in names:
        fams["cli_run"] = cli_run(prebuilt_project(root))
    return {k: v for k, v in fams.items() if names is None or k in names}


def cases(fams: dict, n: int, first_seed: int, root: Path) -> Iterator[Case]:
    names = list(fams)
    for i in range(n):
        name = names[i % len(names)]
        seed = first_seed + i // len(names)
        workdir = root / "cases" / f"{name}-{seed}"
        if workdir.exists():
            shutil.rmtree(workdir)
        workdir.mkdir(parents=True)
        yield fams[name](seed, workdir, root)


def fuzz(n: int, first_seed: int = 0, jobs: int = 2, names: list[str] | None = None, timeout_s: float = 60.0,
         cap_gib: float = 4.0, root: Path | None = None, progress: bool = False) -> list[Outcome]:
    own = root is None
    root = Path(tempfile.mkdtemp(prefix="slmc-fuzz-")) if own else root
    done: list[Outcome] = []
    try:
        fams = families(names, root)
        t0 = time.monotonic()
        for o in run_cases(cases(fams, n, first_seed, root), jobs, timeout_s, cap_gib):
            done.append(o)
            if o.ok:  # keep the folders of findings only: 10,000 cases would fill the disk
                shutil.rmtree(o.case.workdir, ignore_errors=True)
            if progress and (len(done) % 100 == 0 or not o.ok):
                bad = sum(not x.ok for x in done)
                print(f"\r{len(done):,}/{n:,} cases, {bad} findings, {time.monotonic() - t0:,.0f} s",
                      end="" if o.ok else "\n", file=sys.stderr, flush=True)
                if not o.ok:
                    print(o.describe(), file=sys.stderr)
    finally:
        if own:
            shutil.rmtree(root, ignore_errors=True)
    return done


def summary(done: list[Outcome]) -> dict:
    per: dict[str, Counter] = defaultdict(Counter)
    for o in done:
        per[o.case.family]["cases"] += 1
        per[o.case.family][f"exit {o.code}"] += 1
        per[o.case.family]["findings"] += not o.ok
    big = max(done, key=lambda o: o.peak_rss_kib)
    slow = max(done, key=lambda o: o.seconds)
    return dict(cases=len(done), findings=sum(not o.ok for o in done), families={k: dict(v) for k, v in per.items()},
                largest_peak_rss_mib=round(big.peak_rss_kib / 1024, 1),
                largest_peak_case=f"{big.case.family} seed {big.case.seed}",
                slowest_seconds=round(slow.seconds, 2), slowest_case=f"{slow.case.family} seed {slow.case.seed}",
                median_seconds=round(sorted(o.seconds for o in done)[len(done) // 2], 3))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--first-seed", "--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--families", default=None, help="comma-separated; default: all")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per case")
    ap.add_argument("--cap-gib", type=float, default=4.0, help="address space a case may add")
    ap.add_argument("--json", type=Path, default=None, help="write the summary and findings here")
    a = ap.parse_args()
    done = fuzz(a.cases, a.first_seed, a.jobs, a.families.split(",") if a.families else None, a.timeout, a.cap_gib,
                progress=True)
    s = summary(done)
    s["findings_detail"] = [o.describe() for o in done if not o.ok]
    print(file=sys.stderr)
    print(json.dumps({k: v for k, v in s.items() if k != "findings_detail"}, indent=1))
    for line in s["findings_detail"][:50]:
        print(line)
    if a.json:
        a.json.write_text(json.dumps(s, indent=1) + "\n")
    return 1 if s["findings"] else 0


if __name__ == "__main__":
    sys.exit(main())
