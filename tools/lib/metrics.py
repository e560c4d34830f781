"""Evaluation metrics in plain numpy, so every figure in models/REPORT.md traces back to this file.

Conventions: `labels` are 0/1 (1 = radiographic OA, KL >= 2), `scores`/`probabilities` are P(OA)
or anything monotone in it, grades are integers 0..n_classes-1. A metric that is undefined on its
input (no positives, no negatives, an empty set) returns NaN rather than raising, because the
bootstrap meets such resamples and has to count them, not crash on them.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

ECE_BINS = 15


def midranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks; tied values share the mean of the ranks they occupy."""
    values = np.asarray(values, dtype=np.float64)
    if np.isnan(values).any():
        raise ValueError("cannot rank NaN scores")
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.r_[0, np.flatnonzero(np.diff(ordered)) + 1]
    stops = np.r_[starts[1:], len(values)]
    ranks = np.empty(len(values))
    ranks[order] = np.repeat((starts + stops + 1) / 2.0, stops - starts)
    return ranks


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve by the Mann-Whitney rank statistic: P(score+ > score-) + P(tie) / 2."""
    labels = np.asarray(labels).astype(bool)
    n_pos = int(labels.sum())
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    rank_sum = midranks(scores)[labels].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) for the rule `score >= threshold`, one point per distinct score, from (0, 0)."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="mergesort")
    ordered, hits = scores[order], labels[order]
    last_of_each_value = np.r_[np.flatnonzero(np.diff(ordered)), len(ordered) - 1]
    true_pos = np.cumsum(hits)[last_of_each_value]
    false_pos = np.cumsum(~hits)[last_of_each_value]
    n_pos, n_neg = max(int(labels.sum()), 1), max(int((~labels).sum()), 1)
    fpr = np.r_[0.0, false_pos / n_neg]
    tpr = np.r_[0.0, true_pos / n_pos]
    return fpr, tpr, np.r_[np.inf, ordered[last_of_each_value]]


def accuracy(truth: np.ndarray, predicted: np.ndarray) -> float:
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    return float(np.mean(truth == predicted)) if len(truth) else math.nan


def sensitivity(labels: np.ndarray, predicted: np.ndarray) -> float:
    labels, predicted = np.asarray(labels).astype(bool), np.asarray(predicted).astype(bool)
    return float(predicted[labels].mean()) if labels.any() else math.nan


def specificity(labels: np.ndarray, predicted: np.ndarray) -> float:
    labels, predicted = np.asarray(labels).astype(bool), np.asarray(predicted).astype(bool)
    return float((~predicted[~labels]).mean()) if (~labels).any() else math.nan


def reliability_bins(labels: np.ndarray, probabilities: np.ndarray, n_bins: int = ECE_BINS) -> dict:
    """Per equal-width bin [k/n, (k+1)/n) (the last one closed at 1): count, mean probability, observed rate."""
    labels = np.asarray(labels, dtype=np.float64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if ((probabilities < 0) | (probabilities > 1)).any():
        raise ValueError("probabilities must lie in [0, 1]")
    bins = np.minimum((probabilities * n_bins).astype(np.int64), n_bins - 1)
    count = np.bincount(bins, minlength=n_bins).astype(np.float64)
    probability_sum = np.bincount(bins, weights=probabilities, minlength=n_bins)
    label_sum = np.bincount(bins, weights=labels, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"edges": np.linspace(0.0, 1.0, n_bins + 1), "count": count,
                "mean_probability": probability_sum / count, "observed_rate": label_sum / count,
                "probability_sum": probability_sum, "label_sum": label_sum}


def expected_calibration_error(labels: np.ndarray, probabilities: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """sum over equal-width bins of (bin count / N) * |observed rate - mean probability|."""
    if len(labels) == 0:
        return math.nan
    bins = reliability_bins(labels, probabilities, n_bins)
    return float(np.abs(bins["label_sum"] - bins["probability_sum"]).sum() / len(labels))


def top_label_calibration_error(truth: np.ndarray, class_probabilities: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """Multiclass ECE on the confidence of the predicted class vs whether it was right."""
    class_probabilities = np.asarray(class_probabilities)
    correct = class_probabilities.argmax(axis=1) == np.asarray(truth)
    return expected_calibration_error(correct, class_probabilities.max(axis=1), n_bins)


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """counts[true class, predicted class]."""
    truth, predicted = np.asarray(truth, dtype=np.int64), np.asarray(predicted, dtype=np.int64)
    if len(truth) and (min(truth.min(), predicted.min()) < 0 or max(truth.max(), predicted.max()) >= n_classes):
        raise ValueError(f"grades must lie in 0..{n_classes - 1}")
    return np.bincount(truth * n_classes + predicted, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def quadratic_weighted_kappa(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> float:
    """Cohen's kappa with disagreement weights (i - j)^2: 1 - sum(W * observed) / sum(W * expected by chance)."""
    observed = confusion_matrix(truth, predicted, n_classes).astype(np.float64)
    total = observed.sum()
    if total == 0:
        return math.nan
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / total
    grade = np.arange(n_classes)
    weights = (grade[:, None] - grade[None, :]) ** 2.0
    chance_disagreement = (weights * expected).sum()
    if chance_disagreement == 0:
        return math.nan
    return float(1.0 - (weights * observed).sum() / chance_disagreement)


def mean_absolute_error(truth: np.ndarray, predicted: np.ndarray) -> float:
    truth, predicted = np.asarray(truth, dtype=np.float64), np.asarray(predicted, dtype=np.float64)
    return float(np.abs(truth - predicted).mean()) if len(truth) else math.nan


def bootstrap(metrics: dict[str, Callable[[np.ndarray], float]], units: np.ndarray,
              n_resamples: int = 1000, seed: int = 0, confidence: float = 0.95) -> dict[str, dict]:
    """Cluster bootstrap: draw resampling units (e.g. patients) with replacement, keep all rows of each.

    Every metric is a function of row indices, evaluated on the full set and on the same resamples
    (so intervals of different metrics come from identical draws). The interval is the percentile
    interval over resamples where the metric is defined; `resamples_defined` says how many those were.
    """
    units = np.asarray(units)
    _, unit_of_row = np.unique(units, return_inverse=True)
    rows_by_unit = np.argsort(unit_of_row, kind="mergesort")
    rows_per_unit = np.bincount(unit_of_row)
    first_row = np.r_[0, np.cumsum(rows_per_unit)[:-1]]
    n_units = len(rows_per_unit)
    everything = np.arange(len(units))
    estimates = {name: np.empty(n_resamples) for name in metrics}
    rng = np.random.default_rng(seed)
    for draw in range(n_resamples):
        chosen = rng.integers(0, n_units, n_units)
        lengths = rows_per_unit[chosen]
        offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        rows = rows_by_unit[np.repeat(first_row[chosen], lengths) + offsets]
        for name, metric in metrics.items():
            estimates[name][draw] = metric(rows)
    tail = (1.0 - confidence) / 2.0 * 100.0
    results = {}
    for name, metric in metrics.items():
        defined = estimates[name][np.isfinite(estimates[name])]
        # An interval from a minority of resamples would describe a different population.
        has_interval = len(defined) >= n_resamples / 2
        low, high = np.percentile(defined, [tail, 100.0 - tail]) if has_interval else (math.nan, math.nan)
        results[name] = {"value": metric(everything), "ci_low": float(low), "ci_high": float(high),
                         "resamples_defined": int(len(defined))}
    return results
