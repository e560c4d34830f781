#!/usr/bin/python3
"""Overlay PNGs of the whole-radiograph joint annotations, optionally with predicted knee boxes.

    tools/data/joint_overlays.py [--datasets DIR] [--annotations CSV] [--out DIR] [--boxes FILE.jsonl]

One PNG per annotated image (long side 1024): for each knee a cross at the joint centre and the
joint line (knee_width long) in green; predicted boxes from `tools/oac classify` JSON lines in
orange; the file name in the corner. Made to eyeball annotations and localiser output together.
"""
from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps

from lib.paths import REPO_ROOT, datasets_dir

LONG_SIDE = 1024
ANNOTATION = (0, 230, 0)
BOX = (255, 140, 0)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", type=Path,
                   default=datasets_dir(),
                   help="datasets folder holding full-radiographs/ (default: $OAC_DATASETS or ../shared/datasets)")
    p.add_argument("--annotations", type=Path, default=REPO_ROOT / "models/data/full-radiographs-joints.csv")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "build/overlays")
    p.add_argument("--boxes", type=Path, help="JSON lines from the CLI: {\"file\", \"knees\": [{\"box\": [x0,y0,x1,y1]}]}")
    return p.parse_args()


def read_boxes(path: Path | None) -> dict[str, list[list[float]]]:
    boxes: dict[str, list[list[float]]] = defaultdict(list)
    if path is None:
        return boxes
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        result = json.loads(line)
        # The CLI prints the path it was given; annotations know only the file name.
        name = Path(result.get("file", "")).name
        boxes[name] += [knee["box"] for knee in result.get("knees", []) if knee.get("box")]
    return boxes


def label_font() -> ImageFont.ImageFont:
    try:  # PIL's built-in bitmap font is too small to read on a 1024-px overlay
        return ImageFont.truetype("DejaVuSans.ttf", 20)
    except OSError:
        return ImageFont.load_default()


def main() -> None:
    args = parse_args()
    knees: dict[str, list[dict]] = defaultdict(list)
    with args.annotations.open(newline="") as f:
        for row in csv.DictReader(f):
            knees[row["file"]].append(row)  # rows without a knee still get an overlay (name only)
    boxes = read_boxes(args.boxes)
    font = label_font()
    args.out.mkdir(parents=True, exist_ok=True)

    for name, rows in sorted(knees.items()):
        # Annotations are in the pixels of the image as displayed, so honour EXIF orientation.
        image = ImageOps.exif_transpose(Image.open(args.datasets / "full-radiographs" / name)).convert("RGB")
        scale = LONG_SIDE / max(image.size)
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS)
        draw = ImageDraw.Draw(image)
        line = max(2, round(LONG_SIDE / 400))

        for row in rows:
            if not row["cx"]:
                continue
            cx, cy, half = (float(row["cx"]) * scale, float(row["cy"]) * scale,
                            float(row["knee_width"]) * scale / 2)
            draw.line([(cx - half, cy), (cx + half, cy)], fill=ANNOTATION, width=line)
            draw.line([(cx, cy - half / 3), (cx, cy + half / 3)], fill=ANNOTATION, width=line)
            for end in (cx - half, cx + half):  # end ticks show where the bone edges were marked
                draw.line([(end, cy - half / 8), (end, cy + half / 8)], fill=ANNOTATION, width=line)

        for x0, y0, x1, y1 in boxes.get(name, []):
            draw.rectangle([x0 * scale, y0 * scale, x1 * scale, y1 * scale], outline=BOX, width=line)

        draw.rectangle(draw.textbbox((6, 4), name, font=font), fill=(0, 0, 0))
        draw.text((6, 4), name, fill=(255, 255, 0), font=font)
        image.save(args.out / (Path(name).stem + ".png"))
    print(f"{len(knees)} overlays in {args.out}")


if __name__ == "__main__":
    main()
