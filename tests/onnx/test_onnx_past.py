"""onnx_past.decoder_dims: which input layouts beside the token ids are a decoder's (bound for one unpadded
sequence without past) and which are not (then onnx_import refuses the dynamic axis in one line)."""

from __future__ import annotations

from slmc.frontend.onnx_past import InputSig, bound_value, decoder_dims, logits_output


def _optimum(layers: int = 2, mask: str = "total") -> list[InputSig]:
    sigs = [InputSig("input_ids", True, ("batch", "seq")), InputSig("attention_mask", True, ("batch", mask)),
            InputSig("position_ids", True, ("batch", "seq"))]
    return sigs + [InputSig(f"past_key_values.{i}.{k}", False, ("batch", 2, "past", 16))
                   for i in range(layers) for k in ("key", "value")]


def test_optimum_layout_binds_no_past() -> None:
    assert decoder_dims(_optimum(), 5) == {"seq": 5, "batch": 1, "past": 0, "total": 5}
    assert bound_value("past_key_values.1.value", (1, 2, 0, 16)).shape == (1, 2, 0, 16)
    assert bound_value("position_ids", (1, 5)).tolist() == [[0, 1, 2, 3, 4]]


def test_plain_exports() -> None:
    ids = InputSig("input_ids", True, (1, "s"))
    assert decoder_dims([ids], 7) == {"s": 7}
    assert decoder_dims([ids, InputSig("attention_mask", True, (1, "s"))], 7) == {"s": 7}
    assert decoder_dims([ids, InputSig("logits_to_keep", True, ())], 7) == {"s": 7}


def test_other_layouts_are_not_a_decoders() -> None:
    ids = InputSig("input_ids", True, (1, "s"))
    assert decoder_dims([ids, InputSig("attention_mask", True, (1, "other"))], 5) == {}  # a mask longer, no past
    assert decoder_dims([ids, InputSig("position_ids", True, (1, "p"))], 5) == {}
    assert decoder_dims([InputSig("input_ids", False, (1, "s"))], 5) == {}             # float ids
    assert decoder_dims([ids, InputSig("pixel_values", False, (1, 3, "s", "s"))], 5) == {}
    bad = _optimum()[:3] + [InputSig("past_key_values.0.key", False, ("batch", 2, 16))]  # rank 3
    assert decoder_dims(bad, 5) == {}
    assert decoder_dims(_optimum(mask="seq"), 5) == {"seq": 5, "batch": 1, "past": 0}


def test_logits_output() -> None:
    assert logits_output(["logits"]) == 0
    assert logits_output(["logits", "present.0.key", "present.0.value"]) == 0
    assert logits_output(["a", "b"]) is None
