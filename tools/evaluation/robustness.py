#!/usr/bin/python3
"""Write altered copies of the clean test (or validation) images, the versions people export: the
robustness table, and the calibration that holds on them.

    tools/evaluation/robustness.py --split models/data/eval-split-v1.csv --out models/cache/eval/robustness [--rows val]

For every unique image of the split's test (or val) rows, one file per version under OUT/<version>/, and
OUT/<version>/files.csv mapping each written file to the dataset path it was made from, so the
evaluation can score the copies against the original rows. Deterministic: the same inputs give the
same bytes.
"""
from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from lib.paths import datasets_dir_if_present

JPEG_QUALITY = 60
ROTATION_DEGREES = 5.0
MARGIN_PIXELS = 40


def to_array(image: Image.Image) -> np.ndarray:
    """8-bit grey or RGB as uint8, 16-bit grey as uint16: the file's own depth, which the core windows."""
    if image.mode in ("I;16", "I;16B", "I"):
        return np.asarray(image, dtype=np.uint16) if image.mode != "I" else np.asarray(image).astype(np.uint16)
    return np.asarray(image.convert("RGB" if image.mode in ("RGB", "RGBA", "P") else "L"))


def from_array(pixels: np.ndarray) -> Image.Image:
    if pixels.dtype == np.uint16:
        return Image.fromarray(pixels, mode="I;16")
    return Image.fromarray(pixels)


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    from_array(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg(pixels: np.ndarray) -> tuple[bytes, str]:
    # JPEG holds 8 bits: a 16-bit film is scaled to 8 bits first, as an export to JPEG does.
    eight_bit = (pixels / 257.0).round().astype(np.uint8) if pixels.dtype == np.uint16 else pixels
    buffer = io.BytesIO()
    Image.fromarray(eight_bit).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue(), ".jpg"


def rotated(pixels: np.ndarray) -> tuple[bytes, str]:
    """Turned 5 degrees counter-clockwise about the centre, same size, corners filled black."""
    planes = pixels[..., None] if pixels.ndim == 2 else pixels
    turned = np.stack([np.asarray(Image.fromarray(planes[..., c].astype(np.float32), mode="F").rotate(
        ROTATION_DEGREES, resample=Image.BICUBIC, fillcolor=0.0)) for c in range(planes.shape[-1])], axis=-1)
    limit = np.iinfo(pixels.dtype).max
    result = np.clip(np.rint(turned), 0, limit).astype(pixels.dtype)
    return png_bytes(result[..., 0] if pixels.ndim == 2 else result), ".png"


def with_margin(pixels: np.ndarray) -> tuple[bytes, str]:
    pad = ((MARGIN_PIXELS, MARGIN_PIXELS), (MARGIN_PIXELS, MARGIN_PIXELS)) + (((0, 0),) if pixels.ndim == 3 else ())
    return png_bytes(np.pad(pixels, pad)), ".png"


def inverted(pixels: np.ndarray) -> tuple[bytes, str]:
    return png_bytes(np.iinfo(pixels.dtype).max - pixels), ".png"


VERSIONS = {
    f"jpeg_q{JPEG_QUALITY}": (f"JPEG quality {JPEG_QUALITY}", jpeg),
    f"rotated_{ROTATION_DEGREES:g}deg": (f"rotated {ROTATION_DEGREES:g}°", rotated),
    f"margin_{MARGIN_PIXELS}px": (f"{MARGIN_PIXELS} px black margin", with_margin),
    "inverted": ("inverted (negative)", inverted),
}


def split_rows(split: Path, which: str) -> list[dict]:
    with split.open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["split"] == which]
    unique = {}
    for row in rows:
        unique.setdefault(row["sha256"], row)
    return sorted(unique.values(), key=lambda row: row["path"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", required=True, type=Path, help="split manifest")
    parser.add_argument("--rows", choices=("test", "val"), default="test", help="which of its rows are altered")
    parser.add_argument("--out", required=True, type=Path, help="folder for the versions")
    parser.add_argument("--datasets", type=Path, default=None, help="dataset folder (default: $OAC_DATASETS, else ../shared/datasets)")
    args = parser.parse_args(argv)
    datasets = args.datasets or datasets_dir_if_present()
    if datasets is None or not datasets.is_dir():
        sys.exit("robustness: dataset folder not found (--datasets DIR)")
    rows = split_rows(args.split, args.rows)
    listings = {version: [] for version in VERSIONS}
    for index, row in enumerate(rows):
        with Image.open(datasets / row["path"]) as image:
            pixels = to_array(image)
        for version, (_, alter) in VERSIONS.items():
            data, suffix = alter(pixels)
            written = args.out / version / f"{index:05d}{suffix}"
            written.parent.mkdir(parents=True, exist_ok=True)
            written.write_bytes(data)
            listings[version].append((written.name, row["path"]))
    for version, listing in listings.items():
        with (args.out / version / "files.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["file", "original"])
            writer.writerows(listing)
    print(f"robustness: {len(rows)} {args.rows} images x {len(VERSIONS)} versions in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
