"""Inputs shared by calibrate.py and evaluate.py: the split manifest, `oac classify` JSON lines, the card.

Predictions are joined to split rows by path: the `file` a prediction names may be absolute or
relative to anywhere, so the longest trailing part of it that is a dataset-relative split path wins.
Files that match no path (copied or renamed) are matched by content hash when they can be read.
"""
from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path, PurePath

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

REPO = Path(__file__).resolve().parent.parent
N_GRADES = 5
SPLIT_COLUMNS = ("path", "sha256", "source", "label", "kl_grade", "patient", "cluster", "split",
                 "seed_split", "seed_label")


class InputError(Exception):
    """A problem with an input file, worded for the person who passed it."""


def default_datasets_dir() -> Path | None:
    """`$OAC_DATASETS` (tools/oac sets it), else `<repo>/../shared/datasets` when that exists."""
    configured = os.environ.get("OAC_DATASETS")
    if configured:
        return Path(configured)
    beside_repo = REPO.parent / "shared" / "datasets"
    return beside_repo if beside_repo.is_dir() else None


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
            absent = [k for k in ("oa_logit", "kl_logits", "ood_score") if k not in record]
            if absent:
                raise InputError(f"{path}:{number}: prediction for {record['file']} lacks {', '.join(absent)}")
            if len(record["kl_logits"]) != N_GRADES:
                raise InputError(f"{path}:{number}: kl_logits must have {N_GRADES} values")
        records.append(record)
    if not records:
        raise InputError(f"{path}: no predictions in the file")
    return records


def knee_ood_scores(record: dict) -> list[float]:
    """OOD score of every knee of an image (a bilateral image has two)."""
    knees = record.get("knees") or [record]
    return [float(knee["ood_score"]) for knee in knees]


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def match_split_rows(records: list[dict], rows: list[dict], datasets: Path | None,
                     warn=lambda message: print(f"warning: {message}", file=sys.stderr)) -> list[int | None]:
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
    unmatched = [r["file"] for r, m in zip(records, matches) if m is None]
    if unmatched:
        warn(f"{len(unmatched)} prediction(s) match no split row and are ignored, e.g. {unmatched[0]}")
    seen: dict[int, str] = {}
    for index, (record, match) in enumerate(zip(records, matches)):
        if match is None:
            continue
        if match in seen:
            warn(f"{record['file']} repeats the prediction for {seen[match]}; the first one is kept")
            matches[index] = None
        else:
            seen[match] = record["file"]
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
    """Predictions joined to split rows, one entry per image, as arrays."""
    path: np.ndarray            # dataset-relative, from the split
    source: np.ndarray
    split: np.ndarray
    seed_split: np.ndarray
    seed_label: np.ndarray      # "Normal"/"Osteoarthritis"/""
    sha256: np.ndarray
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
        return len(self.path)

    def select(self, mask: np.ndarray) -> "Scored":
        picked = np.flatnonzero(mask)
        fields = {name: (value[picked] if isinstance(value, np.ndarray) else [value[i] for i in picked])
                  for name, value in vars(self).items()}
        return Scored(**fields)


def first_of_each_content(scored: Scored) -> tuple[Scored, int]:
    """Keep one file per sha256 (identical bytes filed twice would count twice); returns (kept, dropped count)."""
    _, first = np.unique(scored.sha256, return_index=True)
    keep = np.zeros(len(scored), dtype=bool)
    keep[first] = True
    return scored.select(keep), int((~keep).sum())


def resampling_units(patient: list[str], cluster: list[str], path: list[str]) -> np.ndarray:
    """Connected groups of rows sharing a patient or a near-duplicate cluster; a row with neither is alone."""
    keys: dict[str, int] = {}
    row_of_edge, key_of_edge = [], []
    for row, (p, c, own) in enumerate(zip(patient, cluster, path)):
        for key in ([f"patient:{p}"] if p else []) + ([f"cluster:{c}"] if c else []) or [f"path:{own}"]:
            row_of_edge.append(row)
            key_of_edge.append(keys.setdefault(key, len(keys)))
    n_rows = len(path)
    adjacency = coo_matrix((np.ones(len(row_of_edge)), (row_of_edge, np.array(key_of_edge) + n_rows)),
                           shape=(n_rows + len(keys),) * 2)
    _, component = connected_components(adjacency, directed=False)
    return component[:n_rows]


def join(records: list[dict], rows: list[dict], datasets: Path | None = None, **kwargs) -> Scored:
    matches = match_split_rows(records, rows, datasets, **kwargs)
    pairs = [(record, rows[m]) for record, m in zip(records, matches) if m is not None]
    if not pairs:
        raise InputError("no prediction matches a split row: are the predictions and the split of the same dataset?")
    picked_rows = [row for _, row in pairs]
    picked_records = [record for record, _ in pairs]
    nan_logits = [math.nan] * N_GRADES

    def column(name):
        return np.array([row[name] for row in picked_rows], dtype=object).astype(str)

    def prediction(name, missing):
        return [r[name] if r["ok"] else missing for r in picked_records]

    all_units = resampling_units([r["patient"] for r in rows], [r["cluster"] for r in rows], [r["path"] for r in rows])
    return Scored(
        path=column("path"), source=column("source"), split=column("split"), seed_split=column("seed_split"),
        seed_label=column("seed_label"), sha256=column("sha256"),
        unit=np.array([all_units[m] for m in matches if m is not None]),
        label=np.array([float(row["label"]) if row["label"] else math.nan for row in picked_rows]),
        kl_grade=np.array([int(row["kl_grade"]) if row["kl_grade"] else -1 for row in picked_rows]),
        ok=np.array([bool(r["ok"]) for r in picked_records]),
        error=np.array([r.get("error", "") if not r["ok"] else "" for r in picked_records], dtype=object).astype(str),
        oa_logit=np.array(prediction("oa_logit", math.nan), dtype=np.float64),
        kl_logits=np.array(prediction("kl_logits", nan_logits), dtype=np.float64).reshape(-1, N_GRADES),
        ood_score=np.array(prediction("ood_score", math.nan), dtype=np.float64),
        knee_ood_scores=[knee_ood_scores(r) if r["ok"] else [] for r in picked_records],
        reported_p_oa=np.array([r.get("p_oa", math.nan) if r["ok"] else math.nan for r in picked_records],
                               dtype=np.float64),
        reported_oa=np.array([bool(r.get("oa", False)) if r["ok"] else False for r in picked_records]),
    )


# ---------------------------------------------------------------------------------------------
# What the card makes of raw outputs (mirrors the core's `interpret`)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float64)))


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def calibrated_p_oa(oa_logit: np.ndarray, card: dict) -> np.ndarray:
    return sigmoid(oa_logit / card["calibration"]["oa_temperature"])


def calibrated_kl_probs(kl_logits: np.ndarray, card: dict) -> np.ndarray:
    return softmax(kl_logits / card["calibration"]["kl_temperature"])


# ---------------------------------------------------------------------------------------------
# The model card: read, and written back in its hand-written layout so diffs show only what changed


def load_card(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: model card not found") from None
    except json.JSONDecodeError as error:
        raise InputError(f"{path}: model card is not valid JSON ({error})") from None


INLINE_WIDTH = 100


def _scalar(value) -> bool:
    return not isinstance(value, (dict, list))


def _flat(container) -> bool:
    """A list of scalars, or an object whose values are scalars or lists of scalars."""
    if isinstance(container, list):
        return all(map(_scalar, container))
    return all(_scalar(v) or (isinstance(v, list) and all(map(_scalar, v))) for v in container.values())


def format_card(value, indent: int = 0) -> str:
    """JSON with short lists and short objects of scalars or scalar lists on one line, the rest one key per line."""
    if isinstance(value, (dict, list)):
        if _flat(value):
            inline = json.dumps(value, separators=(", ", ": "))
            if isinstance(value, dict) and value:
                inline = "{ " + inline[1:-1] + " }"
            if indent + len(inline) <= INLINE_WIDTH:
                return inline
        pad = " " * (indent + 2)
        if isinstance(value, dict):
            body = [f"{pad}{json.dumps(key)}: {format_card(item, indent + 2)}" for key, item in value.items()]
            return "{\n" + ",\n".join(body) + "\n" + " " * indent + "}"
        body = [pad + format_card(item, indent + 2) for item in value]
        return "[\n" + ",\n".join(body) + "\n" + " " * indent + "]"
    return json.dumps(value)


def save_card(path: Path, card: dict) -> None:
    Path(path).write_text(format_card(card) + "\n")
