#!/usr/bin/python3
"""Make the knee template that localisation matches (the card's preprocess.localise.template).

The template is the mean of the training split's OAI joint crops, windowed as the core windows
them, shrunk to template_size and made left-right symmetric (left and right knees mirror each
other). A match in a whole radiograph is therefore framed as the training crops are: the box the
core crops is the template's frame at the matched size.

usage: tools/oac knee-template [--card models/oa-inceptionv3.json ...] [--split models/data/split.csv]
"""
import argparse
import csv
from pathlib import Path

import numpy as np

import oac_core
from lib.card import load_card, save_card
from lib.paths import MODEL_CARD, REPO_ROOT, datasets_dir


def windowed_grey(path: Path, percentiles) -> np.ndarray:
    """The core's percentile window (rank rule of wasm/README.md) on the luminance of one crop."""
    decoded = oac_core.decode(path.read_bytes())
    pixels = decoded["pixels"].astype(np.float64)
    grey = pixels[..., 0] if decoded["channels"] < 3 else pixels[..., :3] @ [0.299, 0.587, 0.114]
    ordered = np.sort(grey, axis=None)
    low, high = (ordered[int(np.floor(p / 100 * (ordered.size - 1) + 0.5))] for p in percentiles)
    return np.clip((grey - low) / (high - low), 0, 1).astype(np.float32)


def knee_template(paths, size: int, percentiles) -> np.ndarray:
    total = np.zeros((size, size), np.float64)
    for path in paths:
        total += oac_core.resize(windowed_grey(path, percentiles), size, size)
    mean = total / len(paths)
    return (mean + mean[:, ::-1]) / 2


def hex_rows(picture: np.ndarray) -> list[str]:
    return ["".join(f"{v:02x}" for v in row) for row in np.rint(picture * 255).astype(np.uint8)]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--card", type=Path, action="append", help="card(s) to update (default: the shipped and the seed card)")
    parser.add_argument("--split", type=Path, default=REPO_ROOT / "models/data/split.csv")
    parser.add_argument("--datasets", type=Path, default=datasets_dir())
    parser.add_argument("--every", type=int, default=3, help="use every Nth training crop (the mean settles long before all)")
    args = parser.parse_args()
    cards = args.card or [MODEL_CARD, REPO_ROOT / "models/seed/oa-inceptionv3-seed.json"]

    rows = [r for r in csv.DictReader(open(args.split, newline="")) if r["split"] == "train" and r["source"] == "oai224"]
    paths = [args.datasets / r["path"] for r in rows[::args.every]]
    for card_path in cards:
        card = load_card(card_path)
        localise = card["preprocess"]["localise"]
        picture = knee_template(paths, localise["template_size"], card["preprocess"]["window_percentiles"])
        localise["template"] = hex_rows(picture)
        localise["template_source"] = f"mean of {len(paths)} OAI training crops of {args.split.relative_to(REPO_ROOT).as_posix()}, mirrored (tools/data/knee_template.py)"
        save_card(card_path, card)
        print(f"{card_path.relative_to(REPO_ROOT)}: template from {len(paths)} crops")


if __name__ == "__main__":
    main()
