"""tools/data/split.py: no patient or duplicate cluster crosses splits, contradictions are dropped, the split
is deterministic and stratified; and the committed models/data/split.csv satisfies the same invariants.
"""
import csv
import hashlib
from collections import Counter, defaultdict
from pathlib import Path

import pytest

import knee_fixtures as fx
from data import knee_data, split
from lib.core import load_core
from lib.paths import REPO_ROOT, datasets_dir_if_present

COMMITTED = REPO_ROOT / "models" / "data" / "split.csv"


def split_of(rows):
    return {row["path"]: row["split"] for row in rows}


def test_groups_never_cross_splits(planted_inventory):
    rows = split.manifest_rows(planted_inventory, split.assign_splits(planted_inventory, 1))
    split.check_invariants(rows)
    where = split_of(rows)
    patient = defaultdict(set)
    for row in rows:
        patient[row["patient"]].add(row["split"])
    assert all(len(s) == 1 for s in patient.values())
    assert where[f"{fx.SEED}/train/Normal/9000001L.png"] == where[f"{fx.SEED}/Valid/Osteoarthritis/9000001R.png"]
    assert where[fx.CROSS_DATASET_PATIENT[0]] == where[fx.CROSS_DATASET_PATIENT[1]]
    assert where[fx.NEAR_DUPLICATE[0]] == where[fx.NEAR_DUPLICATE[1]]
    assert where[fx.MIRRORED[0]] == where[fx.MIRRORED[1]]
    assert where[fx.OTHER_KNEE[0]] == where[fx.OTHER_KNEE[1]]   # kept (KL0 vs KL2 is no conflict), one patient


def test_one_row_per_content_and_contradictions_dropped(planted_inventory):
    rows = split.manifest_rows(planted_inventory, split.assign_splits(planted_inventory, 1))
    paths = {row["path"] for row in rows}
    assert fx.EXACT_DUPLICATE[0] in paths and fx.EXACT_DUPLICATE[1] not in paths
    assert fx.EXACT_DUPLICATE_IN_TRAIN[0] in paths and fx.EXACT_DUPLICATE_IN_TRAIN[1] not in paths
    dropped = set(fx.CONTRADICTION) | set(fx.NEAR_CONTRADICTION) | {fx.BILATERAL, fx.BILATERAL_HALF, fx.UNRECOGNISED}
    assert not paths & dropped
    total_files = len(planted_inventory.files)
    assert len(rows) == total_files - 3 - 5 - 1   # 3 redundant copies, 5 contradictory contents, 1 unrecognised
    row = next(r for r in rows if r["path"] == fx.EXACT_DUPLICATE[0])
    assert row["seed_split"] == "Valid;test" and row["seed_label"] == "Osteoarthritis"
    assert row["kl_grade"] == 3 and row["label"] == 1 and row["patient"].startswith("knee:")


def test_split_is_deterministic_and_seeded(planted_inventory):
    first = split.assign_splits(planted_inventory, 1)
    assert first == split.assign_splits(planted_inventory, 1)
    assert first != split.assign_splits(planted_inventory, 2)


def synthetic_inventory(groups_per_stratum: int) -> knee_data.Inventory:
    """Many one- and two-image patients in two strata, without files (split logic only)."""
    contents, patients = [], []
    for label in (0, 1):
        for g in range(groups_per_stratum):
            for knee in range(1 + g % 2):
                sha = hashlib.sha256(f"{label}-{g}-{knee}".encode()).hexdigest()
                record = knee_data.FileRecord(f"kneeKL224/train/{2 * label}/{sha[:7]}.png", sha, None, "oai224")
                contents.append(knee_data.Content(sha, [record], kl_grade=2 * label, label=label,
                                                  patient=f"{label}{g:06d}"))
    contents.sort(key=lambda c: c.sha256)
    patients = [c.patient for c in contents]
    group_of = {p: i for i, p in enumerate(sorted(set(patients)))}
    return knee_data.Inventory(Path("."), [f for c in contents for f in c.files], contents, [], [],
                               [c.sha256[:12] for c in contents], {}, patients, [group_of[p] for p in patients])


def test_every_stratum_is_split_70_15_15():
    inventory = synthetic_inventory(600)
    rows = split.manifest_rows(inventory, split.assign_splits(inventory, 7))
    split.check_invariants(rows)
    for label in (0, 1):
        counts = Counter(r["split"] for r in rows if r["label"] == label)
        total = sum(counts.values())
        for name, share in (("train", 0.70), ("val", 0.15), ("test", 0.15)):
            assert abs(counts[name] / total - share) < 0.01, (label, counts)


def test_check_invariants_rejects_leaks():
    row = {"path": "a.png", "sha256": "a", "source": "oai224", "patient": "9000001", "cluster": "a", "split": "test"}
    crossing_patient = [row, dict(row, path="b.png", sha256="b", cluster="b", split="train")]
    with pytest.raises(AssertionError, match="patient groups cross splits"):
        split.check_invariants(crossing_patient)
    crossing_cluster = [row, dict(row, path="b.png", sha256="b", patient="9000002", split="val")]
    with pytest.raises(AssertionError, match="cluster groups cross splits"):
        split.check_invariants(crossing_cluster)
    repeated = [row, dict(row, path="b.png")]
    with pytest.raises(AssertionError, match="more than one row"):
        split.check_invariants(repeated)
    no_test_source = [row, dict(row, path="b.png", sha256="b", source="oai299", patient="2", cluster="b", split="train")]
    with pytest.raises(AssertionError, match=r"no image of source\(s\) \['oai299'\]"):
        split.check_invariants(no_test_source)


def test_split_end_to_end_through_the_core(datasets, tmp_path):
    try:
        load_core()
    except RuntimeError as error:
        pytest.skip(f"needs the C++ core's Python module: {error}")
    assert split.main(["--datasets", str(datasets), "--out", str(tmp_path), "--seed", "3", "--no-cache"]) == 0
    with open(tmp_path / "split.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    split.check_invariants(rows)
    where = split_of(rows)
    assert where[fx.NEAR_DUPLICATE[0]] == where[fx.NEAR_DUPLICATE[1]]
    assert where[fx.MIRRORED[0]] == where[fx.MIRRORED[1]]
    assert not set(where) & (set(fx.CONTRADICTION) | set(fx.NEAR_CONTRADICTION) | {fx.BILATERAL})


# ---------------------------------------------------------------------------------------------
# The committed manifest


@pytest.fixture(scope="module")
def committed_rows():
    if not COMMITTED.is_file():
        pytest.fail(f"{COMMITTED} is missing: run `tools/oac split` and commit it")
    with open(COMMITTED, newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames) == split.COLUMNS
        return list(reader)


def test_committed_manifest_has_no_leaks(committed_rows):
    split.check_invariants(committed_rows)
    assert {r["split"] for r in committed_rows} == set(split.SPLITS)
    assert {r["source"] for r in committed_rows} == set(knee_data.SOURCES)
    for row in committed_rows:
        if row["kl_grade"]:
            assert row["label"] == str(int(int(row["kl_grade"]) >= 2)), row
        assert row["seed_split"] == "" or set(row["seed_split"].split(";")) <= set(knee_data.SEED_SPLITS), row
        assert (row["seed_split"] == "") == row["path"].startswith("kneeKL224/"), row


def test_committed_manifest_is_stratified(committed_rows):
    strata = defaultdict(Counter)
    for row in committed_rows:
        strata[(row["source"], row["label"])][row["split"]] += 1
    for key, counts in strata.items():
        total = sum(counts.values())
        assert counts["test"] > 0, key
        if total >= 500:
            assert abs(counts["train"] / total - 0.70) < 0.03, (key, counts)
            assert abs(counts["test"] / total - 0.15) < 0.03, (key, counts)


def test_committed_manifest_matches_the_dataset(committed_rows):
    datasets = datasets_dir_if_present()
    if datasets is None or not datasets.is_dir():
        pytest.skip("dataset folder absent ($OAC_DATASETS unset and ../shared/datasets missing): "
                    "paths and sha256 of the committed manifest not checked")
    missing = [r["path"] for r in committed_rows if not (datasets / r["path"]).is_file()]
    assert not missing, f"{len(missing)} manifest paths missing under {datasets}, e.g. {missing[:3]}"
    wrong = [r["path"] for r in committed_rows
             if hashlib.sha256((datasets / r["path"]).read_bytes()).hexdigest() != r["sha256"]]
    assert not wrong, f"{len(wrong)} files differ from their manifest sha256, e.g. {wrong[:3]}"
