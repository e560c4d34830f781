"""KL prediction sets: the conformal threshold (tools/evaluation/calibrate.py), the core's set rule and the shipped coverage."""
import json
import math

import numpy as np
import pytest

from evaluation import calibrate, eval_io, evaluate
from lib.paths import MODEL_CARD, REPO_ROOT

METRICS = REPO_ROOT / "models" / "report" / "metrics.json"


def card_with_kl_set(threshold: float, coverage: float = 0.9) -> dict:
    """The product card with temperature 1 and the given KL set, so logits = log(probabilities)."""
    card = json.loads(MODEL_CARD.read_text())
    card["calibration"]["kl_temperature"] = 1.0
    card["kl_set"] = {"coverage": coverage, "threshold": threshold}
    return card


def test_scores_are_the_mass_ranked_before_the_true_grade():
    probs = np.array([[0.1, 0.6, 0.3, 0.0, 0.0]] * 4 + [[0.25, 0.25, 0.5, 0.0, 0.0]] * 2)
    grades = np.array([1, 2, 0, 4, 0, 1])
    # Ranked 1, 2, 0, 3, 4; ties go to the lower grade: 2, 0, 1, 3, 4.
    assert calibrate.aps_scores(probs, grades) == pytest.approx([0.0, 0.6, 0.9, 1.0, 0.5, 0.75])


@pytest.mark.parametrize("scores, coverage, expected", [
    (np.arange(1, 20) / 20, 0.9, 0.9),          # n = 19: ceil(20 x 0.9) = 18th smallest
    (np.arange(10, 0, -1) / 10, 0.9, 1.0),      # n = 10: ceil(11 x 0.9) = 10th smallest, the largest
    (np.array([0.7, 0.2, 0.5]), 0.5, 0.5),      # n = 3: ceil(4 x 0.5) = 2nd smallest
    (np.array([0.3, 0.4, 0.6, 0.5, 0.2]), 0.9, 1.0),  # n = 5: ceil(6 x 0.9) = 6 > n, every grade
    (np.array([0.42] * 8 + [0.95]), 0.9, 0.95),  # n = 9: 9th smallest (9.000000000000002 is 9)
])
def test_threshold_is_the_finite_sample_quantile(scores, coverage, expected):
    assert calibrate.conformal_threshold(scores, coverage) == pytest.approx(expected)


def test_threshold_never_exceeds_one_and_refuses_nonsense():
    assert calibrate.conformal_threshold(np.array([1.0 + 2e-16] * 20), 0.9) == 1.0
    with pytest.raises(ValueError, match="no validation image"):
        calibrate.conformal_threshold(np.array([]), 0.9)
    with pytest.raises(ValueError, match="between 0 and 1"):
        calibrate.conformal_threshold(np.array([0.5]), 1.0)


def dirichlet_cases(rng, n, concentration):
    probs = rng.dirichlet(np.full(5, concentration), n)
    grades = np.array([rng.choice(5, p=row) for row in probs])
    return probs, grades


@pytest.mark.parametrize("concentration", [0.3, 1.0, 3.0])
def test_coverage_on_dirichlet_probabilities(concentration):
    """Labels drawn from the probabilities themselves: the core's sets with the fitted threshold cover
    about 90% of fresh cases (at least 90% in expectation, at most 90% + 1/(n + 1))."""
    rng = np.random.default_rng(int(concentration * 10))
    calibration_probs, calibration_grades = dirichlet_cases(rng, 2000, concentration)
    threshold = calibrate.conformal_threshold(calibrate.aps_scores(calibration_probs, calibration_grades), 0.9)
    test_probs, test_grades = dirichlet_cases(rng, 20000, concentration)
    sets = eval_io.kl_sets(np.log(np.maximum(test_probs, 1e-30)), card_with_kl_set(threshold))
    coverage = sets[np.arange(len(test_grades)), test_grades].mean()
    # Sampling error: about 0.007 from the 2000 calibration cases, 0.002 from the 20000 test cases.
    assert coverage == pytest.approx(0.9, abs=0.025)
    assert sets.any(axis=1).all()
    # The set always holds the most probable grade, and more grades when probabilities are spread.
    assert sets[np.arange(len(test_probs)), test_probs.argmax(axis=1)].all()


def test_the_cores_sets_are_the_grades_scoring_at_most_the_threshold():
    """The core's set holds a grade exactly when calibrate.py's score of it is at most the threshold (away
    from float-rounding ties), so the conformal quantile's coverage is the sets' coverage."""
    rng = np.random.default_rng(5)
    probs = rng.dirichlet(np.ones(5), 2000)
    threshold = 0.63
    sets = eval_io.kl_sets(np.log(probs), card_with_kl_set(threshold))
    for grade in range(5):
        score = calibrate.aps_scores(probs, np.full(len(probs), grade))
        clear = np.abs(score - threshold) > 1e-6
        assert (sets[clear, grade] == (score[clear] <= threshold)).all()
    assert 1 < sets.sum(axis=1).mean() < 5


def test_the_literal_reading_over_covers():
    """Why the score is the mass before the true grade: the mass up to and including it, with the same sets,
    covers about 99% for a stated 90% (the crossing grade always joins)."""
    rng = np.random.default_rng(7)
    probs, grades = dirichlet_cases(rng, 3000, 1.0)
    including = calibrate.aps_scores(probs, grades) + probs[np.arange(len(grades)), grades]
    test_probs, test_grades = dirichlet_cases(rng, 5000, 1.0)
    sets = eval_io.kl_sets(np.log(test_probs), card_with_kl_set(calibrate.conformal_threshold(including, 0.9)))
    assert sets[np.arange(len(test_grades)), test_grades].mean() > 0.97


def test_failed_rows_have_empty_sets():
    logits = np.array([[0, 1, 2, 3, 4], [math.nan] * 5], dtype=float)
    sets = eval_io.kl_sets(logits, card_with_kl_set(0.7))   # 0.636 < 0.7, then 0.870
    assert sets[0].tolist() == [False, False, False, True, True] and not sets[1].any()


def test_set_text():
    assert evaluate.kl_set_text([2, 3]) == "KL 2–3"
    assert evaluate.kl_set_text([3]) == "KL 3"
    assert evaluate.kl_set_text([2, 0]) == "KL 0, 2"
    assert evaluate.kl_set_text(range(5)) == "KL 0–4"


def test_shipped_coverage_is_near_the_stated_level():
    """models/report/metrics.json (tools/oac eval): clean-test coverage within 2.5 points of the card's."""
    report = json.loads(METRICS.read_text())
    card = json.loads(MODEL_CARD.read_text())
    stated = report["card"]["kl_set"]
    assert stated == {k: card["kl_set"][k] for k in ("coverage", "threshold")}, \
        "the report describes another KL set than the card's: rerun tools/oac eval"
    measured = report["results"]["test"]["all"]["kl_set_coverage"]["value"]
    assert abs(measured - stated["coverage"]) <= 0.025, f"clean-test coverage {measured:.4f}"
