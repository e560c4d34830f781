"""A small fake dataset: split manifest plus `oac classify` JSON lines, for testing calibrate/evaluate.

The fake model knows the truth up to noise, and its logits are deliberately over-confident
(scaled by `overconfidence`) so that temperature scaling has something to fix.
"""
from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np

SPLIT_HEADER = ["path", "sha256", "source", "label", "kl_grade", "patient", "cluster", "split",
                "seed_split", "seed_label"]


def make_split(rng: np.random.Generator, patients_per_split: int = 60, kneexray_per_split: int = 40) -> list[dict]:
    rows = []
    for split in ("train", "val", "test"):
        for index in range(patients_per_split):
            patient = f"9{split[:1]}{index:05d}"
            for side in "LR":
                grade = int(rng.choice(5, p=[0.4, 0.18, 0.22, 0.14, 0.06]))
                rows.append(_row(f"kneeKL224/{split}/{grade}/{patient}{side}.png", "oai224", grade, patient, split))
        for index in range(kneexray_per_split):
            grade = int(rng.choice(5, p=[0.3, 0.2, 0.2, 0.2, 0.1]))
            name = ["Normal", "Doubtful", "Mild", "Moderate", "Severe"][grade]
            # The seed dataset's own test folder, with its folder labels (Doubtful counts as OA there);
            # every fourth of its images is also filed in Valid, as the real folders do.
            folder = "Normal" if grade == 0 else "Osteoarthritis"
            seed = ("Valid;test" if index % 4 == 0 else "test", folder) if split == "test" else ("", "")
            rows.append(_row(f"Osteoarthritis_Dataset/{'test' if split == 'test' else split}/{folder}/"
                             f"{name}G{grade} ({index}).png", "kneexray",
                             grade, f"cluster:c{split}{index // 2}", split, cluster=f"c{split}{index // 2}", seed=seed))
        for index in range(10):
            rows.append(_row(f"Osteoarthritis_Dataset/test/Osteoarthritis/{split}{index:06d}_1.png", "oai299",
                             None, f"8{split[:1]}{index:05d}", split, label=1,
                             seed=("test", "Osteoarthritis") if split == "test" else ("", "")))
    return rows


def _row(path, source, grade, patient, split, label=None, cluster="", seed=("", "")):
    if label is None and grade is not None:
        label = int(grade >= 2)
    digest = hashlib.sha256(path.encode()).hexdigest()
    return {"path": path, "sha256": digest, "source": source,
            "label": "" if label is None else str(label), "kl_grade": "" if grade is None else str(grade),
            "patient": patient, "cluster": cluster or digest[:12], "split": split,
            "seed_split": seed[0], "seed_label": seed[1]}


def fake_prediction(rng: np.random.Generator, file: str, grade: int, overconfidence: float = 3.0,
                    ood_shift: float = 0.0, bilateral: bool = False) -> dict:
    latent = grade + rng.normal(0.0, 0.6)
    oa_logit = overconfidence * 1.6 * (latent - 1.5)
    kl_logits = -overconfidence * 0.8 * (np.arange(5) - latent) ** 2
    knees = [{"side": "single", "oa_logit": oa_logit, "kl_logits": kl_logits.tolist(),
              "ood_score": float(rng.chisquare(8) + ood_shift)}]
    if bilateral:
        knees = [dict(knees[0], side="left"), dict(knees[0], side="right", ood_score=float(rng.chisquare(8) + ood_shift))]
    top = knees[0]
    return {"file": file, "ok": True, "p_oa": float(1 / (1 + np.exp(-oa_logit))), "oa": bool(oa_logit >= 0),
            "kl_probs": [], "kl_grade": int(np.argmax(kl_logits)), "in_distribution": True,
            "oa_logit": float(oa_logit), "kl_logits": top["kl_logits"], "ood_score": top["ood_score"], "knees": knees}


def write_fixture(folder: Path, seed: int = 0) -> dict[str, Path]:
    """split.csv, val/test/seed_test/ood predictions and a copy of the model card under `folder`."""
    rng = np.random.default_rng(seed)
    rows = make_split(rng)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / f"{name}.jsonl" for name in ("val", "test", "seed_test", "ood")}
    paths["split"] = folder / "split.csv"
    with open(paths["split"], "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=SPLIT_HEADER)
        writer.writeheader()
        writer.writerows(rows)

    def grade_of(row):
        return int(row["kl_grade"]) if row["kl_grade"] else 3

    for split in ("val", "test"):
        lines = [fake_prediction(rng, f"/data/{row['path']}", grade_of(row), bilateral=row["source"] == "kneexray")
                 for row in rows if row["split"] == split]
        if split == "test":
            lines[0] = {"file": lines[0]["file"], "ok": False, "error": "image is blank"}
        paths[split].write_text("".join(json.dumps(line) + "\n" for line in lines))
    # The seed model has learnt the image format: it calls every second-collection image OA.
    seed_lines = []
    for row in rows:
        if "test" in row["seed_split"].split(";"):
            line = fake_prediction(rng, f"/data/{row['path']}", 4 if row["source"] == "kneexray" else grade_of(row))
            line["p_oa"], line["oa"] = float(1 / (1 + np.exp(-line["oa_logit"]))), bool(line["oa_logit"] >= 0)
            seed_lines.append(line)
    # A contradictory duplicate the split leaves out still belongs to the folder.
    seed_lines.append(fake_prediction(rng, "/data/Osteoarthritis_Dataset/test/Normal/NormalG0 (999).png", 0))
    paths["seed_test"].write_text("".join(json.dumps(line) + "\n" for line in seed_lines))
    ood_lines = [fake_prediction(rng, f"/corpus/{kind}-{index}.png", 2, ood_shift=shift)
                 for kind, shift in (("skimage", 60.0), ("noise", 200.0), ("gradient", 5.0)) for index in range(6)]
    ood_lines.append({"file": "/corpus/blank-black-224.png", "ok": False, "error": "image is blank"})
    paths["ood"].write_text("".join(json.dumps(line) + "\n" for line in ood_lines))
    return paths
