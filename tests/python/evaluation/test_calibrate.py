"""tools/evaluation/calibrate.py: temperature fits, the sensitivity-constrained threshold, the OOD rule, the card edit."""
import dataclasses
import json
import math
import re
import shutil

import numpy as np
import pytest

import synthetic_predictions
from evaluation import calibrate, eval_io
from lib.card import format_card, load_card
from lib.paths import MODEL_CARD
from lib.split_manifest import load_split


def test_binary_nll_matches_direct_formula():
    logits, labels = np.array([2.0, -1.0, 0.5]), np.array([1, 0, 0])
    p = 1 / (1 + np.exp(-logits / 2.0))
    direct = -np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p))
    assert calibrate.binary_nll(logits, labels, 2.0) == pytest.approx(direct)


def test_multiclass_nll_matches_direct_formula():
    logits, grades = np.array([[1.0, 2.0, 0.0, -1.0, 0.5], [0.0, 0.0, 3.0, 1.0, 0.0]]), np.array([1, 3])
    scaled = logits / 0.5
    probs = np.exp(scaled) / np.exp(scaled).sum(axis=1, keepdims=True)
    assert calibrate.multiclass_nll(logits, grades, 0.5) == pytest.approx(-np.mean(np.log(probs[[0, 1], grades])))


@pytest.mark.parametrize("true_temperature", [0.5, 1.0, 2.5])
def test_binary_temperature_recovers_the_generating_one(true_temperature):
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 4, 20000)
    labels = (rng.random(20000) < 1 / (1 + np.exp(-logits / true_temperature))).astype(int)
    fitted = calibrate.fit_temperature(lambda t: calibrate.binary_nll(logits, labels, t))
    assert fitted == pytest.approx(true_temperature, rel=0.06)


def test_temperature_is_the_minimum_over_a_grid():
    rng = np.random.default_rng(2)
    logits = rng.normal(0, 3, (500, 5))
    grades = np.array([rng.choice(5, p=np.exp(row / 1.7) / np.exp(row / 1.7).sum()) for row in logits])
    fitted = calibrate.fit_temperature(lambda t: calibrate.multiclass_nll(logits, grades, t))
    grid = np.exp(np.linspace(-2, 2, 4001))
    best = grid[np.argmin([calibrate.multiclass_nll(logits, grades, t) for t in grid])]
    assert fitted == pytest.approx(best, rel=2e-3)


def test_separable_data_is_refused():
    logits, labels = np.array([-3.0, -1.0, 1.0, 3.0]), np.array([0, 0, 1, 1])
    with pytest.raises(ValueError, match="degenerate"):
        calibrate.fit_temperature(lambda t: calibrate.binary_nll(logits, labels, t))


@pytest.mark.parametrize("seed", range(15))
def test_threshold_has_best_specificity_at_required_sensitivity(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(10, 80))
    labels = rng.integers(0, 2, n)
    labels[:2] = [0, 1]
    scores = np.round(rng.random(n) + 0.3 * labels, 2)   # ties on purpose
    threshold = calibrate.threshold_for_sensitivity(labels, scores, 0.9, confidence=0.5)
    predicted = scores >= threshold
    sensitivity = predicted[labels == 1].mean()
    specificity = (~predicted[labels == 0]).mean()
    assert sensitivity >= 0.9
    # Brute force over every cut point a threshold can make.
    candidates = np.r_[np.unique(scores), np.inf]
    feasible = [(~(scores[labels == 0] >= t)).mean() for t in candidates if (scores[labels == 1] >= t).mean() >= 0.9]
    assert specificity == pytest.approx(max(feasible))
    # Halfway between two observed scores, not on one (unless nothing lies below).
    below = scores[scores < threshold]
    assert threshold not in scores or len(below) == 0


def test_threshold_exact_sensitivity_fraction():
    # 10 positives: 90% means 9 of them, despite 0.9 * 10 not being exactly 9.0 in floating point.
    labels = np.array([1] * 10 + [0] * 10)
    scores = np.r_[np.arange(10, 20), np.arange(0, 10)] / 20.0
    threshold = calibrate.threshold_for_sensitivity(labels, scores, 0.9, confidence=0.5)
    assert threshold == pytest.approx((11 / 20 + 10 / 20) / 2)


def test_wilson_lower_bound_matches_the_textbook_interval():
    # 90 of 100 at 95% one-sided (z = 1.6449): (0.9 + z^2/200 - z * sqrt(0.0009 + z^2/40000)) / (1 + z^2/100)
    assert calibrate.wilson_lower_bound(90, 100, 0.95) == pytest.approx(0.8396, abs=5e-4)
    assert calibrate.wilson_lower_bound(90, 100, 0.5) == pytest.approx(0.9)
    assert calibrate.wilson_lower_bound(100, 100, 0.95) < 1.0


@pytest.mark.parametrize("positives", [30, 100, 400, 2000])
def test_confident_threshold_keeps_the_fewest_positives_whose_bound_clears_the_target(positives):
    kept = calibrate.positives_needed(positives, 0.9, 0.95)
    assert calibrate.wilson_lower_bound(kept, positives, 0.95) >= 0.9
    assert calibrate.wilson_lower_bound(kept - 1, positives, 0.95) < 0.9
    # The margin shrinks with more positives but stays above the bare 90%.
    assert kept / positives > 0.9
    labels = np.r_[np.ones(positives, int), np.zeros(positives, int)]
    scores = np.r_[np.linspace(1.0, 0.5, positives), np.linspace(0.6, 0.0, positives)]
    threshold = calibrate.threshold_for_sensitivity(labels, scores, 0.9, confidence=0.95)
    assert (scores[labels == 1] >= threshold).sum() == kept


def test_too_few_positives_for_the_confidence_is_an_error():
    labels = np.array([1] * 10 + [0] * 10)
    scores = np.arange(20) / 20.0
    with pytest.raises(ValueError, match="cannot show sensitivity >= 0.9 at 95% confidence"):
        calibrate.threshold_for_sensitivity(labels, scores, 0.9, confidence=0.95)


def test_ood_threshold_refuses_at_most_the_quantile_tail():
    scores = np.arange(1, 201, dtype=float)   # 200 knees
    threshold = calibrate.ood_threshold(scores, 0.99)
    assert threshold == 198.0                 # 198 of 200 = 99% at or below
    assert np.mean(scores > threshold) <= 0.01
    assert calibrate.ood_threshold(np.array([5.0]), 0.99) == 5.0


def test_calibrate_writes_only_its_fields(tmp_path):
    paths = synthetic_predictions.write_fixture(tmp_path)
    card_path = tmp_path / "card.json"
    before = json.loads(MODEL_CARD.read_text())
    for field in ("threshold_rule", "threshold_target"):   # as a card looks before its first calibration
        before.pop(field, None)
    card_path.write_text(json.dumps(before, indent=2))
    assert calibrate.main(["--predictions", str(paths["val"]), "--split", str(paths["split"]),
                           "--card", str(card_path)]) == 0
    after = json.loads(card_path.read_text())
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    assert changed == {"calibration", "threshold", "threshold_rule", "threshold_target", "kl_grade", "kl_set", "ood"}
    assert list(after).index("threshold_rule") == list(after).index("threshold") + 1
    assert list(after).index("threshold_target") == list(after).index("threshold_rule") + 1
    assert after["threshold_target"] == {"sensitivity": calibrate.MIN_SENSITIVITY,
                                         "confidence": calibrate.SENSITIVITY_CONFIDENCE}
    assert list(after).index("kl_grade") == list(after).index("threshold_target") + 1
    assert list(after).index("kl_set") == list(after).index("kl_grade") + 1
    assert after["kl_grade"]["rule"] in ("argmax", "cut_points")
    assert after["kl_set"]["coverage"] == calibrate.KL_SET_COVERAGE and 0 < after["kl_set"]["threshold"] <= 1
    assert 0 < after["threshold"] < 1 and math.isfinite(after["ood"]["threshold"])
    assert after["calibration"]["oa_temperature"] > 0 and after["calibration"]["kl_temperature"] > 0

    # The fitted values reproduce the rules on the same validation predictions.
    scored = eval_io.join(eval_io.load_predictions(paths["val"]), load_split(paths["split"]))
    scored = scored.select(scored.split == "val")
    labelled = ~np.isnan(scored.label)
    p_oa = eval_io.interpreted(scored.oa_logit[labelled], scored.kl_logits[labelled], after)["p_oa"]
    assert np.mean(p_oa[scored.label[labelled] == 1] >= after["threshold"]) >= 0.9
    knees = np.concatenate([np.array(k) for k in scored.knee_ood_scores])
    assert np.mean(knees > after["ood"]["threshold"]) <= 0.01
    graded = scored.kl_grade >= 0
    sets = eval_io.kl_sets(scored.kl_logits[graded], after)   # the core's sets with the new card
    assert np.mean(sets[np.arange(graded.sum()), scored.kl_grade[graded]]) >= 0.9


def test_calibrate_complains_clearly_without_validation_rows(tmp_path):
    paths = synthetic_predictions.write_fixture(tmp_path)
    card_path = tmp_path / "card.json"
    shutil.copy(MODEL_CARD, card_path)
    with pytest.raises(SystemExit, match="none of its images is in the validation split"):
        calibrate.main(["--predictions", str(paths["test"]), "--split", str(paths["split"]), "--card", str(card_path)])
    assert card_path.read_text() == MODEL_CARD.read_text()


def test_card_layout_round_trips():
    card = {"name": "fixture", "preprocess": {"mean": [0.5, 0.5, 0.5], "input_size": 224},
            "calibration": {"oa_temperature": 0.8, "oa_bias": -0.25, "kl_temperature": 0.9},
            "credits": {"weights": "a sentence long enough that it cannot share a line with its key " * 2},
            "ood": {"threshold": 12.5}}
    text = format_card(card) + "\n"
    assert json.loads(text) == card
    assert '"mean": [0.5, 0.5, 0.5]' in text and '"calibration": { "oa_temperature"' in text
    assert '"credits": {\n' in text


def test_cut_points_are_chosen_only_when_they_read_grades_better_cross_fitted():
    rng = np.random.default_rng(3)
    grades = rng.integers(0, 5, 2000)
    units = np.arange(2000) // 2
    # Probabilities whose argmax lags one grade behind the truth for grades 1-4 while the expected grade
    # still orders the knees: cut points recover the grades, the argmax cannot.
    lagging = np.full((2000, 5), 0.02)
    lagging[np.arange(2000), np.maximum(grades - 1, 0)] = 0.5
    lagging[np.arange(2000), grades] += 0.4
    lagging /= lagging.sum(axis=1, keepdims=True)
    entry, figures = calibrate.choose_kl_grade_rule(lagging, grades, units)
    assert entry["rule"] == "cut_points" and entry["cut_points"] == sorted(entry["cut_points"])
    assert figures["cut_points"]["accuracy"] > 0.95 > figures["argmax"]["accuracy"]
    assert np.mean(calibrate.grades_by_cut_points(lagging @ np.arange(5), entry["cut_points"]) == grades) > 0.95
    # Sharp, correct probabilities: the argmax is already right and is kept.
    sharp = np.full((2000, 5), 0.01)
    sharp[np.arange(2000), grades] = 0.96
    entry, _ = calibrate.choose_kl_grade_rule(sharp, grades, units)
    assert entry == {"rule": "argmax", "method": entry["method"]} and "cut points" in entry["method"]


def test_the_core_reads_grades_by_the_rule_calibrate_fitted():
    card = load_card(MODEL_CARD)
    card["kl_grade"] = {"rule": "cut_points", "cut_points": [0.9, 1.4, 2.2, 3.3]}
    logits = np.random.default_rng(5).normal(scale=2.0, size=(500, 5)).astype(np.float32)
    scaled = logits.astype(np.float64) / card["calibration"]["kl_temperature"]
    probs = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    shown = eval_io.interpreted(np.zeros(500), logits, card)
    assert np.array_equal(shown["kl_grade"], calibrate.grades_by_cut_points(probs @ np.arange(5), [0.9, 1.4, 2.2, 3.3]))
    card["kl_grade"] = {"rule": "argmax"}
    assert np.array_equal(eval_io.interpreted(np.zeros(500), logits, card)["kl_grade"], logits.argmax(axis=1))


@pytest.mark.parametrize("true_temperature, true_bias", [(0.7, -1.0), (1.5, 0.6)])
def test_temperature_and_bias_recover_the_generating_ones(true_temperature, true_bias):
    rng = np.random.default_rng(4)
    logits = rng.normal(0, 4, 20000)
    labels = (rng.random(20000) < 1 / (1 + np.exp(-(logits / true_temperature + true_bias)))).astype(int)
    temperature, bias = calibrate.fit_temperature_and_bias(logits, labels)
    assert temperature == pytest.approx(true_temperature, rel=0.06) and bias == pytest.approx(true_bias, abs=0.08)


def test_temperature_and_bias_refuse_separable_data():
    with pytest.raises(ValueError, match="degenerate"):
        calibrate.fit_temperature_and_bias(np.array([-3.0, -1.0, 1.0, 3.0]), np.array([0, 0, 1, 1]))


def test_versions_join_the_temperature_fit_and_nothing_else(tmp_path):
    """Validation images as people export them (robustness.py --rows val): a version whose OA logits all fall
    by 2 (as a turned film's do) pulls the OA bias up; the threshold and KL set stay fitted on the published
    images, and the summary shows each set's ECE under both fits."""
    from evaluation import robustness
    paths = synthetic_predictions.write_fixture(tmp_path)
    records = [json.loads(line) for line in paths["val"].read_text().splitlines()]
    versions = tmp_path / "versions"
    for version in robustness.VERSIONS:
        (versions / version).mkdir(parents=True)
        listing = ["file,original"]
        with (versions / f"{version}.jsonl").open("w") as out:
            for index, record in enumerate(records):
                name = f"{index:05d}.png"
                listing.append(f"{name},{record['file'].removeprefix('/data/')}")
                altered = dict(record, file=f"/elsewhere/{name}")
                if version.startswith("rotated") and record["ok"]:
                    altered["oa_logit"] = record["oa_logit"] - 2.0
                out.write(json.dumps(altered) + "\n")
        (versions / version / "files.csv").write_text("\n".join(listing) + "\n")
    cards = {}
    for name, extra in (("published", []), ("versions", ["--versions", str(versions)])):
        cards[name] = tmp_path / f"{name}.json"
        shutil.copy(MODEL_CARD, cards[name])
        assert calibrate.main(["--predictions", str(paths["val"]), "--split", str(paths["split"]),
                               "--card", str(cards[name]), *extra]) == 0
    alone, pooled = load_card(cards["published"]), load_card(cards["versions"])
    assert pooled["calibration"]["oa_bias"] > alone["calibration"]["oa_bias"] + 0.1
    assert "altered versions" in pooled["calibration"]["fitted_on"]
    assert "altered versions" not in alone["calibration"]["fitted_on"]
    assert pooled["kl_set"]["fitted_on"] == alone["kl_set"]["fitted_on"]
    assert pooled["ood"]["threshold"] == alone["ood"]["threshold"]


def test_per_source_check_finds_a_source_the_shared_fit_misses(tmp_path):
    paths = synthetic_predictions.write_fixture(tmp_path)
    scored = eval_io.join(eval_io.load_predictions(paths["val"]), load_split(paths["split"]))
    scored = scored.select(scored.split == "val")
    shifted = dataclasses.replace(scored, oa_logit=scored.oa_logit + 6.0 * (scored.source == "oai224"))
    labelled = ~np.isnan(shifted.label)
    temperature, bias = calibrate.fit_temperature_and_bias(shifted.oa_logit[labelled], shifted.label[labelled])
    figures = calibrate.per_source_check(shifted, temperature, bias)
    assert set(figures) == {"oai224", "kneexray"}    # oai299 has too few labelled images to judge
    assert figures["oai224"]["images"] == int((labelled & (shifted.source == "oai224")).sum())
    assert figures["oai224"]["ece_own_fit_cross_fitted"] < figures["oai224"]["ece_shared_fit"]


def test_the_card_records_the_per_source_check(tmp_path):
    paths = synthetic_predictions.write_fixture(tmp_path)
    card_path = tmp_path / "card.json"
    shutil.copy(MODEL_CARD, card_path)
    calibrate.main(["--predictions", str(paths["val"]), "--split", str(paths["split"]), "--card", str(card_path)])
    check = load_card(card_path)["calibration"]["per_source_check"]
    # The fixture's kneexray knees are separated perfectly within a half of its patients: no own fit exists.
    assert "kneexray (40 images)" in check and "no finite own fit" in check
    assert re.search(r"oai224 \(120 images\) 0\.\d{3} shared, 0\.\d{3} own", check)
    assert "oai299" not in check
