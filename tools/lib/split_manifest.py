"""The split manifest (models/data/split.csv): one row per image content, read the same by every stage."""
from __future__ import annotations

import csv
from pathlib import Path

N_GRADES = 5
SPLIT_COLUMNS = ("path", "sha256", "source", "label", "kl_grade", "patient", "cluster", "split",
                 "seed_split", "seed_label")


class InputError(Exception):
    """A problem with an input file, worded for the person who passed it."""


def load_split(path: Path) -> list[dict]:
    try:
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in SPLIT_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise InputError(f"{path}: split manifest lacks column(s) {', '.join(missing)}")
            rows = list(reader)
    except FileNotFoundError:
        raise InputError(f"{path}: split manifest not found (tools/oac split writes models/data/split.csv)") from None
    for line, row in enumerate(rows, start=2):
        if row["label"] not in ("", "0", "1"):
            raise InputError(f"{path}:{line}: label must be 0, 1 or empty, not {row['label']!r}")
        if row["kl_grade"] not in ("",) + tuple(str(g) for g in range(N_GRADES)):
            raise InputError(f"{path}:{line}: kl_grade must be 0-4 or empty, not {row['kl_grade']!r}")
    return rows
