"""A few rows of models/data/eval-split-v1.csv for the training tests: OAI 224 crops, as many with OA as without."""
import csv

from lib.paths import REPO_ROOT, datasets_dir

SPLIT = REPO_ROOT / "models" / "data" / "eval-split-v1.csv"


def write_tiny_manifest(path, train=8, val=4):
    """`train` and `val` rows of each label (0, 1) whose images are in the datasets; returns (train rows, val rows)."""
    rows = list(csv.DictReader(open(SPLIT, newline="")))
    picked = {(split, label): [] for split in ("train", "val") for label in ("0", "1")}
    for row in rows:
        key = (row["split"], row["label"])
        wanted = {"train": train, "val": val}.get(row["split"], 0)
        if key in picked and row["source"] == "oai224" and len(picked[key]) < wanted and \
                (datasets_dir() / row["path"]).is_file():
            picked[key].append(row)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        for chosen in picked.values():
            writer.writerows(chosen)
    return sum(len(v) for k, v in picked.items() if k[0] == "train"), sum(len(v) for k, v in picked.items() if k[0] == "val")
