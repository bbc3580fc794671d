"""The numpy reference against llama2.c's own logits for stories260K."""

import numpy as np

from conftest import shared_path
from slmc.frontend import llama2c
from slmc.frontend.logits import reference_logits


def test_reference_matches_llama2c_logits():
    model = llama2c.load(shared_path("models/stories260K/stories260K.bin"))
    ids = [int(x) for x in shared_path("models/stories260K/greedy_ids_from_bos.txt").read_text().split()]
    ref = np.fromfile(shared_path("models/stories260K/logits_first16.f32"), np.float32).reshape(16, 512)
    got = reference_logits(model, [1] + ids[:15])
    assert np.abs(got - ref).max() < 1e-4
    assert list(got.argmax(axis=1)) == ids[:16]
