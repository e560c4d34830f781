#!/usr/bin/python3
"""Write a corpus of images that are not knee X-rays, to measure how often the OOD gate refuses them.

    tools/evaluation/ood_corpus.py --out DIR [--no-imagemagick]

Everything comes from what Debian ships or from arithmetic, so the corpus is the same on every machine:
scikit-image's sample images (PNG, and JPEG for the photographs), ImageMagick's built-in images,
and synthetic noise, gradients and blank frames at several sizes, channel counts and bit depths.
File names start with the kind (`skimage-`, `imagemagick-`, `noise-`, `gradient-`, `blank-`), which
is how tools/evaluation/evaluate.py groups the rejection rates. DIR/corpus.csv describes every file.
"""
from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

SKIMAGE_SAMPLES = ("astronaut", "camera", "coffee", "chelsea", "rocket", "coins", "moon", "page", "text", "clock",
                   "hubble_deep_field", "immunohistochemistry", "logo", "horse", "grass", "gravel", "brick", "cell",
                   "retina", "microaneurysms", "colorwheel", "checkerboard")
IMAGEMAGICK_BUILTINS = ("rose", "logo", "wizard", "granite", "netscape")
# (width, height): tiny, the model's own size, a photo-like size, and the wide two-knee aspect.
SYNTHETIC_SIZES = ((64, 64), (224, 224), (512, 384), (640, 161))
BLANK_LEVELS = {"black": 0.0, "grey": 0.5, "white": 1.0}
SEED = 7


def as_uint8(image: np.ndarray) -> np.ndarray:
    if image.dtype == bool:
        return image.astype(np.uint8) * 255
    if image.dtype == np.uint8:
        return image
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def save(array: np.ndarray, path: Path, bit_depth: int = 8, quality: int = 90) -> None:
    """Gray (H, W) or colour (H, W, 3|4) array -> PNG or JPEG; floats are in [0, 1]."""
    if bit_depth == 16:
        if array.ndim != 2:
            raise ValueError("16-bit output is written for grey images only")
        Image.fromarray(np.clip(np.rint(array * 65535.0), 0, 65535).astype(np.uint16)).save(path)
        return
    image = Image.fromarray(as_uint8(array))
    if path.suffix == ".jpg":
        image.convert("RGB" if image.mode in ("RGBA", "RGB") else "L").save(path, quality=quality)
    else:
        image.save(path)


def skimage_samples(out: Path) -> list[dict]:
    import skimage.data

    written = []
    for name in SKIMAGE_SAMPLES:
        image = getattr(skimage.data, name)()
        formats = ["png"] + (["jpg"] if image.ndim == 3 else [])
        for extension in formats:
            path = out / f"skimage-{name}.{extension}"
            save(image, path)
            written.append(describe(path, "skimage", f"skimage.data.{name}()"))
    return written


def imagemagick_builtins(out: Path) -> list[dict]:
    convert = shutil.which("convert")
    if convert is None:
        raise RuntimeError("ImageMagick's `convert` is not installed (apt-get install imagemagick), "
                           "or pass --no-imagemagick")
    written = []
    for name in IMAGEMAGICK_BUILTINS:
        path = out / f"imagemagick-{name}.png"
        result = subprocess.run([convert, f"{name}:", str(path)], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"`convert {name}: {path}` failed: {result.stderr.strip()}")
        written.append(describe(path, "imagemagick", f"convert {name}:"))
    return written


def synthetic_images(out: Path) -> list[dict]:
    rng = np.random.default_rng(SEED)
    written = []

    def emit(kind: str, detail: str, array: np.ndarray, bit_depth: int = 8) -> None:
        height, width = array.shape[:2]
        channels = "rgb" if array.ndim == 3 else "gray"
        path = out / f"{kind}-{detail}-{channels}{bit_depth}-{width}x{height}.png"
        save(array, path, bit_depth)
        written.append(describe(path, kind, f"{detail}, {channels} {bit_depth}-bit"))

    for width, height in SYNTHETIC_SIZES:
        emit("noise", "uniform", rng.random((height, width)))
        emit("noise", "uniform", rng.random((height, width)), bit_depth=16)
        emit("noise", "uniform", rng.random((height, width, 3)))
        emit("noise", "gaussian", np.clip(rng.normal(0.5, 0.15, (height, width)), 0, 1))
        y, x = np.mgrid[0:height, 0:width]
        horizontal = x / max(width - 1, 1)
        vertical = y / max(height - 1, 1)
        radial = np.hypot(horizontal - 0.5, vertical - 0.5) / np.hypot(0.5, 0.5)
        emit("gradient", "horizontal", horizontal)
        emit("gradient", "vertical", vertical, bit_depth=16)
        emit("gradient", "radial", radial)
        emit("gradient", "rgb", np.dstack([horizontal, vertical, 1.0 - horizontal]))
        for level_name, level in BLANK_LEVELS.items():
            emit("blank", level_name, np.full((height, width), level))
            emit("blank", level_name, np.full((height, width), level), bit_depth=16)
            emit("blank", level_name, np.full((height, width, 3), level))
    return written


def describe(path: Path, kind: str, origin: str) -> dict:
    with Image.open(path) as image:
        return {"file": path.name, "kind": kind, "origin": origin, "format": image.format,
                "mode": image.mode, "width": image.width, "height": image.height}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="folder to write the images and corpus.csv into")
    parser.add_argument("--no-imagemagick", action="store_true", help="skip ImageMagick's built-in images")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        written = skimage_samples(args.out) + synthetic_images(args.out)
        if not args.no_imagemagick:
            written += imagemagick_builtins(args.out)
    except (RuntimeError, ValueError, OSError) as error:
        sys.exit(f"ood_corpus: {error}")
    with open(args.out / "corpus.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(written[0]))
        writer.writeheader()
        writer.writerows(written)
    kinds = {}
    for entry in written:
        kinds[entry["kind"]] = kinds.get(entry["kind"], 0) + 1
    print(f"wrote {len(written)} images to {args.out}: " + ", ".join(f"{n} {k}" for k, n in kinds.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
