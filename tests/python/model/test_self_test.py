"""tools/model/self_test.py: the shipped card's expectation is what onnxruntime-web gives for the core's probe, a card
is written with it beside `compute`, and this machine's onnxruntime-node passes the check while a tampered
expectation fails it."""
import json
import shutil

import pytest

from lib.card import load_card
from lib.paths import MODEL_CARD
from model import self_test


@pytest.fixture()
def card_copy(tmp_path):
    card = load_card(MODEL_CARD)
    shutil.copyfile(MODEL_CARD.parent / card["model_file"], tmp_path / card["model_file"])
    copy = tmp_path / "card.json"
    shutil.copyfile(MODEL_CARD, copy)
    return copy


def test_the_shipped_expectation_is_what_onnxruntime_web_gives(card_copy):
    shipped = load_card(MODEL_CARD)["self_test"]
    written = self_test.write_expectation(card_copy)
    assert written["expected"] == shipped["expected"]
    assert written["model_sha256"] == load_card(MODEL_CARD)["sha256"]
    keys = list(load_card(card_copy))
    assert keys.index("self_test") == keys.index("compute") + 1


def test_this_machine_passes_and_a_tampered_expectation_fails(card_copy, monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["self_test.py", "--card", str(card_copy)])
    assert self_test.main() == 0
    assert "self-test passes on onnxruntime-node" in capsys.readouterr().out
    card = json.loads(card_copy.read_text())
    card["self_test"]["expected"]["ood_score"] += 1.0
    card_copy.write_text(json.dumps(card))
    assert self_test.main() == 2
    assert "FAILS" in capsys.readouterr().out
