"""sample.c against its numpy twin: argmax, temperature sampling and top-p with the seeded generator."""

import subprocess

import numpy as np
import pytest

from slmc.kernels.registry import C_DIR
from slmc.reference.sampling import Rng, sample

pytestmark = pytest.mark.slow

HARNESS = r"""
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
int slmc_sample(const float *logits, int n, float temperature, float topp, uint64_t *rng, float *probs, int *idx);
int main(int argc, char **argv) {
    int n = atoi(argv[2]), draws = atoi(argv[3]);
    float t = (float)atof(argv[4]), p = (float)atof(argv[5]);
    uint64_t rng = strtoull(argv[6], NULL, 10);
    float *x = malloc(n * sizeof(float)), *probs = malloc(n * sizeof(float));
    int *idx = malloc(n * sizeof(int));
    FILE *f = fopen(argv[1], "rb");
    for (int d = 0; d < draws; d++) {
        if (fread(x, sizeof(float), n, f) != (size_t)n) return 1;
        printf("%d\n", slmc_sample(x, n, t, p, &rng, probs, idx));
    }
    return 0;
}
"""


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    d = tmp_path_factory.mktemp("sample")
    (d / "h.c").write_text(HARNESS)
    subprocess.run(["gcc", "-O2", "-std=c99", "-ffp-contract=off", f"-I{C_DIR}", "-o", str(d / "h"), str(d / "h.c"),
                    str(C_DIR / "sample.c"), "-lm"], check=True)
    return d / "h"


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("temperature,topp", [(0.0, 0.9), (1.0, 1.0), (0.8, 0.9), (1.2, 0.5)])
def test_sampling_matches_twin(harness, tmp_path, temperature, topp, ties):
    rng = np.random.default_rng(7)
    n, draws = 300, 200
    logits = (rng.standard_normal((draws, n)) * 3).astype(np.float32)
    if ties:  # many equal probabilities: the order among them must be the twin's too
        logits = np.round(logits * 2) / 2
    logits.tofile(tmp_path / "l.f32")
    out = subprocess.run([str(harness), str(tmp_path / "l.f32"), str(n), str(draws), repr(temperature), repr(topp), "1234"],
                         check=True, capture_output=True, text=True).stdout.split()
    r = Rng(1234)
    twin = [sample(logits[d], temperature, topp, r) for d in range(draws)]
    assert [int(x) for x in out] == twin
    if temperature > 0:
        assert len(set(twin)) > 20  # it really samples
