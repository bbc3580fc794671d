"""The seeded fuzz sample of `make test` (`make fuzz` runs 10,000 cases of the same families).

Every case must end in exit 0 with a complete output or a one-line error with exit 2: no traceback,
no time-out, nothing written on failure, peak memory under the cap (tests/fuzz/harness.py).
"""

from __future__ import annotations

import os

import pytest

from fuzz.run import fuzz, summary

# per family, in `make test`; SLMC_FUZZ_CASES raises it
CASES = int(os.environ.get("SLMC_FUZZ_CASES", "40"))
FAMILIES = ["llama2c_v0", "llama2c_v2", "hf", "safetensors", "tokenizer", "sentencepiece", "onnx", "cli_compile", "cli_run"]


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_fuzz_family(family, tmp_path):
    done = fuzz(CASES, first_seed=1000, jobs=1, names=[family], timeout_s=120.0, root=tmp_path)
    assert len(done) == CASES
    bad = [o.describe() for o in done if not o.ok]
    assert not bad, f"{len(bad)} of {CASES} cases failed:\n" + "\n".join(bad[:10])
    s = summary(done)
    assert s["largest_peak_rss_mib"] < 4096
