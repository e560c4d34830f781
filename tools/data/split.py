#!/usr/bin/python3
"""Leak-free train/val/test manifest: `tools/oac split [--datasets DIR] [--out DIR] [--seed N]`.

One row per unique image content. Images of one OAI patient (both knees) and of one duplicate
cluster (byte-identical or near-identical radiographs) form one group; groups never cross splits.
Every source x label stratum is split about 70/15/15 (by images, whole groups at a time).
Clusters whose labels contradict are dropped (tools/data/audit.py lists them).
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import sys
from collections import Counter, defaultdict
from pathlib import Path

from data import knee_data
from lib.paths import REPO_ROOT

SPLITS = ("train", "val", "test")
CUTS = (("train", 0.70), ("val", 0.85), ("test", float("inf")))   # cumulative share of a stratum
DEFAULT_SEED = 20240611
COLUMNS = ("path", "sha256", "source", "label", "kl_grade", "patient", "cluster", "split",
           "seed_split", "seed_label")


def stratum(content: knee_data.Content) -> tuple[str, str]:
    return (content.source or "unknown", "" if content.label is None else str(content.label))


def assign_splits(inventory: knee_data.Inventory, seed: int) -> dict[int, str]:
    """Split per usable content index.

    Each group belongs to the stratum most of its images are in. Within a stratum the groups are
    ordered by a seeded hash of their key (their smallest sha256) and cut at 70% / 85% of the
    stratum's images. Hash order keeps the split stable: a group that grows or merges moves only
    the groups at the cut points, not the whole assignment.
    """
    members: dict[int, list[int]] = defaultdict(list)
    for index in range(len(inventory.contents)):
        if inventory.usable(index):
            members[inventory.group[index]].append(index)
    by_stratum: dict[tuple[str, str], list[tuple[str, list[int]]]] = defaultdict(list)
    for group in members.values():
        strata = Counter(stratum(inventory.contents[i]) for i in group)
        main_stratum = min(strata, key=lambda k: (-strata[k], k))
        key = min(inventory.contents[i].sha256 for i in group)
        rank = hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()
        by_stratum[main_stratum].append((rank, group))

    assignment = {}
    for groups in by_stratum.values():
        total = sum(len(group) for _, group in groups)
        done = 0
        for _, group in sorted(groups):
            position = (done + len(group) / 2) / total
            split = next(s for s, cut in CUTS if position < cut)
            for index in group:
                assignment[index] = split
            done += len(group)

    # A source too small to reach the test cut still gets its smallest group held out.
    for source in {stratum_key[0] for stratum_key in by_stratum}:
        groups = sorted((len(group), rank, group) for (s, _), ranked in by_stratum.items() if s == source
                        for rank, group in ranked)
        if not any(assignment[i] == "test" for _, _, group in groups for i in group):
            for index in groups[0][2]:
                assignment[index] = "test"
    return assignment


def manifest_rows(inventory: knee_data.Inventory, assignment: dict[int, str]) -> list[dict]:
    rows = []
    for index, split in assignment.items():
        content = inventory.contents[index]
        rows.append({
            "path": content.path,
            "sha256": content.sha256,
            "source": content.source,
            "label": "" if content.label is None else content.label,
            "kl_grade": "" if content.kl_grade is None else content.kl_grade,
            "patient": inventory.patient[index],
            "cluster": inventory.cluster[index],
            "split": split,
            # Every seed folder the content was filed in (duplicates: e.g. "Valid;test").
            "seed_split": ";".join(content.seed_splits),
            "seed_label": ";".join(content.seed_labels),
        })
    return sorted(rows, key=lambda row: row["path"])


def check_invariants(rows: list[dict]) -> None:
    """Raise if a patient or cluster crosses splits, a content repeats, or test lacks a source."""
    for key in ("patient", "cluster"):
        splits_of = defaultdict(set)
        for row in rows:
            splits_of[row[key]].add(row["split"])
        crossing = sorted(k for k, s in splits_of.items() if len(s) > 1)
        if crossing:
            raise AssertionError(f"{len(crossing)} {key} groups cross splits, e.g. {crossing[:5]}")
    repeated = [sha for sha, n in Counter(row["sha256"] for row in rows).items() if n > 1]
    if repeated:
        raise AssertionError(f"{len(repeated)} contents appear in more than one row, e.g. {repeated[:3]}")
    missing = {row["source"] for row in rows} - {row["source"] for row in rows if row["split"] == "test"}
    if missing:
        raise AssertionError(f"the test split has no image of source(s) {sorted(missing)}")


def write_manifest(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def summary(rows: list[dict]) -> str:
    """Rows per split x source x label as a small text table."""
    counts = Counter((row["split"], row["source"], str(row["label"])) for row in rows)
    strata = sorted({(source, label) for _, source, label in counts})
    header = "source   label " + "".join(f"{s:>7}" for s in SPLITS) + "  total"
    lines = [header]
    for source, label in strata:
        cells = [counts[(s, source, label)] for s in SPLITS]
        lines.append(f"{source:<8} {label or '?':>5} " + "".join(f"{c:>7}" for c in cells) + f"{sum(cells):>7}")
    totals = [sum(1 for row in rows if row["split"] == s) for s in SPLITS]
    lines.append(f"{'all':<14}" + "".join(f"{c:>7}" for c in totals) + f"{sum(totals):>7}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    knee_data.add_inventory_arguments(parser)
    parser.add_argument("--out", default=str(REPO_ROOT / "models" / "data"),
                        help="output folder for split.csv (default: models/data)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the group shuffle")
    args = parser.parse_args(argv)

    inventory = knee_data.inventory_from_arguments(args)
    rows = manifest_rows(inventory, assign_splits(inventory, args.seed))
    check_invariants(rows)
    out = Path(args.out) / "split.csv"
    write_manifest(rows, out)
    print(summary(rows))
    print(f"wrote {out} ({len(rows)} rows, seed {args.seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
