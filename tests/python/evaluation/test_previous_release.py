"""tools/evaluation/previous_release.py: an earlier card keeps its own network, calibration and gates, takes
today's preprocessing, and gets what its release did for the fields it predates."""
import copy
import json

import pytest

from core_build import import_core
from evaluation.previous_release import runnable_card
from lib.card import load_card
from lib.paths import MODEL_CARD


def earlier_of(current):
    earlier = copy.deepcopy(current)
    earlier.update(version="2.0.0", threshold=0.21, ood={"threshold": 31.9})
    earlier["calibration"] = {"oa_temperature": 0.95, "kl_temperature": 0.92}
    for newer in ("kl_grade", "kl_set"):
        del earlier[newer]
    del earlier["preprocess"]["localise"]["polarity"]
    return earlier


def test_the_earlier_release_keeps_its_own_outputs_and_takes_todays_preprocessing():
    current = load_card(MODEL_CARD)
    card = runnable_card(earlier_of(current), current)
    assert card["threshold"] == 0.21 and card["ood"] == {"threshold": 31.9} and card["version"] == "2.0.0"
    assert card["calibration"]["oa_temperature"] == 0.95 and card["calibration"]["oa_bias"] == 0.0
    assert card["kl_grade"] == {"rule": "argmax"}
    assert card["preprocess"] == current["preprocess"] and card["model_file"] == "model.onnx"
    import_core().parse_model_card(json.dumps(card))  # today's core reads it


def test_an_earlier_model_that_takes_another_tensor_is_refused():
    current = load_card(MODEL_CARD)
    earlier = earlier_of(current)
    earlier["preprocess"]["input_size"] = 299
    with pytest.raises(SystemExit, match="input_size"):
        runnable_card(earlier, current)
