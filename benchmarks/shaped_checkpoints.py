"""The checkpoints a user tries first, at their real shapes (issue 17): TinyStories-1M/3M (GPT-Neo), Pythia-14M
(GPT-NeoX) and SmolLM2-135M (Llama), built by transformers from their published configs with seeded random
weights (the HF hub is not reachable from this machine, so the trained weights cannot be fetched; the shapes,
vocabularies, contexts, windows and rotary settings are the real ones).

For each: an HF folder; `slmc compile -q fp32 -t host --context 256` and `slmc run` over a 4-token prompt and 8
greedy steps against transformers' forward (max |logit error|); then `slmc compile -q q8 -t rp2350-arm`: where it
fits, the emulated run's ids against the host q8 build's; where it does not, the fit step's one-line reason.

    python benchmarks/shaped_checkpoints.py     # prints a Markdown table (README "Real checkpoint shapes")
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

SLMC = str(Path(sys.executable).with_name("slmc"))
PROMPT = [1, 17, 42, 99]
DECODE = 8
SHAPES = {
    "TinyStories-1M (GPT-Neo)": ("GPTNeoConfig", "GPTNeoForCausalLM", dict(
        hidden_size=64, num_layers=8, num_heads=16, vocab_size=50257, max_position_embeddings=2048,
        attention_types=[[["global", "local"], 4]], window_size=256, intermediate_size=None,
        activation_function="gelu_new", bos_token_id=50256, eos_token_id=50256)),
    "TinyStories-3M (GPT-Neo)": ("GPTNeoConfig", "GPTNeoForCausalLM", dict(
        hidden_size=128, num_layers=8, num_heads=16, vocab_size=50257, max_position_embeddings=2048,
        attention_types=[[["global", "local"], 4]], window_size=256, intermediate_size=None,
        activation_function="gelu_new", bos_token_id=50256, eos_token_id=50256)),
    "Pythia-14M (GPT-NeoX)": ("GPTNeoXConfig", "GPTNeoXForCausalLM", dict(
        hidden_size=128, num_hidden_layers=6, num_attention_heads=4, intermediate_size=512, vocab_size=50304,
        rotary_pct=0.25, rotary_emb_base=10000, max_position_embeddings=2048, use_parallel_residual=True,
        layer_norm_eps=1e-5, tie_word_embeddings=False, bos_token_id=0, eos_token_id=0)),
    "SmolLM2-135M (Llama)": ("LlamaConfig", "LlamaForCausalLM", dict(
        hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
        num_key_value_heads=3, vocab_size=49152, max_position_embeddings=8192, rope_theta=100000.0,
        rms_norm_eps=1e-5, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2)),
}


def _slmc(*args) -> subprocess.CompletedProcess:
    return subprocess.run([SLMC, *map(str, args)], capture_output=True, text=True)


def measure(name: str, spec: tuple, tmp: Path) -> dict:
    import torch
    import transformers

    cls, model_cls, fields = spec
    cfg = getattr(transformers, cls)(**fields)
    cfg._attn_implementation = "eager"
    torch.manual_seed(0)
    model = getattr(transformers, model_cls)(cfg).eval()
    folder = tmp / "model"
    model.save_pretrained(folder, safe_serialization=True)
    params = sum(p.numel() for p in model.parameters())
    row: dict = dict(name=name, params=params)
    host, dump = tmp / "host", tmp / "logits.f32"
    r = _slmc("compile", folder, "-q", "fp32", "-t", "host", "--context", 256, "-o", host)
    assert r.returncode == 0, r.stderr
    r = _slmc("run", host, "--steps", len(PROMPT) + DECODE, "--prompt-ids", ",".join(map(str, PROMPT)), "--ids",
              "--dump-logits", dump)
    assert r.returncode == 0, r.stderr
    got = np.fromfile(dump, np.float32).reshape(len(PROMPT) + DECODE, -1)
    ids = PROMPT + [int(t) for t in got[len(PROMPT) - 1:-1].argmax(axis=1)]
    with torch.no_grad():
        want = model(torch.tensor([ids])).logits[0].float().numpy()
    row["host_fp32_error"] = float(np.abs(got - want).max())
    mcu = tmp / "mcu"
    r = _slmc("compile", folder, "-q", "q8", "-t", "rp2350-arm", "-o", mcu)
    if r.returncode != 0:
        row["rp2350"] = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit {r.returncode}"
        return row
    rep = json.loads((mcu / "report.json").read_text())
    hq = tmp / "host_q8"
    assert _slmc("compile", folder, "-q", "q8", "-t", "host", "--context", rep["config"]["seq_len"],
                 "--kv-cache", rep.get("kv_cache", "fp32"), "-o", hq).returncode == 0
    steps = ["--steps", len(PROMPT) + DECODE, "--prompt-ids", ",".join(map(str, PROMPT)), "--json"]
    on_mcu = json.loads(_slmc("run", mcu, *steps).stdout)
    on_host = json.loads(_slmc("run", hq, *steps).stdout)
    row["rp2350"] = (f"fits: context {rep['config']['seq_len']}, {rep['kv_cache']} KV, flash "
                     f"{rep['memory']['flash']['used']:,} of {rep['memory']['flash']['capacity']:,} B; "
                     f"{on_mcu['instructions_per_token']:,.0f} instructions/token, ESTIMATED "
                     f"{on_mcu.get('estimated_tokens_per_s') or 0:.1f} tok/s; ids "
                     + ("= host q8" if on_mcu["ids"] == on_host["ids"] else "DIFFER from host q8"))
    return row


def main() -> None:
    rows = []
    for name, spec in SHAPES.items():
        with tempfile.TemporaryDirectory(prefix="slmc-shapes-") as tmp:
            rows.append(measure(name, spec, Path(tmp)))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print("| checkpoint shape | parameters | host fp32: max logit error vs transformers | rp2350-arm q8 |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['params'] / 1e6:.1f} M | {r['host_fp32_error']:.1e} | {r['rp2350']} |")


if __name__ == "__main__":
    main()
