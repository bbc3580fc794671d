"""sample.c against its numpy twin: argmax, temperature sampling and top-p with the seeded generator."""

import os
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


ARGMAX = r"""
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
int slmc_argmax(const float *x, int n);
static int loop(const float *x, int n) {   /* llama2.c's sample_argmax */
    int best = 0;
    for (int i = 1; i < n; i++) if (x[i] > x[best]) best = i;
    return best;
}
int main(void) {
    static float x[40000];
    const float special[] = {0.0f, -0.0f, NAN, INFINITY, -INFINITY, 1.0f, -1.0f, 3.5f};
    int bad = 0, cases = 0;
    srand(3);
    for (int c = 0; c < 20000; c++) {
        int n = c < 19990 ? 1 + c % 200 : 32000 + c % 7;
        for (int i = 0; i < n; i++)   /* few distinct values: ties, signed zeros, NaNs and infinities */
            x[i] = rand() % 4 ? (float)(rand() % 9 - 4) * 0.5f : special[rand() % 8];
        if (c % 3 == 0) for (int i = 0; i < n; i++) if (x[i] != x[i]) x[i] = -2.0f;  /* some with no NaN */
        if (c % 5 == 0) x[0] = NAN;
        if (slmc_argmax(x, n) != loop(x, n)) { bad++; if (bad < 5) printf("n=%d: %d, the loop %d\n", n, slmc_argmax(x, n), loop(x, n)); }
        cases++;
    }
    printf("cases %d bad %d\n", cases, bad);
    return bad != 0;
}
"""


@pytest.mark.parametrize("env", [{}, {"SLMC_NO_AVX512": "1"}], ids=["avx512", "sse2"])
def test_argmax_is_the_first_index_of_the_maximum(tmp_path, env):
    """slmc_argmax (two vector passes on x86-64: AVX-512 where the CPU has it, else SSE2) gives llama2.c's loop's
    index: ties (the first), signed zeros, NaNs anywhere (never chosen; a NaN first element: 0), infinities, 1 to
    200 and 32,000 values."""
    (tmp_path / "a.c").write_text(ARGMAX)
    subprocess.run(["gcc", "-O2", "-std=c99", "-ffp-contract=off", f"-I{C_DIR}", "-o", str(tmp_path / "a"),
                    str(tmp_path / "a.c"), str(C_DIR / "sample.c"), "-lm"], check=True)
    out = subprocess.run([str(tmp_path / "a")], capture_output=True, text=True, env={**os.environ, **env}).stdout
    assert "cases 20000 bad 0" in out, out
