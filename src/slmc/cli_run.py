"""`slmc run`'s work for one sequence (a language model: build, run on its target, print or count) and for a
compiled ONNX graph (inputs from an .npz, outputs to one). The command itself is in cli.py."""

from __future__ import annotations

import json
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Optional

from rich.console import Console

from slmc.cli_safety import check_sampling, err, read_json, read_npz
from slmc.errors import SlmcError
from slmc.output import check_file, output_file


def _parse_ids(s: str) -> list[int]:
    try:
        return [int(x) for x in s.replace(" ", "").split(",") if x != ""]
    except ValueError:
        raise SlmcError(f"--prompt-ids '{s}' is not a comma-separated list of integers", "e.g. --prompt-ids 1,450,29") from None


def _run(project: Path, steps: int, temperature: float, top_p: float, seed: int, prompt: Optional[str],
         prompt_ids: Optional[str], ids: bool, as_json: bool, dump_logits: Optional[Path], profile: bool = False,
         on: Optional[str] = None) -> None:
    from slmc.targets import get_target
    from slmc.toolchain.build import build
    from slmc.toolchain.run import llm_args, run_program

    check_sampling(steps, temperature, top_p, seed)
    if on is not None and on != "host":
        raise SlmcError(f"--on {on} is not supported", "use --on host, without --profile")
    if dump_logits is not None:
        check_file(dump_logits, "--dump-logits")
    chips = (project / "manifest.json").is_file()  # a partitioned build (slmc compile --chips N)
    rep = read_json(project / ("manifest.json" if chips else "report.json"), project)
    if "config" not in rep:
        raise SlmcError(f"{project} holds a graph, not a language model", "use `slmc run DIR --inputs FILE.npz`")
    if "chip" in rep:
        raise SlmcError(f"{project} is one chip of a partitioned build", f"run its parent folder {project.parent}")
    vocab, context = rep["config"]["vocab_size"], rep["config"]["seq_len"]
    tok = None
    if rep.get("tokenizer"):
        from slmc.frontend.tokenizer import load_tokenizer

        if Path(str(rep["tokenizer"])).name != rep["tokenizer"]:  # slmc writes a bare file name there
            raise SlmcError(f"{project}/report.json names a tokenizer outside the folder", "compile the model again")
        tok = load_tokenizer(project / rep["tokenizer"])
    if prompt is not None and prompt_ids is not None:
        raise SlmcError("--prompt and --prompt-ids both given", "use one of them")
    pids: list[int] | None = None
    if prompt_ids is not None:
        pids = _parse_ids(prompt_ids)
    elif prompt is not None:
        if tok is None:
            raise SlmcError("--prompt needs a tokenizer and this build has none",
                            "compile with --tokenizer FILE, or pass --prompt-ids")
        pids = tok.encode(prompt, bos=True)
    if pids is not None and (not pids or any(i < 0 or i >= vocab for i in pids)):
        raise SlmcError(f"prompt ids must be non-empty and within 0..{vocab - 1}", "check --prompt-ids")
    what = "--prompt-ids" if prompt_ids is not None else "--prompt"
    if pids is not None and len(pids) > context:  # main_llm.c would cut the prompt at the context
        raise SlmcError(f"{what} has {len(pids)} tokens; this build's KV cache holds {context} positions",
                        "give a shorter prompt, or compile with a longer --context")
    steps = min(steps, context)  # --steps counts positions, prompt included; the context bounds them
    if pids is not None and len(pids) > steps:  # main_llm.c would cut the prompt at --steps
        raise SlmcError(f"{what} has {len(pids)} tokens but --steps is {steps} (positions processed, prompt included)",
                        f"use --steps {len(pids)} or more")
    target = get_target(rep["target"])
    if "cluster" in rep:  # a multi-core build: QEMU with one hart per core
        from slmc.toolchain.harts import run_target

        target = run_target(target, rep, counting=as_json or profile)
    if profile and (chips or not target.emulated):
        raise SlmcError(f"--profile counts instructions on an emulated target; {target.name} is not one",
                        "compile with -t cortex-m33, rv32imac, rp2350-arm or rp2350-riscv")
    if on is not None and (chips or profile):
        raise SlmcError(f"--on {on} is not supported{' with --profile' if profile else ' for a partitioned build'}",
                        "use --on host, without --profile")
    binary = None if chips else build(project)
    if on is not None:  # the same C on this machine (toolchain/harts.py): threads for a multi-core build's cores
        from slmc.toolchain.harts import host_build

        binary, target = host_build(project), get_target("host")
    from slmc.frontend.tokenizer import TextStream

    stream = TextStream(tok, pids[-1] if pids else 1) if tok is not None and not ids and not as_json else None
    if stream and pids:
        sys.stdout.write(tok.decode(pids))

    def on_token(t: int) -> None:
        if stream:
            sys.stdout.write(stream.push(t))
            sys.stdout.flush()

    counts: dict = {}
    # the program writes the logits beside --dump-logits; renamed over it once the run succeeded (output.py)
    with output_file(dump_logits, "--dump-logits") if dump_logits is not None else nullcontext(None) as logits:
        args = llm_args(steps, temperature, top_p, seed, pids, logits)
        if target.emulated and (as_json or profile):  # exact counts come with an emulated run's JSON
            from slmc.toolchain.profile import count_run

            res, counts = count_run(project, target, rep, args, on_token)
        elif chips:
            from slmc.toolchain.multichip import run_chips

            multi = run_chips(project, rep, args, on_token)
            res, counts = multi.run, multi.summary(rep)
        else:
            res = run_program(target, binary, args, on_token)
    tps = res.stats.get("positions", 0) / res.stats["seconds"] if res.stats.get("seconds") else None
    if as_json:
        from slmc.sim.experts import expert_stats

        out = dict(ids=res.ids, tokens_per_s=tps, target=rep["target"], positions=int(res.stats.get("positions", 0)),
                   text=tok.decode(res.ids) if tok else None,
                   **({"opp_transitions": [list(o) for o in res.opps]} if "dvfs" in rep else {}),
                   **{k: v for k, v in counts.items() if k not in ("target", "tokens_per_s")})
        print(json.dumps(out | expert_stats(res.stats, rep, target, counts)))
    elif ids or tok is None:
        print(" ".join(map(str, res.ids)))
    else:
        print(flush=True)
        if tps:
            err.print(f"[dim]{tps:,.0f} tokens/s on {rep['target']}[/]")
    if profile and not as_json:
        _print_profile(counts)
        if "cluster" in counts:  # a multi-core build: per-core counts (toolchain/cluster_counts.py)
            from slmc.toolchain.cluster_counts import cluster_lines

            print("\n".join(cluster_lines(counts["cluster"], rep.get("engines"))))
    if chips and not as_json:
        err.print("[dim]bytes per token sent over each link: " + ", ".join(
            f"{x['src']}->{x['dst']} {x['bytes_per_token']:,.0f}" for x in counts["links"]) + "[/]", highlight=False)


def _print_profile(p: dict) -> None:
    from rich.table import Table

    from slmc.toolchain.profile import LINEAR_OPS

    t = Table("operator", "op", "kernel", "MACs", "instructions/token", "share", "instr/MAC", "est. cycles/token",
              title=f"{p['target']}: exact instruction counts ({p['counter']}), mean over {p['decode_steps']} decode steps")
    for o in p["ops"]:
        t.add_row(o["name"], o["op"], o["kernel"], f"{o['macs']:,}" if o["macs"] else "", f"{o['instructions']:,.0f}",
                  f"{o['share']:.1%}", f"{o['instructions'] / o['macs']:.2f}" if o["op"] in LINEAR_OPS else "",
                  f"{o['estimated_cycles']:,.0f}" if o["estimated_cycles"] is not None else "-")
    t.add_row("(model.c before the first kernel)", "", "", "", f"{p['prologue_instructions_per_token']:,.0f}", "", "", "")
    t.add_row("[bold]per token[/]", "", "", "", f"[bold]{p['instructions_per_token']:,.0f}[/]", "100%", "",
              f"{p['estimated_cycles_per_token']:,.0f}" if p["estimated_cycles_per_token"] else "-")
    out = Console(width=None if sys.stdout.isatty() else 160)
    out.print(t)
    if p["linear_instructions_per_mac"]:
        out.print(f"matrix products: {p['linear_instructions_per_mac']:.2f} instructions per MAC; sampling and "
                  f"printing: {p['main_loop_instructions_per_token']:,.0f} instructions per token (not included above)")
    if p.get("estimated_tokens_per_s"):
        out.print(f"[bold]estimated[/] {p['estimated_tokens_per_s']:,.1f} tokens/s — {p['estimate_basis']}")
    elif p.get("estimate_basis"):
        out.print(f"[bold]estimated[/] cycles only ({p['estimate_basis']}; this target has no clock)")


def _run_graph(project: Path, inputs: Optional[Path], save: Optional[Path], as_json: bool, profile: bool = False) -> None:
    """A compiled ONNX graph: inputs from an .npz (input_i bound to the i-th graph input), outputs to one; on an
    emulated target --profile (and --json) count one inference's instructions (toolchain/graph_count.py)."""
    import numpy as np

    from slmc.driver import run_graph
    from slmc.targets import get_target

    rep = read_json(project / "report.json", project)
    if "graph_io" not in rep:
        raise SlmcError(f"{project} holds a language model, not a graph", "run it with --prompt or --prompt-ids")
    if inputs is None:
        raise SlmcError(f"{'--profile' if profile else '--save'} needs --inputs",
                        "e.g. slmc run DIR --inputs in.npz --save out.npz")
    emulated = get_target(rep["target"]).emulated
    if profile and not emulated:
        raise SlmcError(f"--profile counts instructions on an emulated target; {rep['target']} is not one",
                        "compile with -t cortex-m33, rv32imac, rp2350-arm or rp2350-riscv")
    if save is not None:
        check_file(save, "--save")
    feeds = read_npz(inputs, rep["graph_io"])
    with output_file(save, "--save") if save is not None else nullcontext(None) as tmp:
        outs, seconds = run_graph(project, feeds)
        if tmp is not None:
            with open(tmp, "wb") as f:  # a file object: numpy adds no ".npz" to the name the user gave
                np.savez(f, **outs)
    counts = None
    if emulated and (profile or as_json):  # exact counts come with an emulated run's JSON, as for a language model
        from slmc.toolchain.graph_count import count_graph

        counts = count_graph(project, feeds)
    if as_json:
        extra = {} if counts is None else dict(
            target=counts.target, counter=counts.counter, instructions=counts.instructions, macs=counts.macs,
            instructions_per_mac=counts.instructions_per_mac, estimated_cycles=counts.estimated_cycles,
            ops=counts.profile.get("ops", []),
            kernels=[dict(kernel=k.kernel, calls=k.calls, instructions=k.instructions, macs=k.macs) for k in counts.kernels])
        print(json.dumps(dict(outputs={k: dict(dtype=str(v.dtype), shape=list(v.shape)) for k, v in outs.items()},
                              seconds=seconds, saved=str(save) if save else None, **extra)))
    else:
        for k, v in outs.items():
            print(f"{k}: {v.dtype}{list(v.shape)}" + (f" -> {save}" if save else f" {np.array2string(v.reshape(-1)[:8])}"))
    if profile and not as_json and counts is not None:
        _print_graph_profile(counts)


def _print_graph_profile(c) -> None:  # type: ignore[no-untyped-def]
    """Per operator, as _print_profile does for a language model's token: one inference's exact instructions."""
    from rich.table import Table

    p = c.profile
    t = Table("operator", "op", "kernel", "MACs", "instructions", "share", "instr/MAC", "est. cycles",
              title=f"{c.target}: exact instruction counts ({c.counter}), one inference")
    for o in p.get("ops", []):
        t.add_row(o["name"], o["op"], o["kernel"], f"{o['macs']:,}" if o["macs"] else "", f"{o['instructions']:,.0f}",
                  f"{o['share']:.1%}", f"{o['instructions'] / o['macs']:.2f}" if o["macs"] else "",
                  f"{o['estimated_cycles']:,.0f}" if o.get("estimated_cycles") is not None else "-")
    if "prologue_instructions_per_token" in p:
        t.add_row("(model.c before the first kernel)", "", "", "", f"{p['prologue_instructions_per_token']:,.0f}", "", "", "")
    t.add_row("[bold]per inference[/]", "", "", f"{c.macs:,}", f"[bold]{c.instructions:,}[/]", "100%",
              f"{c.instructions_per_mac:.2f}" if c.instructions_per_mac else "",
              f"{c.estimated_cycles:,.0f}" if c.estimated_cycles else "-")
    Console(width=None if sys.stdout.isatty() else 160).print(t)
