#!/usr/bin/python3
"""Choose the polarity rule's two thresholds (the card's preprocess.localise.inverted_profile and
inverted_match) on the training crops, and report what the rule does on the validation crops.

A joint crop is a negative (bone dark) and is turned back when its brightness profiles anti-correlate
with the template's (brightness_profile_match <= -inverted_profile) and so do its gradients
(frame_match <= -inverted_match). Each crop is scored as the core prepares it under the grid's strictest
rule (upright: that rule turns back the dataset's own stored negatives and nothing else, whatever the
card says now) and as its negative, whose scores are exactly the negated ones. The chosen pair catches the most negatives while turning at most MAX_UPRIGHT_TURNED of
the upright training crops.

usage: tools/oac polarity-rule [--write] [--split models/data/eval-split-v1.csv] [--every 3]
  --write puts the thresholds into the shipped and the seed card and the table into models/data/polarity-rule.md
"""
import argparse
import csv
import itertools
import json
from pathlib import Path

import numpy as np

import oac_core
from lib.card import load_card, write_preprocess_choice
from lib.paths import MODEL_CARD, REPO_ROOT, SEED_CARD, datasets_dir

PROFILE_GRID = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
MATCH_GRID = (0.0, 0.05, 0.1, 0.2)
MAX_UPRIGHT_TURNED = 0.001
REPORT = REPO_ROOT / "models/data/polarity-rule.md"


def scores(rows, datasets: Path, spec) -> np.ndarray:
    """[n, 2]: brightness_profile_match and frame_match of every knee the core prepares from the rows."""
    found = []
    for row in rows:
        for knee in oac_core.prepare((datasets / row["path"]).read_bytes(), spec):
            crop = np.asarray(knee["crop"], dtype=np.float32)
            found.append((oac_core.brightness_profile_match(crop, spec), oac_core.frame_match(crop, spec)))
    return np.array(found)


def rule_counts(upright: np.ndarray, profile: float, match: float) -> tuple[int, int]:
    """(upright crops the rule turns, negatives it turns back): a negative's scores are the upright's negated."""
    turned = lambda s: (s[:, 0] <= -profile) & (s[:, 1] <= -match)
    return int(turned(upright).sum()), int(turned(-upright).sum())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--card", type=Path, default=MODEL_CARD)
    parser.add_argument("--split", type=Path, default=REPO_ROOT / "models/data/eval-split-v1.csv")
    parser.add_argument("--datasets", type=Path, default=datasets_dir())
    parser.add_argument("--every", type=int, default=3, help="use every Nth training image")
    parser.add_argument("--write", action="store_true", help="write the chosen thresholds into the card(s)")
    args = parser.parse_args()

    strictest = load_card(args.card)
    strictest["preprocess"]["localise"].update(inverted_profile=max(PROFILE_GRID), inverted_match=max(MATCH_GRID))
    spec = oac_core.parse_model_card(json.dumps(strictest))
    rows = list(csv.DictReader(args.split.open(newline="")))
    train = scores([r for r in rows if r["split"] == "train"][::args.every], args.datasets, spec)
    val = scores([r for r in rows if r["split"] == "val"], args.datasets, spec)

    lines = [f"Polarity rule on {len(train)} training knees (one training image in {args.every}) and {len(val)} validation knees, "
             "each upright and as its negative (`tools/oac polarity-rule`).", "",
             "| inverted_profile | inverted_match | training: upright turned | training: negatives turned back "
             "| validation: upright turned | validation: negatives turned back |",
             "| --- | --- | --- | --- | --- | --- |"]
    allowed = MAX_UPRIGHT_TURNED * len(train)
    best = None
    for profile, match in itertools.product(PROFILE_GRID, MATCH_GRID):
        (train_wrong, train_caught), (val_wrong, val_caught) = (rule_counts(train, profile, match),
                                                                rule_counts(val, profile, match))
        lines.append(f"| {profile} | {match} | {train_wrong} | {train_caught} ({train_caught / len(train):.1%}) "
                     f"| {val_wrong} | {val_caught} ({val_caught / len(val):.1%}) |")
        if train_wrong <= allowed and (best is None or train_caught > best[2]):
            best = (profile, match, train_caught)
    profile, match, _ = best
    lines += ["", f"Chosen: inverted_profile {profile}, inverted_match {match}: the most negatives turned back with at "
                  f"most {MAX_UPRIGHT_TURNED:.1%} of the upright training knees turned."]
    print("\n".join(lines))
    if args.write:
        write_preprocess_choice(
            (args.card, SEED_CARD),
            lambda card: card["preprocess"]["localise"].update(inverted_profile=profile, inverted_match=match),
            REPORT, "Polarity rule", lines)


if __name__ == "__main__":
    main()
