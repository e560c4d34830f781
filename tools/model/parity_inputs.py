"""Deterministic model inputs for numeric parity checks (PyTorch vs TensorFlow.js / ONNX Runtime).

Real knee radiographs give realistic activation ranges; a synthetic pattern covers the case where the
datasets are absent. The preprocessing here is deliberately simple (grey, min-max, centre crop, PIL
bilinear resize, [-1, 1]); the product's exact preprocessing is the C++ core (oac_core), which parity
checks do not need because both sides of a comparison receive the same tensor.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from lib.paths import datasets_dir

# Three sources with different formats: an OAI 224x224 8-bit crop, a 300x162 RGB image from the
# second collection, a 299x299 crop.
KNEE_SAMPLES = (
    "Osteoarthritis_Dataset/train/Normal/9099440R.png",
    "Osteoarthritis_Dataset/train/Osteoarthritis/DoubtfulG1 (1).png",
    "Osteoarthritis_Dataset/test/Osteoarthritis/9093622_1.png",
)


def knee_tensor(path: Path, size: int) -> np.ndarray:
    """One radiograph as float32 [3,size,size] in [-1,1], grey replicated to RGB."""
    pixels = np.asarray(Image.open(path), dtype=np.float32)
    grey = pixels[..., :3].mean(axis=-1) if pixels.ndim == 3 else pixels
    grey = (grey - grey.min()) / max(float(grey.max() - grey.min()), 1e-6)
    height, width = grey.shape
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = Image.fromarray(grey[top:top + side, left:left + side], mode="F")
    resized = np.asarray(square.resize((size, size), Image.BILINEAR), dtype=np.float32)
    return np.repeat((resized * 2.0 - 1.0)[None], 3, axis=0)


def synthetic_pattern(size: int) -> np.ndarray:
    """A smooth colour pattern with edges, float32 [3,size,size] in [-1,1]; distinct per channel so RGB order matters."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    red = np.sin(2 * np.pi * 3 * x) * np.cos(2 * np.pi * 2 * y)
    green = np.where((x - 0.5) ** 2 + (y - 0.5) ** 2 < 0.09, 0.8, -0.6)
    blue = 2.0 * ((4 * x + 4 * y) % 1.0) - 1.0
    return np.stack([red, green, blue]).astype(np.float32)


def knee_batch(size: int, count: int) -> np.ndarray:
    """float32 [count,3,size,size]: radiographs spread evenly over the sorted original dataset (all splits and sources)."""
    paths = sorted((datasets_dir() / "Osteoarthritis_Dataset").glob("*/*/*.png"))
    if len(paths) < count:
        raise FileNotFoundError(f"need {count} knee images under {datasets_dir() / 'Osteoarthritis_Dataset'}, "
                                f"found {len(paths)}; set OAC_DATASETS to the datasets folder")
    return np.stack([knee_tensor(paths[i * len(paths) // count], size) for i in range(count)])


def parity_inputs(size: int, knees: int = len(KNEE_SAMPLES)) -> np.ndarray:
    """float32 [N,3,size,size]: the first `knees` sample radiographs that exist, then the synthetic pattern."""
    paths = [datasets_dir() / sample for sample in KNEE_SAMPLES[:knees]]
    images = [knee_tensor(path, size) for path in paths if path.is_file()]
    return np.stack(images + [synthetic_pattern(size)])
