"""`make bench`: measure slmc's generated C against llama2.c (run.c, runq.c) and onnxruntime on this machine,
write benchmarks/results.json, then render docs/BENCHMARKS.md from that JSON (benchmarks/render.py).

Everything runs on one thread. Each timed configuration runs BENCH_REPEATS times (default 5); the runs are
interleaved in rounds (every configuration once per round) so that a change in machine load hits all of them
alike. Environment: LLAMA2C_DIR (a llama2.c checkout; its rows are skipped without it), BENCH_REPEATS,
BENCH_PROFILE=0 (skip the callgrind counts), BENCH_MCU=0 (skip the MCU section: exact instruction counts on the
RP2350's cores, benchmarks/mcu.py, about 2.5 minutes), BENCH_MCU_STEPS (its positions, 16), SLMC_SHARED
(../shared by default).
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import hashlib  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable  # noqa: E402

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import callgrind  # noqa: E402
import llama2c_baseline as l2c  # noqa: E402
import mcu  # noqa: E402
import render  # noqa: E402
import cluster  # noqa: E402
import levels  # noqa: E402
import codesize  # noqa: E402
import sharing  # noqa: E402
import systems  # noqa: E402
from cases import NATIVE, STEPS, Case, makefile_flags, parse_slmc, prepare, slmc_cmd  # noqa: E402
from measure import loadavg, run_proc, stats  # noqa: E402

from slmc.driver import CompileOptions, compile_model  # noqa: E402
from slmc.toolchain.build import build  # noqa: E402

WORK = HERE / "work"
RESULTS = HERE / "results.json"
REPEATS = max(1, int(os.environ.get("BENCH_REPEATS", "5")))
SHARED = Path(os.environ.get("SLMC_SHARED", ROOT.parent / "shared"))
console = Console(stderr=True, highlight=False)


def progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=True, disable=not console.is_terminal)


def slmc_cli() -> list[str]:
    exe = Path(sys.executable).parent / "slmc"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "slmc.cli"]


def compile_all(cases: list[Case]) -> list[dict]:
    """`slmc compile` as a user runs it (a process) and compile_model in this process, REPEATS times each;
    the last compile is the project that gets built and timed."""
    rows = []
    jobs = [(c, n) for c in cases for n in c.numerics]
    with progress() as p:
        task = p.add_task("slmc compile", total=len(jobs) * REPEATS)
        for c, numerics in jobs:
            out = WORK / c.key / f"slmc_{numerics}"
            walls, cpus, internal = [], [], []
            for _ in range(REPEATS):
                p.update(task, description=f"slmc compile {c.key} -q {numerics}")
                r = run_proc([*slmc_cli(), "compile", str(c.checkpoint(numerics)), "-q", numerics, "-o", str(out)])
                walls.append(r.wall_s)
                cpus.append(r.cpu_s)
                t0 = time.perf_counter()
                compile_model(CompileOptions(c.checkpoint(numerics), numerics=numerics, out=WORK / "scratch"))
                internal.append(time.perf_counter() - t0)
                p.advance(task)
            rep = json.loads((out / "report.json").read_text())
            c.projects[numerics] = out
            rows.append(dict(model=c.key, numerics=numerics, checkpoint=c.checkpoint(numerics).name,
                             cli_seconds=stats(walls), cli_cpu_seconds=stats(cpus), internal_seconds=stats(internal),
                             arena_bytes=rep["arena_bytes"], lower_bound_bytes=rep["lower_bound_bytes"],
                             weights_bytes=rep["weights_bytes"], kv_cache_bytes=rep["kv_cache_bytes"],
                             macs_per_token=rep["macs_per_token"], planner=rep.get("planner"),
                             notes=rep.get("notes", [])))
            console.log(f"slmc compile {c.key} -q {numerics}: median {stats(walls)['median']:.2f} s, "
                        f"arena {rep['arena_bytes']:,} B (lower bound {rep['lower_bound_bytes']:,})")
    shutil.rmtree(WORK / "scratch", ignore_errors=True)
    for c in cases:
        for numerics, proj in c.projects.items():
            c.binaries[numerics] = build(proj)
            c.build_flags = makefile_flags(proj)
            # the same model for the fast host target (compiled once: its compile time is the default's)
            nat = WORK / c.key / f"slmc_{numerics}_native"
            run_proc([*slmc_cli(), "compile", str(c.checkpoint(numerics)), "-q", numerics, "-t", NATIVE, "-o", str(nat)])
            c.native[numerics] = build(nat)
            c.native_flags = makefile_flags(nat)
    console.log(f"built the slmc programs with their generated Makefiles (targets host and {NATIVE})")
    return rows


def llama2c_binaries(notes: list[str]) -> tuple[list[l2c.Binary], dict | None]:
    src = l2c.source_dir()
    if src is None:
        why = "LLAMA2C_DIR is unset" if not os.environ.get("LLAMA2C_DIR") else \
            f"LLAMA2C_DIR={os.environ['LLAMA2C_DIR']} holds no run.c and runq.c"
        notes.append(f"llama2.c rows skipped: {why} (point it at a checkout of karpathy/llama2.c).")
        return [], None
    bins = l2c.build_all(src, WORK / "llama2c")
    console.log(f"built llama2.c's run.c and runq.c from {src} with {', '.join(b for b, _ in l2c.BUILDS)}")
    return bins, dict(dir=str(src), **{f"{f} sha256": hashlib.sha256((src / f).read_bytes()).hexdigest()[:16]
                                       for f in ("run.c", "runq.c")})


def ort_sessions(cases: list[Case], notes: list[str]) -> tuple[dict, dict | None]:
    try:
        import onnxruntime
        import torch

        import ort_decode
    except ImportError as e:
        notes.append(f"onnxruntime rows skipped: {e}.")
        return {}, None
    logging.getLogger("torch").setLevel(logging.ERROR)
    sessions = {}
    fp32 = [c for c in cases if "fp32" in c.numerics]
    with progress() as p:
        task = p.add_task("exporting to ONNX", total=len(fp32))
        for c in fp32:
            p.update(task, description=f"exporting {c.key} to ONNX")
            try:
                path = ort_decode.export(c.model, WORK / c.key / "decoder_concat.onnx", "concat")
                sessions[c.key] = (ort_decode.session(path), "concat")
            except Exception as e:  # an exporter failure costs the onnxruntime rows, not the whole benchmark
                notes.append(f"onnxruntime rows for {c.key} skipped: export failed ({type(e).__name__}: "
                             f"{str(e).splitlines()[0][:200] if str(e) else ''}).")
            p.advance(task)
    console.log("exported the torch decoders to ONNX (concatenated KV cache) and opened the sessions")
    return sessions, dict(onnxruntime=onnxruntime.__version__, torch=torch.__version__, layout="concat")


def _cmp_ids(a: list[int], b: list[int]) -> tuple[bool, str]:
    if a == b:
        return True, f"all {len(a)} ids equal"
    n = min(len(a), len(b))
    first = next((i for i in range(n) if a[i] != b[i]), n)
    return False, f"first difference at id {first} (lengths {len(a)} and {len(b)})"


def run_checks(cases: list[Case], bins: list[l2c.Binary], sessions: dict) -> list[dict]:
    """Is it the same computation? Greedy ids against each other and the reference; logits against onnxruntime.
    These runs double as warm-up (page cache, onnxruntime's arena)."""
    checks, slmc_ids = [], {}

    def add(c: Case, what: str, ok: bool, detail: str) -> None:
        checks.append(dict(model=c.key, check=what, ok=ok, detail=detail))

    for c in cases:
        for numerics in c.numerics:
            logits = WORK / c.key / f"slmc_{numerics}_logits.f32"
            extra = ["-l", str(logits)] if numerics == "fp32" else []
            ids, _, _ = parse_slmc(run_proc(slmc_cmd(c, numerics, extra)).stdout)
            slmc_ids[(c.key, numerics)] = ids
            nat_ids, _, _ = parse_slmc(run_proc(slmc_cmd(c, numerics, native=True)).stdout)
            add(c, f"slmc {numerics} ids, target {NATIVE} = target host (not bit-exact: greedy ids compared)",
                *_cmp_ids(nat_ids, ids))
            if numerics == "fp32" and c.reference_ids is not None:
                add(c, "slmc fp32 ids = llama2.c reference ids (greedy_ids_from_bos.txt)",
                    *_cmp_ids(ids, c.reference_ids[:STEPS]))
        for b in bins:
            if b.numerics not in c.numerics:
                continue
            r = run_proc([str(b.path), *l2c.args(c.checkpoint(b.numerics), c.tokenizer, STEPS)])
            ok, det = _cmp_ids(slmc_ids[(c.key, b.numerics)], l2c.parse(r.stdout, r.stderr, STEPS).ids)
            if not ok and b.numerics == "q8" and c.model.config.hidden_dim % c.group:
                det += (f"; expected: runq.c's matmul covers whole groups only, so with group {c.group} it skips "
                        f"{c.model.config.hidden_dim % c.group} of w2's {c.model.config.hidden_dim} inputs, "
                        "while slmc requantizes w2 with a group that divides them")
            add(c, f"slmc {b.numerics} ids = {l2c.PROGRAMS[b.numerics]}.c ({b.build}) ids", ok, det)
        if c.key in sessions:
            import ort_decode

            sess, layout = sessions[c.key]
            d = ort_decode.greedy(sess, c.model, layout, STEPS, keep_logits=True)
            add(c, "slmc fp32 ids = onnxruntime greedy ids", *_cmp_ids(slmc_ids[(c.key, "fp32")], d.ids))
            lg = np.fromfile(WORK / c.key / "slmc_fp32_logits.f32", np.float32).reshape(-1, c.model.config.vocab_size)
            n = min(len(lg), len(d.logits))
            diff, scale = float(np.abs(lg[:n] - d.logits[:n]).max()), float(np.abs(lg[:n]).max())
            add(c, "slmc fp32 logits vs onnxruntime logits, every position", diff <= 1e-3 * max(scale, 1.0),
                f"max abs difference {diff:.1e} over {n} positions (largest logit magnitude {scale:.1f})")
    bad = sum(not ch["ok"] for ch in checks)
    console.log(f"{len(checks) - bad} of {len(checks)} same-computation checks passed")
    return checks


@dataclass
class Timed:
    """One timed configuration: `once()` returns (positions, decode tok/s, process wall s or None, cpu s)."""

    model: str
    numerics: str
    program: str
    build: str
    command: str
    once: Callable[[], tuple]
    decode_clock: str
    samples: list[tuple] = field(default_factory=list)


def configurations(cases: list[Case], bins: list[l2c.Binary], sessions: dict) -> list[Timed]:
    import ort_decode

    out = []
    for c in cases:
        for numerics in c.numerics:
            def slmc_once(c=c, numerics=numerics):
                r = run_proc(slmc_cmd(c, numerics))
                _, pos, secs = parse_slmc(r.stdout)
                return pos, pos / secs, r.wall_s, r.cpu_s
            out.append(Timed(c.key, numerics, "slmc", f"{c.build_flags} (generated Makefile)",
                             f"./model -n {STEPS} -t 0", slmc_once, "the program's S lines: every position"))

            def native_once(c=c, numerics=numerics):
                r = run_proc(slmc_cmd(c, numerics, native=True))
                _, pos, secs = parse_slmc(r.stdout)
                return pos, pos / secs, r.wall_s, r.cpu_s
            out.append(Timed(c.key, numerics, f"slmc {NATIVE}", f"{c.native_flags} (generated Makefile, -t {NATIVE})",
                             f"./model -n {STEPS} -t 0", native_once, "the program's S lines: every position"))
            for b in bins:
                if b.numerics != numerics:
                    continue

                def l2c_once(c=c, b=b):
                    r = run_proc([str(b.path), *l2c.args(c.checkpoint(b.numerics), c.tokenizer, STEPS)])
                    o = l2c.parse(r.stdout, r.stderr, STEPS)
                    return o.positions, o.achieved_tok_s, r.wall_s, r.cpu_s
                prog = l2c.PROGRAMS[numerics]
                out.append(Timed(c.key, numerics, f"llama2.c {prog}.c", b.build,
                                 f"./{prog} {c.checkpoint(numerics).name} -z tokenizer.bin -t 0 -n {STEPS}", l2c_once,
                                 "its 'achieved tok/s': all positions but the first, millisecond clock"))
            if numerics == "fp32" and c.key in sessions:
                sess, layout = sessions[c.key]

                def ort_once(c=c, sess=sess, layout=layout):
                    t0 = time.process_time()
                    d = ort_decode.greedy(sess, c.model, layout, STEPS)
                    return d.positions, d.positions / d.seconds, None, time.process_time() - t0
                out.append(Timed(c.key, "fp32", "onnxruntime", "1 intra-op, 1 inter-op thread, sequential",
                                 f"run_with_ort_values, {layout} KV cache, greedy loop in Python", ort_once,
                                 "the Python decode loop: every position; export and session start-up excluded"))
    return out


def time_all(timed: list[Timed]) -> list[dict]:
    with progress() as p:
        task = p.add_task("timing", total=REPEATS * len(timed))
        for r in range(REPEATS):
            for t in timed:
                p.update(task, description=f"round {r + 1}/{REPEATS}: {t.model} {t.numerics} {t.program}")
                t.samples.append(t.once())
                p.advance(task)
    console.log(f"timed {len(timed)} configurations, {REPEATS} rounds")
    rows = []
    for t in timed:
        pos = [s[0] for s in t.samples]
        rows.append(dict(model=t.model, numerics=t.numerics, program=t.program, build=t.build, command=t.command,
                         positions=max(set(pos), key=pos.count), positions_runs=pos, decode_clock=t.decode_clock,
                         tok_s_decode=stats([s[1] for s in t.samples]),
                         tok_s_process=stats([s[0] / s[2] for s in t.samples if s[2]]),
                         tok_s_cpu=stats([s[0] / s[3] for s in t.samples if s[3] > 0])))
    return rows


def profile_all(cases: list[Case], bins: list[l2c.Binary], notes: list[str]) -> dict | None:
    if os.environ.get("BENCH_PROFILE", "1") == "0":
        notes.append("instruction counts skipped (BENCH_PROFILE=0).")
        return None
    if not callgrind.available():
        notes.append("instruction counts skipped: valgrind is not installed.")
        return None
    jobs = []
    for c in cases:
        n = c.profile_steps
        for numerics in c.numerics:
            cmd = slmc_cmd(c, numerics, steps=n)
            jobs.append((c, numerics, "slmc", f"{c.build_flags} (generated Makefile)", cmd, "slmc_decode",
                         parse_slmc(run_proc(cmd).stdout)[1]))
            for b in bins:
                # -march=native builds: valgrind decodes no AVX-512 (SIGILL here), and section 2 compares no
                # instructions for them
                if b.numerics == numerics and b.build != l2c.FASTEST:
                    cmd = [str(b.path), *l2c.args(c.checkpoint(numerics), c.tokenizer, n)]
                    r = run_proc(cmd)
                    jobs.append((c, numerics, f"llama2.c {l2c.PROGRAMS[numerics]}.c", b.build, cmd, "forward",
                                 l2c.parse(r.stdout, r.stderr, n).positions))
    rows = []
    with progress() as p:
        task = p.add_task("callgrind", total=len(jobs))
        for i, (c, numerics, prog, build_, cmd, entry, pos) in enumerate(jobs):
            p.update(task, description=f"callgrind {c.key} {numerics} {prog}")
            prof = callgrind.profile(cmd, entry, WORK / "callgrind" / f"{i}.out")
            rows.append(dict(model=c.key, numerics=numerics, program=prog, build=build_, positions=pos,
                             per_position=prof["instructions"] / pos,
                             functions=[dict(function=f["function"], share=f["share"],
                                             per_position=f["instructions"] / pos) for f in prof["functions"]]))
            p.advance(task)
    console.log("counted the forward pass's instructions with callgrind")
    return dict(entry_points={"slmc": "slmc_decode", "llama2.c": "forward"}, rows=rows)


def machine() -> dict:
    def out(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True).stdout
        except OSError:
            return ""
    cpu = next((ln.split(":", 1)[1].strip() for ln in out(["lscpu"]).splitlines() if ln.startswith("Model name")),
               platform.processor())
    gcc = out(["gcc", "--version"]).splitlines()
    import onnx

    flags: set[str] = set()
    try:
        flags = set(next(ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("flags")).split())
    except (OSError, StopIteration):
        pass
    simd = [f for f in ("sse4_1", "avx2", "fma", "avx512f", "avx512_vnni") if f in flags]
    return dict(cpu=cpu, cores=os.cpu_count(), simd=simd, gcc=gcc[0] if gcc else None, kernel=platform.release(),
                python=platform.python_version(), numpy=np.__version__, onnx=onnx.__version__)


def commit() -> str | None:
    """The checked-out commit (read-only git calls), marked when src/ has changes on top of it."""
    r = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if r.returncode != 0:
        return None
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"], capture_output=True, text=True)
    return r.stdout.strip() + (" (src/ modified)" if dirty.stdout.strip() else "")


def main() -> int:
    t_start = time.perf_counter()
    notes: list[str] = []
    load_start = loadavg()
    WORK.mkdir(parents=True, exist_ok=True)
    console.log(f"benchmarks: {REPEATS} runs per configuration, {STEPS} positions, work folder "
                f"{WORK.relative_to(ROOT)}")
    cases = prepare(WORK, SHARED / "models" / "stories260K", notes)
    console.log("wrote the models (llama2.c v0 and v2 files) and dummy tokenizers")
    compile_rows = compile_all(cases)
    bins, l2c_info = llama2c_binaries(notes)
    sessions, ort_info = ort_sessions(cases, notes)
    checks = run_checks(cases, bins, sessions)
    decode_rows = time_all(configurations(cases, bins, sessions))
    profile = profile_all(cases, bins, notes)
    try:
        mcu_res = mcu.measure(slmc_cli(), WORK / "mcu", SHARED / "models" / "stories260K", notes, console.log)
    except Exception as e:  # a cross build or emulator failure costs the MCU section, not the whole benchmark
        mcu_res = None
        notes.append(f"MCU section failed: {type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}")
    systems_res = cluster_res = None
    try:
        levels_res = levels.measure(console.log)
    except Exception as e:
        levels_res = None
        notes.append(f"levels section failed: {type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}")
    try:
        sharing_res = sharing.measure(console.log)
    except Exception as e:
        sharing_res = None
        notes.append(f"sharing section failed: {type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}")
    if mcu.enabled():  # the cluster's per-core counts run under QEMU
        try:
            cluster_res = cluster.measure(log=console.log)
        except Exception as e:
            notes.append(f"cluster section failed: {type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}")
    if mcu.enabled():  # the DVFS study profiles both ISAs on the emulators
        try:
            systems_res = systems.measure(SHARED / "models" / "stories260K" / "stories260K.bin", console.log)
        except Exception as e:
            notes.append(f"systems section failed: {type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}")
    try:
        codesize_res = codesize.measure(console.log) if mcu.enabled() else None
    except Exception as e:
        codesize_res = None
        notes.append(f"codesize section failed: {type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}")
    results = dict(
        meta=machine() | dict(date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), commit=commit(),
                              load_average_start=load_start, load_average_end=loadavg(),
                              bench_seconds=round(time.perf_counter() - t_start, 1), llama2c=l2c_info, ort=ort_info),
        settings=dict(positions=STEPS, repeats=REPEATS, temperature=0, start="BOS (id 1) at position 0", threads=1,
                      interleaved_rounds=True),
        models=[dict(key=c.key, title=c.title, source=c.source, config=_config(c), numerics=list(c.numerics),
                     v0=c.v0.name, v2=c.v2.name, v2_group=c.group) for c in cases],
        notes=notes, checks=checks, decode=decode_rows, compile=compile_rows, profile=profile, mcu=mcu_res,
        systems=systems_res, levels=levels_res, cluster=cluster_res,
        sharing=sharing_res, codesize=codesize_res)
    # sections this run did not measure (BENCH_MCU=0, or measured by their own scripts: batching, sweep, moe, ...)
    # keep their stored results instead of being dropped
    stored = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for key, val in stored.items():
        if results.get(key) is None:
            results[key] = val
    try:  # cost models only (seconds); its roofline reads section 7's rows, fresh or stored
        import fidelity
        results["fidelity"] = fidelity.measure(results)
    except Exception as e:
        notes.append(f"fidelity section failed: {type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}")
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    doc = render.write(results)
    console.log(f"wrote {RESULTS.relative_to(ROOT)} and {doc.relative_to(ROOT)} in {results['meta']['bench_seconds']:.0f} s")
    return 0


def _config(c: Case) -> dict:
    m = c.model.config
    return dict(dim=m.dim, hidden_dim=m.hidden_dim, n_layers=m.n_layers, n_heads=m.n_heads, n_kv_heads=m.n_kv_heads,
                vocab_size=m.vocab_size, seq_len=m.seq_len, params=c.model.n_params())


if __name__ == "__main__":
    sys.exit(main())
