#!/usr/bin/python3
"""Fit the card's temperatures, operating threshold and OOD threshold on the clean validation split.

    tools/evaluation/calibrate.py --predictions VAL.jsonl --split models/data/split.csv --card models/oa-inceptionv3.json

VAL.jsonl is `tools/oac classify` output for the validation images. Only the raw model outputs
(oa_logit, kl_logits, ood_score) are used, so the card the predictions were made with does not matter.
With --versions DIR (the validation images as people export them: tools/evaluation/robustness.py --rows
val, each version classified into DIR/<version>.jsonl) the temperatures and the OA bias are fitted on the
published images and every version together, so P(OA) stays calibrated on a JPEG, a turned or framed
film; the threshold, KL rule, KL set and OOD threshold stay fitted on the published images.
Writes `calibration`, `threshold`, `threshold_rule`, `kl_grade`, `kl_set` and `ood` into the card; every
other field is kept.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import minimize, minimize_scalar
from scipy.stats import norm

from evaluation import eval_io, robustness
from lib import metrics
from lib.card import insert_after, load_card, save_card
from lib.paths import datasets_dir_if_present
from lib.split_manifest import InputError, N_GRADES, load_split
from lib.numeric import sigmoid, softmax

MIN_SENSITIVITY = 0.90
# The sensitivity the card states must hold beyond the validation sample it was chosen on: a threshold placed
# exactly at validation sensitivity 0.90 delivered 0.865 on the clean test (4.1.0).
SENSITIVITY_CONFIDENCE = 0.95
KL_SET_COVERAGE = 0.90
OOD_QUANTILE = 0.99
# Candidate cut points on the expected KL grade, and the seed of the validation halves they are judged on.
KL_CUT_GRID = np.linspace(0.0, 4.0, 161)
KL_RULE_SEED = 7
# A source's own Platt fit is judged only where the source has this many labelled validation images.
MIN_SOURCE_IMAGES = 40
# Search range for log(1 / T): temperatures from about 0.001 to 1100, far beyond any sane fit.
LOG_INVERSE_TEMPERATURE_BOUNDS = (-7.0, 7.0)
# Search range of the OA bias: a shift of the log-odds by up to 20, far beyond any sane fit.
BIAS_BOUNDS = (-20.0, 20.0)


def binary_nll(logits: np.ndarray, labels: np.ndarray, temperature: float, bias: float = 0.0) -> float:
    """Mean -log P(label) under sigmoid(logit / T + bias)."""
    scaled = np.asarray(logits, dtype=np.float64) / temperature + bias
    # -log sigmoid(s) = log(1 + e^-s); -log(1 - sigmoid(s)) = log(1 + e^s)
    return float(np.mean(np.logaddexp(0.0, np.where(np.asarray(labels) == 1, -scaled, scaled))))


def multiclass_nll(logits: np.ndarray, grades: np.ndarray, temperature: float) -> float:
    """Mean -log P(grade) under softmax(logits / T)."""
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    peak = scaled.max(axis=1, keepdims=True)
    log_normaliser = peak[:, 0] + np.log(np.exp(scaled - peak).sum(axis=1))
    return float(np.mean(log_normaliser - scaled[np.arange(len(scaled)), grades]))


def fit_temperature(nll) -> float:
    """T minimising nll(T). The NLL is convex in 1/T (the logits scale linearly), so a bounded scalar
    search over log(1/T) finds the global minimum."""
    result = minimize_scalar(lambda log_beta: nll(math.exp(-log_beta)), bounds=LOG_INVERSE_TEMPERATURE_BOUNDS,
                             method="bounded", options={"xatol": 1e-7})
    # A fit as good as the edge of the range means the NLL keeps falling outward (or is flat): no finite T.
    if any(nll(math.exp(-bound)) <= result.fun + 1e-12 for bound in LOG_INVERSE_TEMPERATURE_BOUNDS):
        raise ValueError(f"the temperature fit ran to the edge of its range (T = {math.exp(-result.x):.3g}): "
                         "the validation outputs are degenerate (e.g. perfectly separated or constant)")
    return math.exp(-result.x)


def fit_temperature_and_bias(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(T, bias) minimising binary_nll: Platt scaling. The NLL is convex in (1/T, bias), so a bounded
    quasi-Newton search from (1, 0) finds the global minimum."""
    objective = lambda x: binary_nll(logits, labels, math.exp(-x[0]), x[1])
    result = minimize(objective, x0=np.zeros(2), method="L-BFGS-B",
                      bounds=[LOG_INVERSE_TEMPERATURE_BOUNDS, BIAS_BOUNDS])
    if not result.success:
        raise ValueError(f"the temperature and bias fit did not converge ({result.message})")
    # As for fit_temperature: a fit matched at the edge of the range means the NLL keeps falling outward.
    if any(objective([edge, result.x[1]]) <= result.fun + 1e-12 for edge in LOG_INVERSE_TEMPERATURE_BOUNDS):
        raise ValueError(f"the temperature and bias fit ran to the edge of its range (T = {math.exp(-result.x[0]):.3g}, "
                         f"bias {result.x[1]:.3g}): the validation outputs are degenerate (e.g. perfectly separated "
                         "or constant)")
    return math.exp(-result.x[0]), float(result.x[1])


def wilson_lower_bound(successes: int, trials: int, confidence: float) -> float:
    """One-sided Wilson score lower bound of a proportion: at `confidence`, the true rate is at least this.
    At confidence 0.5 it is the observed fraction."""
    z = norm.ppf(confidence)
    fraction = successes / trials
    centre = fraction + z * z / (2 * trials)
    spread = z * math.sqrt(fraction * (1 - fraction) / trials + z * z / (4 * trials * trials))
    return (centre - spread) / (1 + z * z / trials)


def positives_needed(positives: int, min_sensitivity: float, confidence: float) -> int:
    """The fewest of `positives` the threshold must keep so that sensitivity >= min_sensitivity holds at
    `confidence` by the Wilson bound."""
    for kept in range(1, positives + 1):
        if wilson_lower_bound(kept, positives, confidence) >= min_sensitivity - 1e-12:
            return kept
    raise ValueError(f"{positives} positive validation images cannot show sensitivity >= {min_sensitivity:g} at "
                     f"{confidence:.0%} confidence even if every one is kept; the validation split needs more")


def threshold_for_sensitivity(labels: np.ndarray, scores: np.ndarray, min_sensitivity: float,
                              confidence: float) -> float:
    """Threshold t for `score >= t` with the highest specificity among those whose sensitivity is at least
    min_sensitivity at `confidence` (positives_needed).

    Specificity only falls as t falls, so the best t is the score of the k-th highest positive, k from
    positives_needed. It is moved halfway down to the next lower score: the same decisions on this data, with
    a margin against rounding when the core recomputes P(OA).
    """
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    positives = np.sort(scores[labels])[::-1]
    if len(positives) == 0 or labels.all():
        raise ValueError("threshold selection needs both positive and negative validation images")
    cut = positives[positives_needed(len(positives), min_sensitivity, confidence) - 1]
    below = scores[scores < cut]
    return float((cut + below.max()) / 2.0) if len(below) else float(cut)


def ood_threshold(knee_scores: np.ndarray, quantile: float) -> float:
    """Smallest validation-knee score with at least `quantile` of validation knees at or below it."""
    ordered = np.sort(np.asarray(knee_scores, dtype=np.float64))
    if len(ordered) == 0:
        raise ValueError("no validation knee has an ood_score")
    return float(ordered[math.ceil(quantile * len(ordered) - 1e-9) - 1])


def aps_scores(probs: np.ndarray, grades: np.ndarray) -> np.ndarray:
    """Non-conformity score of deterministic adaptive prediction sets: the probability of the grades ranked
    before the true one (by decreasing probability, ties to the lower grade: the core's order).

    The core's set takes grades in that order until their cumulative probability exceeds the threshold,
    so it holds a grade exactly when this score is at most the threshold: coverage is what the quantile
    states. (Scoring the mass up to and including the true grade instead, with the same sets, holds the
    grade that crosses the threshold for free and covers far more than stated: 0.99 for a stated 0.90 on
    calibrated probabilities; tests/python/evaluation/test_kl_set.py.)
    """
    probs = np.asarray(probs, dtype=np.float64)
    order = np.argsort(-probs, axis=1, kind="stable")
    ranked = np.take_along_axis(probs, order, axis=1)
    before = np.cumsum(ranked, axis=1) - ranked
    rank_of_truth = np.argmax(order == np.asarray(grades)[:, None], axis=1)
    return before[np.arange(len(probs)), rank_of_truth]


def conformal_threshold(scores: np.ndarray, coverage: float) -> float:
    """Split-conformal threshold: the ceil((n + 1) * coverage)-th smallest of the n calibration scores, so a
    new exchangeable case's score is at most it with probability >= coverage. 1 (every grade) when that
    rank exceeds n; never above 1 (a cumulative probability that rounding took past 1)."""
    ordered = np.sort(np.asarray(scores, dtype=np.float64))
    if len(ordered) == 0:
        raise ValueError("no validation image has a KL grade for the KL prediction set")
    if not 0 < coverage < 1:
        raise ValueError(f"the KL set coverage must be between 0 and 1, not {coverage}")
    rank = math.ceil((len(ordered) + 1) * coverage - 1e-9)
    return 1.0 if rank > len(ordered) else min(float(ordered[rank - 1]), 1.0)


def grades_by_cut_points(expected: np.ndarray, cuts) -> np.ndarray:
    """The core's cut-point rule: the number of cut points below the expected grade."""
    return (np.asarray(expected)[:, None] > np.asarray(cuts)[None, :]).sum(axis=1)


def kl_grade_score(grades: np.ndarray, predicted: np.ndarray) -> float:
    """What a grading rule is chosen by: QWK plus accuracy, the two KL targets together."""
    return metrics.quadratic_weighted_kappa(grades, predicted, N_GRADES) + metrics.accuracy(grades, predicted)


def tune_cut_points(expected: np.ndarray, grades: np.ndarray) -> np.ndarray:
    """Cut points maximising kl_grade_score: coordinate ascent from the midpoints 0.5 ... 3.5, each point
    searched between its neighbours so they stay ascending."""
    cuts = np.array([0.5, 1.5, 2.5, 3.5])
    for _ in range(4):
        for i in range(len(cuts)):
            low, high = (cuts[i - 1] if i else 0.0), (cuts[i + 1] if i + 1 < len(cuts) else 4.0)
            candidates = KL_CUT_GRID[(KL_CUT_GRID >= low) & (KL_CUT_GRID <= high)]
            scores = [kl_grade_score(grades, grades_by_cut_points(expected, np.r_[cuts[:i], c, cuts[i + 1:]]))
                      for c in candidates]
            cuts[i] = candidates[int(np.argmax(scores))]
    return cuts


def patient_half(units: np.ndarray) -> np.ndarray:
    """Mask of a fixed random half of the resampling units (patients), for fitting on one half and judging on
    the other."""
    patients = np.unique(units)
    return np.isin(units, np.random.default_rng(KL_RULE_SEED).permutation(patients)[: len(patients) // 2])


def per_source_check(scored: eval_io.Scored, oa_temperature: float, oa_bias: float) -> dict:
    """Does one calibration hold for every source? Per source with enough labelled validation images: its ECE
    under the card's shared fit, and under a Platt fit of its own, cross-fitted over halves of its patients (an
    own fit judged on the images it was fitted on would flatter it)."""
    labelled = scored.ok & ~np.isnan(scored.label)
    figures = {}
    for source in np.unique(scored.source[labelled]):
        mine = labelled & (scored.source == source)
        logits, labels = scored.oa_logit[mine], scored.label[mine].astype(int)
        first = patient_half(scored.unit[mine])
        if mine.sum() < MIN_SOURCE_IMAGES or any(len(np.unique(labels[half])) < 2 for half in (first, ~first)):
            continue
        own = np.empty(len(logits))
        try:
            for fit, judged in ((first, ~first), (~first, first)):
                temperature, bias = fit_temperature_and_bias(logits[fit], labels[fit])
                own[judged] = sigmoid(logits[judged] / temperature + bias)
            own_ece = metrics.expected_calibration_error(labels, own)
        except ValueError:   # a half the network separates perfectly has no finite fit of its own
            own_ece = None
        figures[str(source)] = {
            "images": int(mine.sum()),
            "ece_shared_fit": metrics.expected_calibration_error(labels, sigmoid(logits / oa_temperature + oa_bias)),
            "ece_own_fit_cross_fitted": own_ece}
    return figures


def own_fit_text(figures: dict) -> str:
    own = figures["ece_own_fit_cross_fitted"]
    return "no finite own fit (a half of it perfectly separated)" if own is None else f"{own:.3f} own"


def choose_kl_grade_rule(kl_probs: np.ndarray, grades: np.ndarray, units: np.ndarray) -> tuple[dict, dict]:
    """The card's kl_grade: cut points on the expected grade when they read the validation grades better than
    the argmax, judged cross-fitted (cut points tuned on one half of the validation patients score the other
    half, both ways) so tuning does not flatter them; the shipped points are then tuned on all of validation.
    Returns the card entry and the figures it was chosen on."""
    expected = kl_probs @ np.arange(N_GRADES)
    first = patient_half(units)
    by_cuts = np.empty_like(grades)
    for fit, scored in ((first, ~first), (~first, first)):
        by_cuts[scored] = grades_by_cut_points(expected[scored], tune_cut_points(expected[fit], grades[fit]))
    by_argmax = kl_probs.argmax(axis=1)
    figures = {name: {"accuracy": metrics.accuracy(grades, predicted),
                      "qwk": metrics.quadratic_weighted_kappa(grades, predicted, N_GRADES)}
               for name, predicted in (("argmax", by_argmax), ("cut_points", by_cuts))}
    compared = (f"validation, cross-fitted over two halves of the patients: argmax accuracy "
                f"{figures['argmax']['accuracy']:.4f} QWK {figures['argmax']['qwk']:.4f}; cut points accuracy "
                f"{figures['cut_points']['accuracy']:.4f} QWK {figures['cut_points']['qwk']:.4f}")
    if kl_grade_score(grades, by_cuts) > kl_grade_score(grades, by_argmax):
        cuts = tune_cut_points(expected, grades)
        entry = {"rule": "cut_points", "cut_points": [float(c) for c in cuts],
                 "method": "the number of cut points below the expected grade (sum of grade x calibrated "
                           "probability); cut points tuned for QWK + accuracy on the validation split, chosen "
                           f"over the argmax on {compared}"}
    else:
        entry = {"rule": "argmax", "method": f"the most probable grade, chosen over cut points on {compared}"}
    return entry, figures


def labelled_outputs(scored: eval_io.Scored) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(OA logits, OA labels) of the images with an OA label, (KL logits, grades) of those with a KL grade."""
    binary = scored.ok & ~np.isnan(scored.label)
    graded = scored.ok & (scored.kl_grade >= 0)
    return (scored.oa_logit[binary], scored.label[binary].astype(int), scored.kl_logits[graded],
            scored.kl_grade[graded])


def calibrate(scored: eval_io.Scored, card: dict, min_sensitivity: float, quantile: float,
              kl_set_coverage: float = KL_SET_COVERAGE,
              versions: dict[str, eval_io.Scored] | None = None,
              sensitivity_confidence: float = SENSITIVITY_CONFIDENCE) -> tuple[dict, list[str]]:
    """Returns the updated card and the summary lines. `versions`: the validation images altered as people
    export them, by version name; the temperatures and the OA bias are fitted on them and the published
    images together."""
    versions = versions or {}
    ok = scored.ok
    graded = ok & (scored.kl_grade >= 0)
    # The published images first: their outputs alone choose the threshold, the KL rule and the KL set.
    fitted = [labelled_outputs(s) for s in [scored, *versions.values()]]
    oa_logits, labels, kl_logits, grades = fitted[0]
    if not len(labels) or not len(grades):
        raise ValueError("validation needs images with a known OA label and with a known KL grade")
    pooled_oa_logits, pooled_labels, pooled_kl_logits, pooled_grades = (np.concatenate(part) for part in zip(*fitted))

    oa_temperature, oa_bias = fit_temperature_and_bias(pooled_oa_logits, pooled_labels)
    kl_temperature = fit_temperature(lambda t: multiclass_nll(pooled_kl_logits, pooled_grades, t))
    p_oa = sigmoid(oa_logits / oa_temperature + oa_bias)
    threshold = threshold_for_sensitivity(labels, p_oa, min_sensitivity, sensitivity_confidence)
    kl_probs = softmax(kl_logits / kl_temperature)
    kl_grade_rule, kl_grade_figures = choose_kl_grade_rule(kl_probs, grades, scored.unit[graded])
    kl_set_threshold = conformal_threshold(aps_scores(kl_probs, grades), kl_set_coverage)
    knee_scores = np.array([s for knees in scored.knee_ood_scores for s in knees])
    ood = ood_threshold(knee_scores, quantile)

    updated = dict(card)
    updated["calibration"] = {
        "oa_temperature": oa_temperature,
        "oa_bias": oa_bias,
        "kl_temperature": kl_temperature,
        "method": "Platt scaling for OA and temperature scaling for KL: T and bias minimise the mean negative "
                  "log-likelihood of sigmoid(oa_logit / T + bias) against the OA label (KL >= 2), T that of "
                  "softmax(kl_logits / T) against the KL grade",
        "fitted_on": f"clean validation split: {len(labels)} images with an OA label, {len(grades)} with a KL grade"
                     + (f"; and the same images as {len(versions)} altered versions ({', '.join(versions)}: "
                        "tools/evaluation/robustness.py --rows val), each weighing as much as the published images"
                        if versions else ""),
    }
    updated["threshold"] = threshold
    updated = insert_after(updated, "threshold", "threshold_rule",
                           f"highest specificity on the validation split subject to sensitivity >= "
                           f"{min_sensitivity:g} at {sensitivity_confidence:.0%} one-sided confidence (Wilson lower "
                           f"bound over the validation positives), on calibrated P(OA); halfway to the next lower "
                           f"score")
    # The page says in words what the threshold promises, from these numbers rather than from the rule's text.
    updated = insert_after(updated, "threshold_rule", "threshold_target",
                           {"sensitivity": min_sensitivity, "confidence": sensitivity_confidence})
    updated = insert_after(updated, "threshold_target", "kl_grade", kl_grade_rule)
    updated = insert_after(updated, "kl_grade", "kl_set", {
        "coverage": kl_set_coverage,
        "threshold": kl_set_threshold,
        "method": "split conformal prediction, adaptive prediction sets without randomisation: the set holds the "
                  "KL grades in order of decreasing calibrated probability (ties: the lower grade first) until "
                  "their cumulative probability exceeds the threshold, the ceil((n + 1) x coverage)-th smallest of "
                  "the n validation scores (score: calibrated probability of the grades ranked before the true one)",
        "fitted_on": f"clean validation split: {len(grades)} images with a KL grade",
    })
    updated["ood"] = dict(card.get("ood", {}))
    updated["ood"]["threshold"] = ood
    updated["ood"]["rule"] = (f"{quantile:g} quantile of ood_score over the {len(knee_scores)} validation knees "
                              f"(smallest score with >= {quantile:.0%} at or below it): "
                              f"about {1 - quantile:.0%} of in-distribution knees are refused")

    by_source = "; ".join(f"{source} ({f['images']} images) {f['ece_shared_fit']:.3f} shared, {own_fit_text(f)}"
                          for source, f in per_source_check(scored, oa_temperature, oa_bias).items())
    updated["calibration"]["per_source_check"] = (
        "ECE of P(OA) on the validation images of each source under this shared fit, and under a Platt fit of "
        f"the source's own (cross-fitted over halves of its patients): {by_source}")

    predicted = p_oa >= threshold
    version_lines = []
    if versions:
        # What fitting on the versions buys: each set's ECE under the fit on the published images alone, and now.
        alone_temperature, alone_bias = fit_temperature_and_bias(oa_logits, labels)
        for name, (set_logits, set_labels, _, _) in zip(["published", *versions], fitted):
            alone = metrics.expected_calibration_error(set_labels, sigmoid(set_logits / alone_temperature + alone_bias))
            now = metrics.expected_calibration_error(set_labels, sigmoid(set_logits / oa_temperature + oa_bias))
            version_lines.append(f"  {name}: ECE {alone:.4f} fitted on the published images alone, {now:.4f} "
                                 "fitted with the versions")
    kl_before, kl_after = softmax(kl_logits), kl_probs
    kl_sets = eval_io.kl_sets(kl_logits, updated)   # as the product computes them, from the updated card
    summary = [
        f"validation: {len(scored)} images matched, {int((~ok).sum())} failed to classify, "
        f"{len(labels)} with an OA label ({int(labels.sum())} OA), {len(grades)} with a KL grade",
        f"OA temperature {oa_temperature:.4f}, bias {oa_bias:.4f}: NLL {binary_nll(oa_logits, labels, 1.0):.4f} -> "
        f"{binary_nll(oa_logits, labels, oa_temperature, oa_bias):.4f}, ECE "
        f"{metrics.expected_calibration_error(labels, sigmoid(oa_logits)):.4f} -> "
        f"{metrics.expected_calibration_error(labels, p_oa):.4f}",
        *version_lines,
        f"  ECE per source, with the shared fit and with its own (cross-fitted): {by_source}",
        f"KL temperature {kl_temperature:.4f}: NLL {multiclass_nll(kl_logits, grades, 1.0):.4f} -> "
        f"{multiclass_nll(kl_logits, grades, kl_temperature):.4f}, top-label ECE "
        f"{metrics.top_label_calibration_error(grades, kl_before):.4f} -> "
        f"{metrics.top_label_calibration_error(grades, kl_after):.4f}",
        f"threshold {threshold:.6f} on calibrated P(OA): validation sensitivity "
        f"{metrics.sensitivity(labels, predicted):.4f}, specificity {metrics.specificity(labels, predicted):.4f}, "
        f"AUC {metrics.auc(labels, p_oa):.4f}",
        f"KL grade by {kl_grade_rule['rule']}"
        + (f" {', '.join(f'{c:.3f}' for c in kl_grade_rule['cut_points'])}" if "cut_points" in kl_grade_rule else "")
        + ": " + "; ".join(f"{name} accuracy {f['accuracy']:.4f} QWK {f['qwk']:.4f}"
                           for name, f in kl_grade_figures.items()) + " (validation, cross-fitted)",
        f"KL set threshold {kl_set_threshold:.6f} for {kl_set_coverage:.0%} coverage: validation coverage "
        f"{float(np.mean(kl_sets[np.arange(len(grades)), grades])):.4f}, mean set size "
        f"{float(kl_sets.sum(axis=1).mean()):.3f}",
        f"OOD threshold {ood:.6g}: {float(np.mean(knee_scores > ood)):.2%} of {len(knee_scores)} "
        "validation knees refused",
    ]
    return updated, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--predictions", required=True, type=Path, help="oac classify output for the validation images")
    parser.add_argument("--split", required=True, type=Path, help="split manifest (models/data/split.csv)")
    parser.add_argument("--card", required=True, type=Path, help="model card to update in place")
    parser.add_argument("--datasets", type=Path, default=None, help=eval_io.DATASETS_HELP)
    parser.add_argument("--versions", type=Path, default=None,
                        help="folder of the validation images' altered versions and their predictions "
                             "(robustness.py --rows val, DIR/<version>.jsonl): fit the temperatures on them too")
    parser.add_argument("--min-sensitivity", type=float, default=MIN_SENSITIVITY)
    parser.add_argument("--sensitivity-confidence", type=float, default=SENSITIVITY_CONFIDENCE,
                        help=f"confidence that sensitivity >= --min-sensitivity holds beyond validation "
                             f"(default {SENSITIVITY_CONFIDENCE}; 0.5 asks only the validation figure)")
    parser.add_argument("--ood-quantile", type=float, default=OOD_QUANTILE)
    parser.add_argument("--kl-set-coverage", type=float, default=KL_SET_COVERAGE,
                        help=f"coverage of the KL prediction set (default {KL_SET_COVERAGE})")
    args = parser.parse_args(argv)
    try:
        card = load_card(args.card)
        rows = load_split(args.split)
        scored = eval_io.join(eval_io.load_predictions(args.predictions), rows,
                              args.datasets or datasets_dir_if_present())
        validation = eval_io.only(scored, scored.split == "val", "validation split", args.predictions)
        versions = {}
        for version in (robustness.VERSIONS if args.versions else ()):
            altered = eval_io.join(eval_io.version_predictions(args.versions, version), rows)
            versions[version] = eval_io.only(altered, altered.split == "val", f"validation split ({version})",
                                             args.versions / version)
        updated, summary = calibrate(validation, card, args.min_sensitivity, args.ood_quantile, args.kl_set_coverage,
                                     versions, args.sensitivity_confidence)
    except (InputError, ValueError) as error:
        sys.exit(f"calibrate: {error}")
    save_card(args.card, updated)
    print("\n".join(summary))
    print(f"wrote calibration, threshold, KL grade rule, KL set and OOD threshold into {args.card}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
