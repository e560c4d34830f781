#!/usr/bin/python3
"""Choose the bounds that refuse a picture which is not a radiograph (the card's preprocess.radiograph:
max_colour and max_roughness, measured as oac/preprocess.hpp's PictureMeasures says), from the training
images alone, and report what they refuse among the validation images and the whole radiographs.

Each bound is MARGIN times the highest value of any training image, so no training image is refused and a
validation image would have to be much more coloured or rougher than any seen in training to be. The OOD
corpus of the evaluation (tools/evaluation/ood_corpus.py) is not read: it tests the bounds, in models/REPORT.md.

usage: tools/oac radiograph-check [--write] [--split models/data/eval-split-v1.csv]
  --write puts the bounds into the shipped and the seed card and the table into models/data/radiograph-check.md
"""
import argparse
import csv
import json
from pathlib import Path

import numpy as np

import oac_core
from lib.card import load_card, write_preprocess_choice
from lib.paths import MODEL_CARD, REPO_ROOT, SEED_CARD, datasets_dir

MARGIN = 2.0
REPORT = REPO_ROOT / "models/data/radiograph-check.md"


def measures(paths: list[Path], spec) -> np.ndarray:
    """[n, 2]: colour and roughness of every picture the core decodes and can window."""
    found = []
    for path in paths:
        try:
            found.append(oac_core.measure_picture(oac_core.decode(path.read_bytes()), spec))
        except ValueError:  # undecodable or blank: refused before these bounds matter
            continue
    return np.array(found).reshape(-1, 2)


def bounds(training: np.ndarray, margin: float = MARGIN) -> tuple[float, float]:
    """(max_colour, max_roughness): margin x the training images' highest, within the card's allowed ranges
    (a bound of 0 would refuse every grey picture, so a grey training set still allows some colour)."""
    colour = float(np.clip(margin * training[:, 0].max(), 0.01, 1.0))
    roughness = float(np.clip(margin * training[:, 1].max(), 0.01, 2.0))
    return round(colour, 4), round(roughness, 4)


def refused(found: np.ndarray, max_colour: float, max_roughness: float) -> int:
    return int(((found[:, 0] > max_colour) | (found[:, 1] > max_roughness)).sum())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--card", type=Path, default=MODEL_CARD)
    parser.add_argument("--split", type=Path, default=REPO_ROOT / "models/data/eval-split-v1.csv")
    parser.add_argument("--datasets", type=Path, default=datasets_dir())
    parser.add_argument("--write", action="store_true", help="write the chosen bounds into the cards")
    args = parser.parse_args()

    # The measures do not depend on the bounds; the widest let a card without them yet be read.
    widest = load_card(args.card)
    widest["preprocess"]["radiograph"] = {"max_colour": 1.0, "max_roughness": 2.0}
    spec = oac_core.parse_model_card(json.dumps(widest))
    rows = list(csv.DictReader(args.split.open(newline="")))
    sets = {
        "training images": [args.datasets / r["path"] for r in rows if r["split"] == "train"],
        "validation images": [args.datasets / r["path"] for r in rows if r["split"] == "val"],
        "whole radiographs (full-radiographs/)": sorted(p for p in (args.datasets / "full-radiographs").iterdir()
                                                        if p.suffix.lower() in (".jpg", ".jpeg", ".png")),
    }
    found = {name: measures(paths, spec) for name, paths in sets.items()}
    max_colour, max_roughness = bounds(found["training images"])

    lines = [f"Picture measures (`tools/oac radiograph-check`): bounds = {MARGIN:g} x the highest of any training "
             "image; colour is the mean red-green-blue spread as a fraction of full scale, roughness the mean "
             "neighbour difference over the standard deviation of the windowed picture shrunk to 128 x 128.", "",
             "| images | count | colour: median / 99.9% / highest | roughness: median / 99.9% / highest | refused |",
             "| --- | --- | --- | --- | --- |"]
    for name, values in found.items():
        colour, rough = (np.quantile(values[:, i], [0.5, 0.999, 1.0]) for i in (0, 1))
        lines.append(f"| {name} | {len(values)} | {' / '.join(f'{v:.3f}' for v in colour)} "
                     f"| {' / '.join(f'{v:.3f}' for v in rough)} | {refused(values, max_colour, max_roughness)} |")
    lines += ["", f"Chosen: max_colour {max_colour}, max_roughness {max_roughness}."]
    print("\n".join(lines))
    if args.write:
        measured = (f"{MARGIN:g} x the highest of {len(found['training images'])} training images of "
                    f"{args.split.name}: models/data/radiograph-check.md (tools/data/radiograph_check.py)")
        bounds_entry = {"max_colour": max_colour, "max_roughness": max_roughness, "measured": measured}
        write_preprocess_choice((args.card, SEED_CARD), lambda card: card["preprocess"].update(radiograph=bounds_entry),
                                REPORT, "Is it a radiograph?", lines)


if __name__ == "__main__":
    main()
