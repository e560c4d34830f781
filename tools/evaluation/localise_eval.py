#!/usr/bin/python3
"""Score knee-joint localisation on the annotated whole radiographs (models/data/full-radiographs-joints.csv).

For every annotated knee: found or missed; the error of the joint centre the box implies (the box's
centre column, and its joint-line row from the card's framing rule), in % of the annotated knee width;
and the box side against the framing rule (annotated knee width / the training crops' knee-width
fraction). Boxes that match no annotated knee are invented. Writes models/localisation.md and
prints the summary.

usage: tools/oac localise-eval [--card models/oa-inceptionv3.json] [--boxes OUT.jsonl]
"""
import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

import oac_core
from lib.card import load_card
from lib.paths import MODEL_CARD, REPO_ROOT, datasets_dir


def match(annotated, boxes):
    """Pairs each annotated knee with the box holding its centre (nearest box centre first)."""
    pairs, free = [], list(range(len(boxes)))
    for knee in annotated:
        inside = [i for i in free if boxes[i][0] <= knee["cx"] < boxes[i][2] and boxes[i][1] <= knee["cy"] < boxes[i][3]]
        if inside:
            best = min(inside, key=lambda i: abs((boxes[i][0] + boxes[i][2]) / 2 - knee["cx"]))
            free.remove(best)
            pairs.append((knee, boxes[best]))
        else:
            pairs.append((knee, None))
    return pairs, len(free)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--card", type=Path, default=MODEL_CARD)
    parser.add_argument("--annotations", type=Path, default=REPO_ROOT / "models/data/full-radiographs-joints.csv")
    parser.add_argument("--datasets", type=Path, default=datasets_dir())
    parser.add_argument("--report", type=Path, default=REPO_ROOT / "models/localisation.md")
    parser.add_argument("--boxes", type=Path, help="also write the boxes as JSON lines (tools/data/joint_overlays.py --boxes)")
    args = parser.parse_args()

    card = load_card(args.card)
    spec = oac_core.parse_model_card(args.card.read_text())
    framing = card["preprocess"]["localise"]["framing"]
    by_file = defaultdict(list)
    for row in csv.DictReader(open(args.annotations, newline="")):
        knee = {k: float(row[k]) for k in ("cx", "cy", "knee_width")} if row["cx"] else None
        by_file[row["file"]].append(knee)

    rows, centre_errors, size_errors = [], [], []
    totals = defaultdict(int)
    box_lines = []
    for name, knees in sorted(by_file.items()):
        annotated = [k for k in knees if k]
        path = args.datasets / "full-radiographs" / name
        try:
            boxes = [k["box"] for k in oac_core.prepare(path.read_bytes(), spec)]
        except ValueError:
            boxes = []
        box_lines.append(json.dumps({"file": f"full-radiographs/{name}", "knees": [{"box": b} for b in boxes]}))
        pairs, invented = match(annotated, boxes)
        totals["images"] += 1
        totals["knees"] += len(annotated)
        totals["invented"] += invented
        for knee, box in pairs:
            if box is None:
                totals["missed"] += 1
                rows.append(f"| {name} | {knee['cx']:.0f}, {knee['cy']:.0f} | missed | | |")
                continue
            totals["found"] += 1
            side = box[2] - box[0]
            centre = ((box[0] + box[2]) / 2, box[1] + framing["joint_line"] * side)
            error = 100 * np.hypot(centre[0] - knee["cx"], centre[1] - knee["cy"]) / knee["knee_width"]
            size = 100 * (side / (knee["knee_width"] / framing["knee_width"]) - 1)
            centre_errors.append(error)
            size_errors.append(size)
            rows.append(f"| {name} | {knee['cx']:.0f}, {knee['cy']:.0f} | {box} | {error:.1f} | {size:+.1f} |")
        if invented:
            rows.append(f"| {name} | | {invented} invented | | |")

    centre_errors, size_errors = np.array(centre_errors), np.abs(size_errors)
    summary = [
        f"images: {totals['images']}, annotated knees: {totals['knees']}",
        f"found: {totals['found']}, missed: {totals['missed']}, invented: {totals['invented']}",
        f"centre error (% of knee width): median {np.median(centre_errors):.1f}, worst {centre_errors.max():.1f}; "
        f"within 15%: {(centre_errors <= 15).sum()}/{len(centre_errors)}",
        f"box side vs framing rule (|%|): median {np.median(size_errors):.1f}, worst {size_errors.max():.1f}; "
        f"within 20%: {(size_errors <= 20).sum()}/{len(size_errors)}",
    ]
    report = [
        "# Knee-joint localisation on whole radiographs",
        "",
        f"Made by `tools/oac localise-eval` from `{args.annotations.relative_to(REPO_ROOT).as_posix()}` (hand annotations: joint "
        "centre and bone width at the joint line, checked on overlays made by `tools/data/joint_overlays.py`) and the card "
        f"`{args.card.relative_to(REPO_ROOT).as_posix()}`. The implied joint centre is the box's centre column and the row "
        f"{framing['joint_line']:.3f} of its side from the top; the framing rule's box side is the knee width / "
        f"{framing['knee_width']:.3f} (both measured on the training crops: `models/data/crop-framing.md`).",
        "",
        *[f"- {line}" for line in summary],
        "",
        "| file | annotated centre | box [x0, y0, x1, y1] | centre error % | side vs rule % |",
        "| --- | --- | --- | --- | --- |",
        *rows,
        "",
    ]
    args.report.write_text("\n".join(report))
    if args.boxes:
        args.boxes.write_text("\n".join(box_lines) + "\n")
    print("\n".join(summary))


if __name__ == "__main__":
    main()
