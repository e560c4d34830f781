#!/usr/bin/python3
"""Mark the rows of a split that a model has already seen, so it is scored only on unseen groups.

A model trained on one version of the split manifest may meet a later version whose grouping moved
images between splits (e.g. near-duplicate clusters found after training started). Scoring it on the
later test split would let it be tested on images it trained on. This writes a copy of the current
split in which every val/test row whose patient or duplicate cluster holds any image (by sha256) from
the training rows of `--trained-on` gets split = "seen"; evaluation and calibration then skip them.

usage: tools/oac exclude-seen --trained-on OLD.csv [--split models/data/split.csv] --out NEW.csv
"""
import argparse
import collections
import csv
from pathlib import Path

from lib.paths import REPO_ROOT


def seen_groups(rows, trained_sha):
    groups = collections.defaultdict(set)
    for row in rows:
        if row["sha256"] in trained_sha:
            groups["patient"].add(row["patient"])
            groups["cluster"].add(row["cluster"])
    return groups


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trained-on", type=Path, required=True, help="the split manifest the model was trained with")
    parser.add_argument("--split", type=Path, default=REPO_ROOT / "models" / "data" / "split.csv")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    trained_sha = {r["sha256"] for r in csv.DictReader(open(args.trained_on, newline="")) if r["split"] == "train"}
    rows = list(csv.DictReader(open(args.split, newline="")))
    groups = seen_groups(rows, trained_sha)
    marked = collections.Counter()
    for row in rows:
        if row["split"] in ("val", "test") and (row["patient"] in groups["patient"] or row["cluster"] in groups["cluster"]):
            marked[(row["split"], row["source"])] += 1
            row["split"] = "seen"
    with open(args.out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        writer.writeheader()
        writer.writerows(rows)
    for (split, source), count in sorted(marked.items()):
        print(f"{split}/{source}: {count} rows seen in training -> split 'seen'")
    print(f"wrote {args.out} ({sum(marked.values())} of {len(rows)} rows marked)")


if __name__ == "__main__":
    main()
