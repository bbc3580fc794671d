"""numpy twin of kernels/c/sample.c: argmax, temperature, top-p, and llama2.c's xorshift64* generator."""

from __future__ import annotations

import numpy as np

MASK64 = (1 << 64) - 1
f32 = np.float32


class Rng:
    def __init__(self, seed: int) -> None:
        self.state = seed & MASK64 or 1

    def u32(self) -> int:
        s = self.state
        s ^= s >> 12
        s = (s ^ (s << 25)) & MASK64
        s ^= s >> 27
        self.state = s
        return ((s * 0x2545F4914F6CDD1D) & MASK64) >> 32

    def f32(self) -> np.float32:
        return f32(self.u32() >> 8) / f32(16777216.0)


def sample(logits: np.ndarray, temperature: float, topp: float, rng: Rng) -> int:
    logits = logits.astype(f32)
    if temperature == 0.0:
        return int(np.argmax(logits))
    mx = logits[int(np.argmax(logits))]
    # expf of a float32 argument, correctly rounded like glibc's and picolibc's expf in practice
    probs = np.exp(((logits - mx) / f32(temperature)).astype(np.float64)).astype(f32)
    total = f32(0)
    for p in probs:
        total = f32(total + p)
    probs = (probs / total).astype(f32)
    coin = rng.f32()
    n = len(probs)
    if topp <= 0.0 or topp >= 1.0:
        cdf = f32(0)
        for i in range(n):
            cdf = f32(cdf + probs[i])
            if coin < cdf:
                return i
        return n - 1
    cutoff = f32((f32(1.0) - f32(topp)) / f32(n - 1))
    cand = [i for i in range(n) if probs[i] >= cutoff]
    if not cand:
        return int(np.argmax(probs))
    cand.sort(key=lambda i: -probs[i])  # stable, like the C insertion sort
    cum, last = f32(0), len(cand) - 1
    for j, i in enumerate(cand):
        cum = f32(cum + probs[i])
        if cum > f32(topp):
            last = j
            break
    r = f32(coin * cum)
    cdf = f32(0)
    for i in cand[: last + 1]:
        cdf = f32(cdf + probs[i])
        if r < cdf:
            return i
    return cand[last]
