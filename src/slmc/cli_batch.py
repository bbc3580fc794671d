"""`slmc run DIR` for a batched build (slmc compile --batch B): many prompts, one program run.

--prompts FILE (one prompt per line, encoded with BOS like --prompt) or --prompt-ids-file FILE (one
comma-separated id list per line, fed as given); --prompt / --prompt-ids give one. Each sequence's text (or
ids with --ids) is printed in file order; --json gives every sequence with its ids, latency and place in the
schedule, the aggregate tokens/s and, on an emulated target, exact instructions and weight bytes per
generated token (toolchain/batch_count.py). A prompt longer than the context is one line on stderr for that
sequence while the others finish (exit code 2 at the end).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Optional

from slmc.cli_safety import check_sampling, err, input_path, read_json
from slmc.errors import SlmcError

MAX_REQUESTS = 100_000
MAX_LINE = 1 << 20


def batched(project: Path) -> bool:
    """A folder whose report.json says --batch (anything unreadable is left to the single-sequence path)."""
    try:
        rep = json.loads((project / "report.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(rep, dict) and isinstance(rep.get("batch"), dict)


def _lines(path: Path, what: str) -> list[str]:
    input_path(path, what)
    if not path.is_file():
        raise SlmcError(f"{what} {path} is not a file", "give a text file, one request per line")
    if path.stat().st_size > MAX_REQUESTS * 64:
        raise SlmcError(f"{what} {path} is larger than {MAX_REQUESTS * 64:,} bytes", "split it into several runs")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SlmcError(f"{what} {path} is not UTF-8 text", "save it as UTF-8") from None
    lines = text.splitlines()
    if not lines:
        raise SlmcError(f"{what} {path} holds no request", "one request per line")
    return lines


def _ids_line(line: str, n: int, vocab: int) -> list[int]:
    try:
        ids = [int(x) for x in line.replace(" ", "").split(",") if x != ""]
    except ValueError:
        raise SlmcError(f"--prompt-ids-file line {n} is not a comma-separated list of integers",
                        "e.g. 1,450,29 (one request per line)") from None
    if not ids or any(i < 0 or i >= vocab for i in ids):
        raise SlmcError(f"--prompt-ids-file line {n}: ids must be non-empty and within 0..{vocab - 1}", "check the file")
    return ids


def prompts_of(rep: dict, project: Path, prompt: Optional[str], prompt_ids: Optional[str], prompts: Optional[Path],
               prompt_ids_file: Optional[Path]):
    """Each request's prompt ids, and the tokenizer (None where the build has none)."""
    given = [w for w, v in (("--prompt", prompt), ("--prompt-ids", prompt_ids), ("--prompts", prompts),
                            ("--prompt-ids-file", prompt_ids_file)) if v is not None]
    if len(given) > 1:
        raise SlmcError(f"{' and '.join(given)} given together", "use one of them")
    vocab = rep["config"]["vocab_size"]
    tok = None
    if rep.get("tokenizer"):
        from slmc.frontend.tokenizer import load_tokenizer

        if Path(str(rep["tokenizer"])).name != rep["tokenizer"]:
            raise SlmcError(f"{project}/report.json names a tokenizer outside the folder", "compile the model again")
        tok = load_tokenizer(project / rep["tokenizer"])
    if (prompts is not None or prompt is not None) and tok is None:
        raise SlmcError(f"{given[0]} needs a tokenizer and this build has none",
                        "compile with --tokenizer FILE, or pass ids (--prompt-ids-file)")
    if prompt_ids_file is not None:
        return [_ids_line(s, i + 1, vocab) for i, s in enumerate(_lines(prompt_ids_file, "--prompt-ids-file"))], tok
    if prompts is not None:
        return [tok.encode(s, bos=True) for s in _lines(prompts, "--prompts")], tok
    if prompt_ids is not None:
        return [_ids_line(prompt_ids, 1, vocab)], tok
    if prompt is not None:
        return [tok.encode(prompt, bos=True)], tok
    return [[1]], tok  # from BOS, as a single run


def execute(project: Path, rep: dict, reqs: list[list[int]], steps: int, temperature: float, top_p: float, seed: int,
            count: bool):
    """Build the batched project and run it on the requests: the parsed run (toolchain/batch_run.py) and,
    with `count` on an emulated target, its exact counts (toolchain/batch_count.py)."""
    from slmc.targets import get_target
    from slmc.toolchain.batch_run import parse, write_requests
    from slmc.toolchain.build import build
    from slmc.toolchain.run import run_program

    target = get_target(rep["target"])
    binary = build(project)
    tmp = Path(tempfile.mkdtemp(prefix="slmc-batch-"))
    try:
        requests = tmp / "requests.txt"
        write_requests(requests, reqs)
        args = ["-n", str(steps), "-t", repr(float(temperature)), "-p", repr(float(top_p)), "-s", str(seed),
                "-f", str(requests.resolve())]
        counts: dict = {}
        if target.emulated and count:
            from slmc.toolchain.batch_count import count_batch

            res, counts = count_batch(project, target, rep, args)
        else:
            res = run_program(target, binary, args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return parse(res, reqs), counts


def run_batch(project: Path, steps: int, temperature: float, top_p: float, seed: int, prompt: Optional[str],
              prompt_ids: Optional[str], prompts: Optional[Path], prompt_ids_file: Optional[Path], ids: bool,
              as_json: bool) -> None:
    check_sampling(steps, temperature, top_p, seed)
    rep = read_json(project / "report.json", project)
    if not isinstance(rep.get("batch"), dict) or "config" not in rep:
        raise SlmcError(f"{project} was not compiled with --batch, so it runs one sequence at a time",
                        "compile with --batch B to run --prompts or --prompt-ids-file")
    reqs, tok = prompts_of(rep, project, prompt, prompt_ids, prompts, prompt_ids_file)
    if len(reqs) > MAX_REQUESTS:
        raise SlmcError(f"{len(reqs):,} requests; one run takes up to {MAX_REQUESTS:,}", "split the file")
    steps = min(steps, rep["config"]["seq_len"])
    run, counts = execute(project, rep, reqs, steps, temperature, top_p, seed, count=as_json)
    seconds = run.stats.get("seconds")
    failed = [(k, s.error) for k, s in enumerate(run.sequences) if s.error]
    if as_json:
        print(json.dumps(dict(
            sequences=[dict(prompt=s.prompt, ids=s.ids, text=tok.decode(s.prompt + s.ids) if tok and not s.error else None,
                            positions=s.positions, slot=s.slot, admitted_step=s.admitted_step, done_step=s.done_step,
                            latency_s=s.seconds, error=s.error) for s in run.sequences],
            tokens_per_s=run.rows / seconds if seconds else None,
            generated_tokens_per_s=run.generated / seconds if seconds else None,
            target=rep["target"], batch=rep["batch"]["slots"], steps=run.steps, rows=run.rows, generated=run.generated,
            logit_rows=int(run.stats.get("logit_rows", run.rows)),  # rows that ran the classifier (slmc_step_rows)
            seconds=seconds, schedule=[list(r) for r in run.schedule], **counts)))
    else:
        for s in run.sequences:
            if s.error:
                continue
            print(" ".join(map(str, s.ids)) if ids or tok is None else tok.decode(s.prompt + s.ids), flush=True)
        if seconds and not ids:
            err.print(f"[dim]{len(run.sequences)} sequences, {run.generated:,} tokens generated in {run.steps:,} steps: "
                      f"{run.rows / seconds:,.0f} tokens/s on {rep['target']}[/]", highlight=False)
    for k, why in failed:
        sys.stderr.write(f"error: sequence {k}: {why}\n")
    if failed:
        sys.exit(2)
