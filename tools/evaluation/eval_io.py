"""Inputs shared by calibrate.py and evaluate.py: the split manifest and `oac classify` JSON lines.

The split has one row per image content (sha256), named by one representative path. Predictions are
joined to rows by path -- the `file` a prediction names may be absolute or relative to anywhere, so
the longest trailing part of it that is a split path wins -- and otherwise by content hash when the
file can be read (another copy of the same bytes, a renamed file).
"""
from __future__ import annotations

import csv
import hashlib
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path, PurePath

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from lib.core import CoreNotBuilt, load_core
from lib.numeric import sigmoid, softmax
from lib.split_manifest import N_GRADES, SPLIT_COLUMNS, InputError, load_split

SEED_DATASET = "Osteoarthritis_Dataset"
SEED_LABELS = ("Normal", "Osteoarthritis")


def seed_test_files(datasets: Path) -> list[Path]:
    """Every file of the seed dataset's test folders, duplicates included (the seed protocol scores them all)."""
    return sorted(f for label in SEED_LABELS for f in (datasets / SEED_DATASET / "test" / label).glob("*.png"))


def load_predictions(path: Path) -> list[dict]:
    records = []
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        raise InputError(f"{path}: predictions file not found") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise InputError(f"{path}:{number}: not a JSON object ({error.msg})") from None
        if not isinstance(record, dict) or "file" not in record or "ok" not in record:
            raise InputError(f"{path}:{number}: expected an `oac classify` object with 'file' and 'ok'")
        if record["ok"]:
            absent = [k for k in ("p_oa", "oa", "oa_logit", "kl_logits", "ood_score") if k not in record]
            if absent:
                raise InputError(f"{path}:{number}: prediction for {record['file']} lacks {', '.join(absent)}")
            if len(record["kl_logits"]) != N_GRADES:
                raise InputError(f"{path}:{number}: kl_logits must have {N_GRADES} values")
        records.append(record)
    if not records:
        raise InputError(f"{path}: no predictions in the file")
    return records


def version_predictions(folder: Path, version: str) -> list[dict]:
    """An altered version's predictions (tools/evaluation/robustness.py), each file renamed to the dataset path
    it was made from (the version's files.csv), so it joins the split row of its original."""
    listing = folder / version / "files.csv"
    try:
        with listing.open(newline="") as handle:
            original = {row["file"]: row["original"] for row in csv.DictReader(handle)}
    except FileNotFoundError:
        raise InputError(f"{listing} not found: write the versions with tools/evaluation/robustness.py") from None
    records = load_predictions(folder / f"{version}.jsonl")
    for record in records:
        name = Path(record["file"]).name
        if name not in original:
            raise InputError(f"{record['file']} is not listed in {listing}")
        record["file"] = original[name]
    return records


def knee_ood_scores(record: dict) -> list[float]:
    """OOD score of every knee of an image (a bilateral image has two)."""
    knees = record.get("knees") or [record]
    return [float(knee["ood_score"]) for knee in knees]


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def match_split_rows(records: list[dict], rows: list[dict], datasets: Path | None) -> list[int | None]:
    """Index of the split row for each prediction record (None when it matches none)."""
    by_path = {row["path"]: index for index, row in enumerate(rows)}
    by_sha: dict[str, list[int]] = {}
    for index, row in enumerate(rows):
        by_sha.setdefault(row["sha256"], []).append(index)
    matches = []
    for record in records:
        parts = PurePath(record["file"]).parts
        match = next((by_path[s] for s in ("/".join(parts[i:]) for i in range(len(parts))) if s in by_path), None)
        if match is None:
            match = _match_by_content(Path(record["file"]), datasets, rows, by_sha)
        matches.append(match)
    return matches


def _match_by_content(file: Path, datasets: Path | None, rows: list[dict], by_sha: dict) -> int | None:
    candidates = [file] + ([datasets / file] if datasets and not file.is_absolute() else [])
    readable = next((c for c in candidates if c.is_file()), None)
    if readable is None:
        return None
    same_content = by_sha.get(sha256_of(readable), [])
    # Identical bytes filed in one split are interchangeable; across splits the match would be a guess.
    if len({rows[i]["split"] for i in same_content}) != 1:
        return None
    return same_content[0]


@dataclass
class Scored:
    """Predictions joined to split rows, one entry per prediction, as arrays."""
    file: np.ndarray            # as the CLI printed it
    source: np.ndarray          # NOT_IN_SPLIT for a file the split does not list
    split: np.ndarray
    unit: np.ndarray            # bootstrap resampling unit: patient joined with its near-duplicate cluster
    label: np.ndarray           # float: 1 = KL >= 2, 0 = KL 0-1, NaN unknown
    kl_grade: np.ndarray        # int, -1 unknown
    ok: np.ndarray              # bool: the CLI produced a prediction
    error: np.ndarray           # the CLI's error message where not ok
    oa_logit: np.ndarray        # NaN where not ok
    kl_logits: np.ndarray       # [N, 5], NaN where not ok
    ood_score: np.ndarray       # top-level knee's score, NaN where not ok
    knee_ood_scores: list       # per image, every knee's score
    reported_p_oa: np.ndarray   # what the CLI printed with the card it was given
    reported_oa: np.ndarray

    def __len__(self) -> int:
        return len(self.file)

    def select(self, mask: np.ndarray) -> "Scored":
        return self.take(np.flatnonzero(mask))

    def take(self, rows: np.ndarray) -> "Scored":
        """These rows, in this order."""
        fields = {name: (value[rows] if isinstance(value, np.ndarray) else [value[i] for i in rows])
                  for name, value in vars(self).items()}
        return Scored(**fields)


NOT_IN_SPLIT = "not in split"
DATASETS_HELP = ("dataset folder, to match copied or renamed files by content "
                 "(default: $OAC_DATASETS or ../shared/datasets)")


def only(scored: Scored, mask: np.ndarray, what: str, source: Path) -> Scored:
    """The predictions in `what`; the others are dropped with a warning, and none at all is an error."""
    if not mask.any():
        raise InputError(f"{source}: none of its images is in the {what}")
    if not mask.all():
        print(f"warning: {int((~mask).sum())} prediction(s) in {source} outside the {what} are ignored",
              file=sys.stderr)
    return scored.select(mask)


def resampling_units(rows: list[dict]) -> np.ndarray:
    """Connected groups of split rows sharing a patient or a near-duplicate cluster; a row with neither is alone."""
    keys: dict[str, int] = {}
    row_of_edge, key_of_edge = [], []
    for index, row in enumerate(rows):
        links = ([f"patient:{row['patient']}"] if row["patient"] else []) + \
                ([f"cluster:{row['cluster']}"] if row["cluster"] else [])
        for key in links or [f"path:{row['path']}"]:
            row_of_edge.append(index)
            key_of_edge.append(keys.setdefault(key, len(keys)))
    key_nodes = np.array(key_of_edge, dtype=np.int64) + len(rows)
    adjacency = coo_matrix((np.ones(len(row_of_edge)), (row_of_edge, key_nodes)), shape=(len(rows) + len(keys),) * 2)
    _, component = connected_components(adjacency, directed=False)
    return component[:len(rows)]


def join(records: list[dict], rows: list[dict], datasets: Path | None = None, per_file: bool = False,
         warn=lambda message: print(f"warning: {message}", file=sys.stderr)) -> Scored:
    """Predictions with their split rows.

    By default one prediction per split row (a row is one image content): repeats and files the split
    does not list are dropped with a warning. With per_file every prediction is kept -- the seed
    protocol scores each file of a folder, duplicates and files the split left out included; a file
    outside the split is its own resampling unit.
    """
    matches = match_split_rows(records, rows, datasets)
    unmatched = [r["file"] for r, m in zip(records, matches) if m is None]
    if unmatched and not per_file:
        warn(f"{len(unmatched)} prediction(s) match no split row and are left out, e.g. {unmatched[0]}")
        records = [r for r, m in zip(records, matches) if m is not None]
        matches = [m for m in matches if m is not None]
    if not per_file:
        first_file: dict[int, str] = {}
        keep = []
        for record, match in zip(records, matches):
            if match in first_file:
                warn(f"{record['file']} has the content of {first_file[match]}; only the first is scored")
            keep.append(match not in first_file)
            first_file.setdefault(match, record["file"])
        records = [r for r, k in zip(records, keep) if k]
        matches = [m for m, k in zip(matches, keep) if k]
    if not records or all(m is None for m in matches):
        raise InputError("no prediction matches a split row: are the predictions and the split of the same dataset?")

    units = resampling_units(rows)
    next_unit = iter(range(int(units.max(initial=-1)) + 1, 2**62))
    outside = {"source": NOT_IN_SPLIT, "split": "", "label": "", "kl_grade": ""}
    joined = [rows[m] if m is not None else outside for m in matches]
    nan_logits = [math.nan] * N_GRADES

    def text(values):
        return np.array(list(values), dtype=object).astype(str)

    def prediction(name, missing):
        return [r[name] if r["ok"] else missing for r in records]

    return Scored(
        file=text(r["file"] for r in records),
        source=text(row["source"] for row in joined),
        split=text(row["split"] for row in joined),
        unit=np.array([units[m] if m is not None else next(next_unit) for m in matches], dtype=np.int64),
        label=np.array([float(row["label"]) if row["label"] else math.nan for row in joined]),
        kl_grade=np.array([int(row["kl_grade"]) if row["kl_grade"] else -1 for row in joined]),
        ok=np.array([bool(r["ok"]) for r in records]),
        error=text(r.get("error", "") if not r["ok"] else "" for r in records),
        oa_logit=np.array(prediction("oa_logit", math.nan), dtype=np.float64),
        kl_logits=np.array(prediction("kl_logits", nan_logits), dtype=np.float64).reshape(-1, N_GRADES),
        ood_score=np.array(prediction("ood_score", math.nan), dtype=np.float64),
        knee_ood_scores=[knee_ood_scores(r) if r["ok"] else [] for r in records],
        reported_p_oa=np.array(prediction("p_oa", math.nan), dtype=np.float64),
        reported_oa=np.array(prediction("oa", False), dtype=bool),
    )


# ---------------------------------------------------------------------------------------------
# What the card makes of raw outputs: the core's own `interpret`, never a copy of it


def interpreted(oa_logit: np.ndarray, kl_logits: np.ndarray, card: dict) -> dict[str, np.ndarray]:
    """What the product shows for each row with this card, from the core's `interpret`: p_oa [N], kl_probs
    [N, 5], kl_grade [N] and kl_set (bool [N, 5]). A row with NaN outputs (failed to classify) gets NaN
    probabilities, grade -1 and an empty set."""
    try:
        oac_core = load_core()
    except CoreNotBuilt as error:
        raise InputError(str(error)) from None
    try:
        spec = oac_core.parse_model_card(json.dumps(card))
    except ValueError as error:
        raise InputError(f"the core refuses the model card: {error}") from None
    rows = len(kl_logits)
    out = {"p_oa": np.full(rows, np.nan), "kl_probs": np.full((rows, N_GRADES), np.nan),
           "kl_grade": np.full(rows, -1, dtype=np.int64), "kl_set": np.zeros((rows, N_GRADES), dtype=bool)}
    oa_logit = np.broadcast_to(np.asarray(oa_logit, dtype=np.float32), (rows,))
    for row, logits in enumerate(np.asarray(kl_logits, dtype=np.float32)):
        if not (np.isfinite(logits).all() and np.isfinite(oa_logit[row])):
            continue
        prediction = oac_core.interpret(float(oa_logit[row]), logits, 0.0, spec)
        out["p_oa"][row] = prediction["p_oa"]
        out["kl_probs"][row] = prediction["kl_probs"]
        out["kl_grade"][row] = prediction["kl_grade"]
        out["kl_set"][row, prediction["kl_set"]] = True
    return out


def kl_sets(kl_logits: np.ndarray, card: dict) -> np.ndarray:
    """bool [N, 5]: the card's KL prediction set of each row (see interpreted)."""
    return interpreted(np.zeros(len(kl_logits)), kl_logits, card)["kl_set"]
