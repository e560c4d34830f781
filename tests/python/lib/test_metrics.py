"""tools/evaluation/metrics.py against brute-force or independently derived values on small synthetic data."""
import itertools
import math

import numpy as np
import pytest

from lib import metrics


def pairwise_auc(labels, scores):
    """P(positive outscores negative) + half the ties, counted pair by pair."""
    positives = [s for s, y in zip(scores, labels) if y]
    negatives = [s for s, y in zip(scores, labels) if not y]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def brute_ece(labels, probabilities, n_bins):
    total = 0.0
    for b in range(n_bins):
        low, high = b / n_bins, (b + 1) / n_bins
        members = [(y, p) for y, p in zip(labels, probabilities)
                   if low <= p < high or (b == n_bins - 1 and p == 1.0)]
        if members:
            rate = sum(y for y, _ in members) / len(members)
            confidence = sum(p for _, p in members) / len(members)
            total += len(members) / len(labels) * abs(rate - confidence)
    return total


def test_midranks_average_ties():
    assert metrics.midranks(np.array([10, 20, 20, 5, 20])).tolist() == [2.0, 4.0, 4.0, 1.0, 4.0]


@pytest.mark.parametrize("seed", range(20))
def test_auc_equals_pairwise_count_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 40))
    labels = rng.integers(0, 2, n)
    labels[:2] = [0, 1]
    scores = rng.integers(0, 6, n).astype(float)   # few distinct values: many ties
    assert metrics.auc(labels, scores) == pytest.approx(pairwise_auc(labels, scores), abs=1e-12)


def test_auc_known_values_and_undefined():
    assert metrics.auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert metrics.auc([1, 1, 0, 0], [0.1, 0.2, 0.3, 0.4]) == 0.0
    assert metrics.auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5
    assert metrics.auc([0, 1, 1], [0.1, 0.4, 0.05]) == 0.5
    assert math.isnan(metrics.auc([1, 1], [0.2, 0.3]))


@pytest.mark.parametrize("seed", range(5))
def test_roc_area_by_trapezoids_equals_rank_auc(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 60)
    scores = np.round(rng.random(60) + 0.4 * labels, 1)
    fpr, tpr, thresholds = metrics.roc_curve(labels, scores)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    assert area == pytest.approx(metrics.auc(labels, scores), abs=1e-12)
    for t, x, y in zip(thresholds[1:], fpr[1:], tpr[1:]):
        predicted = scores >= t
        assert y == pytest.approx(metrics.sensitivity(labels, predicted))
        assert x == pytest.approx(1 - metrics.specificity(labels, predicted))


def test_sensitivity_specificity_accuracy():
    labels = np.array([1, 1, 1, 0, 0])
    predicted = np.array([1, 0, 1, 0, 1])
    assert metrics.sensitivity(labels, predicted) == pytest.approx(2 / 3)
    assert metrics.specificity(labels, predicted) == pytest.approx(1 / 2)
    assert metrics.accuracy(labels, predicted) == pytest.approx(3 / 5)
    assert math.isnan(metrics.specificity([1, 1], [1, 0]))


@pytest.mark.parametrize("seed", range(10))
def test_ece_equals_bin_by_bin_loop(seed):
    rng = np.random.default_rng(seed)
    probabilities = rng.random(200)
    probabilities[:4] = [0.0, 1.0, 1 / 15, 14 / 15]   # the bin edges themselves
    labels = (rng.random(200) < probabilities ** 1.5).astype(int)
    assert metrics.expected_calibration_error(labels, probabilities) == pytest.approx(
        brute_ece(labels, probabilities, 15), abs=1e-12)


def test_ece_hand_example():
    # Bin [0, 1/15): p 0.0 and 0.05, one positive -> |0.5 - 0.025| * 2/4; bin [14/15, 1]: p 0.95, 1.0, both positive
    # -> |1 - 0.975| * 2/4. ECE = 0.2375 + 0.0125 = 0.25
    assert metrics.expected_calibration_error([0, 1, 1, 1], [0.0, 0.05, 0.95, 1.0]) == pytest.approx(0.25)
    assert metrics.expected_calibration_error([1, 0], [1.0, 0.0]) == 0.0
    with pytest.raises(ValueError):
        metrics.expected_calibration_error([1], [1.2])


def test_top_label_ece_uses_confidence_of_the_argmax():
    probs = np.array([[0.7, 0.2, 0.1, 0.0, 0.0], [0.1, 0.1, 0.8, 0.0, 0.0]])
    # confidences 0.7 (right) and 0.8 (wrong) fall in different bins: (0.3 + 0.8) / 2
    assert metrics.top_label_calibration_error([0, 1], probs) == pytest.approx(0.55)


def test_confusion_matrix_rows_are_truth():
    matrix = metrics.confusion_matrix([0, 0, 1, 2], [0, 1, 1, 0], 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]
    with pytest.raises(ValueError):
        metrics.confusion_matrix([5], [0], 5)


def test_qwk_hand_checked_confusion_matrix():
    # truth [0,0,1,1,2,2], predicted [0,1,1,1,2,0]: observed [[1,1,0],[0,2,0],[1,0,1]], weights (i-j)^2.
    # Weighted observed disagreement: 1*1 (0->1) + 4*1 (2->0) = 5.
    # Marginals rows (2,2,2), columns (2,3,1), N = 6 -> expected row [2/3, 1, 1/3] for every true grade;
    # weighted expected: row0 1 + 4/3, row1 2/3 + 1/3, row2 8/3 + 1 -> 7. kappa = 1 - 5/7 = 2/7.
    kappa = metrics.quadratic_weighted_kappa([0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0], 3)
    assert kappa == pytest.approx(2 / 7)


def test_qwk_unused_grades_do_not_change_it():
    truth, predicted = [0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0]
    assert metrics.quadratic_weighted_kappa(truth, predicted, 5) == pytest.approx(2 / 7)


@pytest.mark.parametrize("seed", range(10))
def test_qwk_equals_moment_formula(seed):
    # Quadratic weighted kappa = 2 cov(x, y) / (var x + var y + (mean x - mean y)^2) with population moments.
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 5, 80)
    predicted = np.clip(truth + rng.integers(-2, 3, 80), 0, 4)
    x, y = truth.astype(float), predicted.astype(float)
    moment = 2 * np.mean((x - x.mean()) * (y - y.mean())) / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)
    assert metrics.quadratic_weighted_kappa(truth, predicted, 5) == pytest.approx(moment, abs=1e-12)


def test_qwk_perfect_and_degenerate():
    assert metrics.quadratic_weighted_kappa([0, 1, 4], [0, 1, 4], 5) == pytest.approx(1.0)
    assert math.isnan(metrics.quadratic_weighted_kappa([2, 2], [2, 2], 5))


def test_mean_absolute_error():
    assert metrics.mean_absolute_error([0, 2, 4], [1, 2, 1]) == pytest.approx(4 / 3)


def test_bootstrap_keeps_units_whole_and_is_seeded():
    # Units "a" (3 rows) and "b" (1 row): every resample holds whole units, so the row count is 2, 4, 6.
    units = np.array(["a", "a", "b", "a"])
    sizes = []
    result = metrics.bootstrap({"rows": lambda rows: sizes.append(len(rows)) or float(len(rows))}, units,
                               n_resamples=200, seed=3)
    resample_sizes = set(sizes[:-1])
    assert resample_sizes <= {2, 4, 6} and len(resample_sizes) > 1
    assert result["rows"]["value"] == 4.0   # the full data, evaluated last
    again = metrics.bootstrap({"rows": lambda rows: float(len(rows))}, units, n_resamples=200, seed=3)
    assert again["rows"] == result["rows"]


def test_bootstrap_rows_of_a_unit_come_together():
    units = np.array([0, 1, 0, 2, 1, 2])
    values = np.array([10.0, 20.0, 10.0, 30.0, 20.0, 30.0])   # constant within a unit

    def check(rows):
        counts = np.bincount(units[rows], minlength=3)
        assert all(c % 2 == 0 for c in counts)   # each chosen unit brings both of its rows
        return float(values[rows].mean())

    result = metrics.bootstrap({"mean": check}, units, n_resamples=300, seed=0)
    assert result["mean"]["value"] == pytest.approx(20.0)
    assert 10.0 <= result["mean"]["ci_low"] < 20.0 < result["mean"]["ci_high"] <= 30.0


def test_bootstrap_interval_covers_the_truth_of_a_simple_mean():
    rng = np.random.default_rng(11)
    hits = rng.random(400) < 0.3
    result = metrics.bootstrap({"rate": lambda rows: float(hits[rows].mean())}, np.arange(400), 1000, seed=1)
    entry = result["rate"]
    assert entry["ci_low"] < entry["value"] < entry["ci_high"]
    # Normal approximation of the 95% interval half-width for a proportion: 1.96 sqrt(p(1-p)/n).
    half_width = 1.96 * math.sqrt(entry["value"] * (1 - entry["value"]) / 400)
    assert (entry["ci_high"] - entry["ci_low"]) / 2 == pytest.approx(half_width, rel=0.15)


def test_bootstrap_reports_undefined_resamples():
    labels = np.array([1] * 9 + [0])
    scores = np.linspace(0, 1, 10)
    result = metrics.bootstrap({"auc": lambda rows: metrics.auc(labels[rows], scores[rows])},
                               np.arange(10), n_resamples=400, seed=0)
    # The single negative is missing from about (9/10)^10 = 35% of resamples.
    assert 200 < result["auc"]["resamples_defined"] < 330
    assert math.isfinite(result["auc"]["ci_low"])


def test_bootstrap_without_enough_defined_resamples_gives_no_interval():
    result = metrics.bootstrap({"nothing": lambda rows: math.nan}, np.arange(5), n_resamples=50, seed=0)
    assert math.isnan(result["nothing"]["ci_low"]) and result["nothing"]["resamples_defined"] == 0


def test_pairwise_reference_itself():
    # Guard the reference: enumerate all orderings of a tiny case by hand.
    labels, scores = [1, 0, 1, 0], [3, 1, 2, 2]
    pairs = [(p, n) for p, n in itertools.product([3, 2], [1, 2])]
    assert pairwise_auc(labels, scores) == (1 + 1 + 1 + 0.5) / len(pairs)
