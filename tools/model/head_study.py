#!/usr/bin/python3
"""KL heads and test-time settings compared on the validation split of a trained run (models/head-study.md).

    tools/oac head-study [--run v3] [--out models/head-study.md]

Reads the run's best.pt and the tensors it trained on (train and validation knees); the test split is never
read. Compared, each on validation KL accuracy and QWK (and AUC where the OA head is involved):
  1. test-time settings of the trained network: 224 px as trained, horizontal-flip averaging of the
     outputs, and 299 px input (the 224 px crops upsampled; the network was trained at 224);
  2. KL heads refitted on the network's frozen features of the training knees, all under the same
     optimiser: softmax with plain cross-entropy, softmax with neighbour-smoothed targets (the run's
     loss), and a cumulative-link ordinal head (CORAL: one direction, four ordered thresholds).
How the KL grade is read from the probabilities (argmax or cut points on the expected grade) is chosen by
tools/evaluation/calibrate.py on the validation predictions of the exported model. Latency comes from
`tools/oac bench`, not from here.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lib.metrics import auc, quadratic_weighted_kappa
from lib.paths import REPO_ROOT, datasets_dir
from model import train

GRADES = 5
# Refitting a linear head on 2048 frozen features: full-batch Adam converges well within this budget.
HEAD_STEPS = 500
HEAD_LEARNING_RATE = 0.05
HEAD_WEIGHT_DECAY = 1e-4
UPSAMPLED_SIZE = 299


def kl_scores(grades: np.ndarray, predicted: np.ndarray) -> dict:
    return {"kl_acc": float(np.mean(grades == predicted)),
            "qwk": float(quadratic_weighted_kappa(grades, predicted, GRADES))}


class CoralHead(torch.nn.Module):
    """P(grade > k) = sigmoid(w . features + b_k): one direction for every threshold keeps the grades ranked."""

    def __init__(self, width: int):
        super().__init__()
        self.direction = torch.nn.Linear(width, 1, bias=False)
        self.thresholds = torch.nn.Parameter(torch.linspace(1.0, -1.0, GRADES - 1))

    def forward(self, features):
        return self.direction(features) + self.thresholds

    @staticmethod
    def grade_probabilities(logits):
        above = torch.sigmoid(logits)
        cumulative = torch.cat([torch.ones_like(above[:, :1]), above, torch.zeros_like(above[:, :1])], 1)
        return (cumulative[:, :-1] - cumulative[:, 1:]).clamp(min=0)


def fit_head(kind: str, features: torch.Tensor, grades: torch.Tensor, grade_weights: torch.Tensor,
             smoothing: float) -> torch.nn.Module:
    torch.manual_seed(0)
    head = CoralHead(features.shape[1]) if kind == "coral" else torch.nn.Linear(features.shape[1], GRADES)
    optimiser = torch.optim.Adam(head.parameters(), lr=HEAD_LEARNING_RATE, weight_decay=HEAD_WEIGHT_DECAY)
    weights = grade_weights[grades]
    for _ in range(HEAD_STEPS):
        optimiser.zero_grad()
        out = head(features)
        if kind == "coral":
            above = (grades[:, None] > torch.arange(GRADES - 1)[None]).float()
            per_knee = F.binary_cross_entropy_with_logits(out, above, reduction="none").sum(1)
        else:
            per_knee = -(train.neighbour_smoothed_targets(grades, smoothing) * F.log_softmax(out, 1)).sum(1)
        ((weights * per_knee).sum() / weights.sum()).backward()
        optimiser.step()
    return head


@torch.no_grad()
def head_grades(kind: str, head: torch.nn.Module, features: torch.Tensor) -> np.ndarray:
    out = head(features)
    probabilities = CoralHead.grade_probabilities(out) if kind == "coral" else torch.softmax(out, 1)
    return probabilities.argmax(1).numpy()


def timed_predict(net, planes: np.ndarray, spec, mirror_average: bool = False) -> tuple[dict, float]:
    start = time.perf_counter()
    out = train.predict(net, planes, spec, mirror_average=mirror_average)
    return out, (time.perf_counter() - start) / len(planes)


def setting_rows(net, planes: np.ndarray, spec, oa: np.ndarray, grades: np.ndarray) -> dict:
    grey = torch.from_numpy(planes.astype(np.float32))
    plain, seconds = timed_predict(net, grey.numpy(), spec)
    averaged, seconds_averaged = timed_predict(net, grey.numpy(), spec, mirror_average=True)
    larger = F.interpolate(grey[:, None], size=(UPSAMPLED_SIZE, UPSAMPLED_SIZE), mode="bilinear",
                           align_corners=False)[:, 0]
    upsampled, seconds_upsampled = timed_predict(net, larger.numpy(), spec)
    known, graded = ~np.isnan(oa), grades >= 0
    rows = {}
    for name, out, cost in (
            ("224 px (as trained)", plain, seconds),
            ("224 px, mean with the mirrored knee", averaged, seconds_averaged),
            (f"{UPSAMPLED_SIZE} px (224 px crop upsampled)", upsampled, seconds_upsampled)):
        rows[name] = {"auc": float(auc(oa[known], out["oa_logit"][known])),
                      **kl_scores(grades[graded], out["kl_logits"][graded].argmax(1)),
                      "pytorch_ms": 1000 * cost}
    return rows, plain


def head_rows(net, knees, spec, config, val_out: dict) -> dict:
    train_mask = (knees.split == "train") & (knees.kl >= 0)
    val_mask = knees.split == "val"
    val_graded = knees.kl[val_mask] >= 0
    train_features = torch.from_numpy(train.predict(net, knees.planes[train_mask], spec)["features"])
    val_features = torch.from_numpy(val_out["features"][val_graded])
    train_grades = torch.from_numpy(knees.kl[train_mask])
    val_grades = knees.kl[val_mask][val_graded]
    _, grade_weights = train.class_weights(knees, train_mask)
    rows = {"trained head (the run's own)": kl_scores(val_grades, val_out["kl_logits"][val_graded].argmax(1))}
    for name, kind, smoothing in (("refitted softmax, cross-entropy", "softmax", 0.0),
                                  (f"refitted softmax, neighbour smoothing {config.kl_neighbour_smoothing:g}",
                                   "softmax", config.kl_neighbour_smoothing),
                                  ("refitted ordinal (CORAL)", "coral", 0.0)):
        head = fit_head(kind, train_features, train_grades, grade_weights, smoothing)
        rows[name] = kl_scores(val_grades, head_grades(kind, head, val_features))
    return rows


def table(rows: dict, columns: dict) -> list[str]:
    lines = ["| | " + " | ".join(columns.values()) + " |", "| --- |" + " --- |" * len(columns)]
    for name, values in rows.items():
        cells = [f"{values[key]:.1f}" if key.endswith("_ms") else f"{values[key]:.3f}" for key in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def best_of(rows: dict) -> str:
    return max(rows, key=lambda name: rows[name]["qwk"] + rows[name]["kl_acc"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", default="v3", help="run name: build/train/<run>/best.pt")
    parser.add_argument("--datasets", type=Path, default=datasets_dir())
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "models" / "head-study.md")
    args = parser.parse_args(argv)
    best = REPO_ROOT / "build" / "train" / args.run / "best.pt"
    if not best.exists():
        sys.exit(f"head-study: {best} not found: train the run first (tools/oac train --config ...)")
    checkpoint = torch.load(best, map_location="cpu")
    config = train.Config(**checkpoint["config"])
    torch.set_num_threads(config.threads)
    card_text, _ = train.load_core(config)
    spec = train.oac_core.parse_model_card(card_text)
    spec.preprocess.input_size = config.input_size
    knees = train.load_knees(config, args.datasets, spec, card_text, REPO_ROOT / "build" / "cache")
    # The checkpoint holds every weight: build the bare network rather than importing the init weights again.
    net = train.build_model(dataclasses.replace(config, init_from="", init="random"))
    net.load_state_dict(checkpoint["model"])
    net.eval()

    val = knees.split == "val"
    settings, val_out = setting_rows(net, knees.planes[val], spec, knees.oa[val], knees.kl[val])
    heads = head_rows(net, knees, spec, config, val_out)
    validation = f"{int(val.sum())} validation knees ({int((knees.kl[val] >= 0).sum())} with a KL grade)"
    lines = [
        f"# KL heads and test-time settings: run {args.run}", "",
        f"Generated by `tools/oac head-study --run {args.run}` from `build/train/{args.run}/best.pt` (epoch "
        f"{checkpoint['validation'].get('epoch')}); every figure is on the {validation} of "
        f"`{config.split}`. The test split is not read. Decide by validation QWK + KL accuracy.", "",
        "## Test-time settings", "",
        "The trained network as it is, on the validation tensors. *AUC* is OA (KL >= 2) against the rest; KL "
        "figures take the argmax grade. *PyTorch ms* is this machine's PyTorch time per knee in batches of 64 "
        "(a relative cost only: the product's latency is `tools/oac bench`).", "",
    ]
    lines += table(settings, {"auc": "AUC", "kl_acc": "KL accuracy", "qwk": "KL QWK", "pytorch_ms": "PyTorch ms"})
    lines += ["", f"Best: {best_of(settings)}.", "", "## KL heads", "",
              f"Linear heads refitted on the network's frozen 2048 features of the "
              f"{int(((knees.split == 'train') & (knees.kl >= 0)).sum())} training knees (no augmentation, full-batch "
              f"Adam, {HEAD_STEPS} steps, learning rate {HEAD_LEARNING_RATE}, weight decay {HEAD_WEIGHT_DECAY}, the "
              "run's square-root inverse-frequency grade weights), against the head trained with the network. The "
              "refits share one setting, so they compare the formulations; the trained head saw augmented "
              "knees and trained with the backbone.", ""]
    lines += table(heads, {"kl_acc": "KL accuracy", "qwk": "KL QWK"})
    lines += ["", f"Best: {best_of(heads)}.", ""]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
