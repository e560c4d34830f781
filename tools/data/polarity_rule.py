#!/usr/bin/python3
"""Fit the polarity rule (the card's preprocess.localise.polarity) on the training crops, and report what it
does on the validation crops.

A joint crop is a negative (bone dark) and is turned back when the weighted sum of its polarity measures
(oac/localise.hpp: the row-brightness profile's and the gradients' match with the knee template, the mean
brightness, the skewness of the brightness) is at or below -threshold. Every measure changes sign on the
negative, so each crop is measured once, as the core prepares it under the strictest rule (STRICTEST: it
turns back the dataset's own stored negatives and nothing else), and its negative's measures are the
upright's negated. The weights are a logistic regression without intercept, upright against negative; the
threshold is the lowest that turns at most MAX_UPRIGHT_TURNED of the upright training crops. The report fits the
measures in nested sets, so each measure's share shows; the set that turns back the most training negatives
is chosen.

usage: tools/oac polarity-rule [--write] [--split models/data/eval-split-v1.csv] [--every 3]
  --write puts the rule into the shipped and the seed card and the table into models/data/polarity-rule.md
"""
import argparse
import csv
import json
from pathlib import Path

import numpy as np

import oac_core
from lib.card import load_card, write_preprocess_choice
from lib.paths import MODEL_CARD, REPO_ROOT, SEED_CARD, datasets_dir

MEASURES = ("profile", "frame", "brightness", "skew")
NESTED_SETS = (MEASURES[:2], MEASURES[:3], MEASURES)
MAX_UPRIGHT_TURNED = 0.001
REPORT = REPO_ROOT / "models/data/polarity-rule.md"
# Turns back only crops whose row profile and gradients both clearly anti-correlate with the template's:
# the dataset's own stored negatives, so that they are measured upright like every other crop.
STRICTEST = {"profile": 1.0, "frame": 1.0, "brightness": 0.0, "skew": 0.0, "threshold": 1.0}


def measures(rows, datasets: Path, spec) -> np.ndarray:
    """[n, 4]: the polarity measures of every knee the core prepares from the rows, in MEASURES order."""
    found = []
    for row in rows:
        for knee in oac_core.prepare((datasets / row["path"]).read_bytes(), spec):
            measured = oac_core.polarity_measures(np.asarray(knee["crop"], dtype=np.float32), spec)
            found.append([measured[name] for name in MEASURES])
    return np.array(found)


def fit_weights(upright: np.ndarray, l2: float = 1e-3, steps: int = 50) -> np.ndarray:
    """Logistic regression without intercept (Newton's method): upright crops score positive, their negatives
    (the measures negated) negative. A small L2 keeps it finite when the training crops separate perfectly."""
    x = np.concatenate([upright, -upright])
    y = np.r_[np.ones(len(upright)), np.zeros(len(upright))]
    weights = np.zeros(x.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(x @ weights)))
        gradient = x.T @ (p - y) / len(y) + l2 * weights
        hessian = (x * (p * (1 - p))[:, None]).T @ x / len(y) + l2 * np.eye(x.shape[1])
        weights -= np.linalg.solve(hessian, gradient)
        if np.abs(gradient).max() < 1e-10:
            break
    return weights


def threshold_for(upright_scores: np.ndarray, allowed: int) -> float:
    """The lowest threshold >= 0 at which at most `allowed` upright crops score <= -threshold: halfway between
    the last crop it may turn and the first it must not."""
    scores = np.sort(upright_scores)
    if scores[allowed] > 0:
        return 0.0
    below = scores[allowed - 1] if allowed else scores[0] - 1.0
    return float(-(below + scores[allowed]) / 2)


def rule_counts(upright: np.ndarray, weights: np.ndarray, threshold: float) -> tuple[int, int]:
    """(upright crops the rule turns, negatives it turns back): a negative's score is its upright's negated."""
    scores = upright @ weights
    return int((scores <= -threshold).sum()), int((-scores <= -threshold).sum())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--card", type=Path, default=MODEL_CARD)
    parser.add_argument("--split", type=Path, default=REPO_ROOT / "models/data/eval-split-v1.csv")
    parser.add_argument("--datasets", type=Path, default=datasets_dir())
    parser.add_argument("--every", type=int, default=3, help="use every Nth training image")
    parser.add_argument("--write", action="store_true", help="write the fitted rule into the card(s)")
    args = parser.parse_args()

    upright_card = load_card(args.card)
    upright_card["preprocess"]["localise"]["polarity"] = dict(STRICTEST)
    spec = oac_core.parse_model_card(json.dumps(upright_card))
    rows = list(csv.DictReader(args.split.open(newline="")))
    train = measures([r for r in rows if r["split"] == "train"][::args.every], args.datasets, spec)
    val = measures([r for r in rows if r["split"] == "val"], args.datasets, spec)

    allowed = int(MAX_UPRIGHT_TURNED * len(train))
    lines = [f"Polarity rule on {len(train)} training knees (one training image in {args.every}) and {len(val)} "
             "validation knees, each upright and as its negative (`tools/oac polarity-rule`). Weights and threshold "
             f"are fitted on the training knees, turning at most {allowed} upright ones; validation only reports.", "",
             "| measures | weights | threshold | training: upright turned | training: negatives turned back "
             "| validation: upright turned | validation: negatives turned back |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    best = None
    for names in NESTED_SETS:
        columns = [MEASURES.index(name) for name in names]
        weights = np.zeros(len(MEASURES))
        weights[columns] = np.round(fit_weights(train[:, columns]), 4)
        threshold = threshold_for(train @ weights, allowed)
        (train_wrong, train_caught), (val_wrong, val_caught) = (rule_counts(train, weights, threshold),
                                                                rule_counts(val, weights, threshold))
        lines.append(f"| {', '.join(names)} | {', '.join(f'{w:.3f}' for w in weights[columns])} | {threshold:.3f} "
                     f"| {train_wrong} | {train_caught} ({train_caught / len(train):.1%}) "
                     f"| {val_wrong} | {val_caught} ({val_caught / len(val):.1%}) |")
        if best is None or train_caught > best[2]:
            best = (names, weights, train_caught, threshold)
    names, weights, _, threshold = best
    rule = {name: float(w) for name, w in zip(MEASURES, weights)}
    rule["threshold"] = round(threshold, 4)
    lines += ["", f"Chosen: {', '.join(names)} (the most training negatives turned back): {json.dumps(rule)}."]
    print("\n".join(lines))
    if args.write:
        measured = "models/data/polarity-rule.md (tools/oac polarity-rule)"
        write_preprocess_choice((args.card, SEED_CARD),
                                lambda card: card["preprocess"]["localise"].update(polarity=dict(rule, measured=measured)),
                                REPORT, "Polarity rule", lines)


if __name__ == "__main__":
    main()
