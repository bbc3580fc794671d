"""Train slmc's bundled mixture-of-experts model and its expert predictor: `make train-moe`.

Why this exists: the expert cache (issue 18) needs a real trained MoE whose experts do not fit the
RP2350's 520 KB SRAM but whose whole q8 model fits its 4 MB flash, and a predictor trained on that
model's own routing. This script is the recipe, seeded end to end: the story corpus and tokenizer of
models/default (recipe.py), a Mixtral (transformers' MixtralForCausalLM, so models/moe is exactly the
folder a HuggingFace user has: config.json, model.safetensors) with 8 experts of which each token uses
2, trained on two CPU threads, then the SiDA-style predictor (predictor.py), README.md and meta.json.

    PYTHONPATH=src python -m slmc.train.train_moe --out models/moe
    PYTHONPATH=src python -m slmc.train.train_moe --out models/moe --predictor-only   # model kept
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from slmc.train import evaluate, predictor
from slmc.train.recipe import (PROMPT, TRAIN_SEED, VAL_SEED, prepare_corpus, samples, story_loss,
                               train)
from slmc.train.stories import generate_stories

Q8_GROUP = 64          # slmc's q8 group (halved until it divides a matrix's input length)
RP2350_SRAM = 520 * 1024
RP2350_FLASH = 4 << 20


@dataclass(frozen=True)
class MoeArgs:
    dim: int = 96
    expert_hidden_dim: int = 128
    n_layers: int = 4
    n_heads: int = 6
    n_kv_heads: int = 2
    n_experts: int = 8
    top_k: int = 2
    vocab_size: int = 512
    seq_len: int = 256
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    router_aux_loss_coef: float = 0.01

    def hf_config(self):  # -> transformers.MixtralConfig
        from transformers import MixtralConfig

        return MixtralConfig(
            vocab_size=self.vocab_size, hidden_size=self.dim, intermediate_size=self.expert_hidden_dim,
            num_hidden_layers=self.n_layers, num_attention_heads=self.n_heads,
            num_key_value_heads=self.n_kv_heads, max_position_embeddings=self.seq_len,
            rms_norm_eps=self.norm_eps, rope_theta=self.rope_theta, sliding_window=None,
            num_local_experts=self.n_experts, num_experts_per_tok=self.top_k,
            router_aux_loss_coef=self.router_aux_loss_coef, tie_word_embeddings=True,
            bos_token_id=1, eos_token_id=2, pad_token_id=None)


def q8_bytes(rows: int, cols: int) -> int:
    """A matrix in slmc's q8: one int8 per weight and one fp32 scale per group of its input length."""
    g = Q8_GROUP
    while cols % g:
        g //= 2
    return rows * cols + 4 * rows * (cols // g)


def sizes(a: MoeArgs, n_params: int) -> dict[str, int]:
    """Bytes that decide where the model fits: experts (all of them, one) and the whole model, in q8."""
    head = a.dim // a.n_heads
    one = 2 * q8_bytes(a.expert_hidden_dim, a.dim) + q8_bytes(a.dim, a.expert_hidden_dim)
    attn = 2 * q8_bytes(a.dim, a.dim) + 2 * q8_bytes(a.n_kv_heads * head, a.dim)
    whole = (a.n_layers * (a.n_experts * one + attn + q8_bytes(a.n_experts, a.dim) + 2 * 4 * a.dim)
             + q8_bytes(a.vocab_size, a.dim) + 4 * a.dim)
    return {"n_params": n_params, "expert_q8_bytes": one, "experts_q8_bytes": a.n_layers * a.n_experts * one,
            "model_q8_bytes_estimate": whole, "rp2350_sram_bytes": RP2350_SRAM, "rp2350_flash_bytes": RP2350_FLASH}


def moe_loss(coef: float):
    """Next-token cross-entropy plus Mixtral's load-balancing loss (Switch Transformer's), which keeps all
    experts in use: without it a few experts take every token and the cache question disappears."""
    def fn(model: nn.Module, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = model(windows[:, :-1], output_router_logits=True)
        logits = out.logits
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), windows[:, 1:].reshape(-1))
        return ce + coef * out.aux_loss, ce
    return fn


def new_model(a: MoeArgs) -> nn.Module:
    from transformers import MixtralForCausalLM

    cfg = a.hf_config()
    cfg._attn_implementation = "sdpa"
    # the grouped product over experts: 5x less CPU than the per-expert loop, the same sums
    cfg._experts_implementation = "grouped_mm"
    return MixtralForCausalLM(cfg)


def load_trained(folder: Path) -> nn.Module:
    from transformers import MixtralForCausalLM

    model = MixtralForCausalLM.from_pretrained(folder, attn_implementation="sdpa")
    model.config._experts_implementation = "grouped_mm"
    return model.eval()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("models/moe"))
    ap.add_argument("--stories", type=int, default=30000)
    ap.add_argument("--val-stories", type=int, default=500)
    ap.add_argument("--numpy-val-stories", type=int, default=50,
                    help="held-out stories on which slmc's numpy reference recomputes the loss from the files")
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=4e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--predictor-only", action="store_true", help="keep the trained model; redo the predictor")
    args = ap.parse_args(argv)
    t0 = time.time()
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.predictor_only:
        train_model(args, t0)
    meta = json.loads((args.out / "meta.json").read_text(encoding="utf-8"))
    t_pred = time.time()
    cpu_pred = time.process_time()
    report = predictor.build(args.out, threads=args.threads)
    meta["predictor"] = {**report, "wall_s": round(time.time() - t_pred, 1),
                         "cpu_s": round(time.process_time() - cpu_pred, 1)}
    (args.out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    from slmc.train.moe_readme import write_readme

    write_readme(args.out, meta)


def train_model(args: argparse.Namespace, t0: float) -> None:
    a = MoeArgs()
    corpus = prepare_corpus(args.out, args.stories, args.val_stories, a.vocab_size)
    sp, stories, val, stream = corpus.sp, corpus.stories, corpus.val, corpus.stream
    print(f"corpus: {len(stories)} stories, {stream.numel()} tokens ({time.time() - t0:.1f}s)", flush=True)

    torch.manual_seed(0)
    model = new_model(a)
    t_train = time.time()
    losses = train(model, stream, args.steps, args.batch_size, args.lr, seed=0, seq_len=a.seq_len,
                   loss_fn=moe_loss(a.router_aux_loss_coef))
    train_s = time.time() - t_train
    model.eval()
    model.save_pretrained(args.out, safe_serialization=True)
    (args.out / "generation_config.json").unlink(missing_ok=True)  # sampling defaults slmc does not read

    val_loss = story_loss(model, sp, val, a.seq_len)
    train_story_loss = story_loss(model, sp, stories[: args.val_stories], a.seq_len)
    n_np = min(args.numpy_val_stories, args.val_stories)
    val_np = evaluate.validation_loss(args.out, args.out / "tokenizer.model", n_np, VAL_SEED)
    val_torch_np = story_loss(model, sp, generate_stories(n_np, VAL_SEED), a.seq_len)
    if abs(val_np - val_torch_np) > 1e-4:
        raise RuntimeError(f"numpy validation loss {val_np} != torch {val_torch_np}: slmc reads the folder wrongly")
    shown = samples(model, sp, a.seq_len)
    wall_s = time.time() - t0
    n_params = sum(p.numel() for p in model.parameters())
    meta = {
        "val_loss": val_loss, "val_seed": VAL_SEED, "n_val_stories": args.val_stories,
        "val_loss_numpy": val_np, "val_loss_torch_same_stories": val_torch_np, "n_val_stories_numpy": n_np,
        "train_loss": sum(losses[-50:]) / len(losses[-50:]), "train_story_loss": train_story_loss,
        "safetensors_bytes": (args.out / "model.safetensors").stat().st_size,
        "sizes": sizes(a, n_params), "architecture": asdict(a),
        "recipe": {"train_seed": TRAIN_SEED, "torch_seed": 0, "n_train_stories": args.stories,
                   "train_tokens": stream.numel(), "steps": args.steps, "batch_size": args.batch_size,
                   "max_lr": args.lr, "warmup_steps": args.steps // 15, "threads": args.threads,
                   "router_aux_loss_coef": a.router_aux_loss_coef, "train_s": round(train_s, 1),
                   "wall_s": round(wall_s, 1), "cpu_s": round(time.process_time(), 1),
                   "torch": torch.__version__, "transformers": _transformers_version()},
        "greedy_prompt": PROMPT, "samples": [{"title": t, "text": s} for t, s in shown],
    }
    (args.out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    print(f"val loss {val_loss:.4f} (numpy on {n_np}: {val_np:.4f} vs torch {val_torch_np:.4f}), "
          f"train loss {meta['train_loss']:.4f}, wall {wall_s:.0f}s\ngreedy: {shown[0][1]}", flush=True)


def _transformers_version() -> str:
    import transformers

    return transformers.__version__


if __name__ == "__main__":
    main()
