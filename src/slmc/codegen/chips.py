"""A partitioned build's per-chip C (`slmc compile MODEL --chips N`).

Each DIR/chip<k> is what `slmc compile` writes for one program (stages/emit.py), with the chip's step
graphs (passes/partition.py), main_chip.c as its main, and chip.h naming the chip. The link
collectives call kernels/c/link_runtime.c, the only new dependency of the generated C.
"""

from __future__ import annotations

from slmc.plan.partition import PartitionPlan


def chip_h(plan: PartitionPlan, chip: int) -> str:
    c = plan.chips[chip]
    return (f"/* chip {chip} of {plan.n_chips} (plan/partition.py): query heads [{c.heads[0]}, {c.heads[1]}), "
            f"KV heads [{c.kv_heads[0]}, {c.kv_heads[1]}), FFN units [{c.ffn[0]}, {c.ffn[1]}); "
            f"parent {c.parent}, children {list(c.children)} */\n"
            f"#define SLMC_CHIP {chip}\n#define SLMC_N_CHIPS {plan.n_chips}\n#define SLMC_FAN_IN {plan.fan_in}\n")
