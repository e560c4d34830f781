"""A small synthetic copy of the two datasets' layouts with planted problems, for the audit/split tests.

Images are smooth random fields (distinct seeds give unrelated pHashes), written in the formats of
the real sources: 224x224 8-bit gray OAI crops, 300x162 / 640x161 RGB or 16-bit gray second-collection
images, 299x299 OAI crops.
"""
from __future__ import annotations

import csv
import hashlib
import shutil
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter, zoom

SEED = "Osteoarthritis_Dataset"
KL = "kneeKL224"

# Planted facts the tests assert on (paths relative to the datasets folder).
EXACT_DUPLICATE = (f"{SEED}/Valid/Osteoarthritis/ModerateG3 (1).png", f"{SEED}/test/Osteoarthritis/ModerateG3 (1).png")
EXACT_DUPLICATE_IN_TRAIN = (f"{SEED}/train/Osteoarthritis/MildG2 (1).png", f"{SEED}/train/Osteoarthritis/MildG2 (1)(1).png")
CONTRADICTION = (f"{SEED}/test/Normal/NormalG0 (1).png", f"{SEED}/train/Osteoarthritis/DoubtfulG1 (1).png")
NEAR_DUPLICATE = (f"{SEED}/Valid/Osteoarthritis/ModerateG3 (1).png", f"{SEED}/test/Osteoarthritis/ModerateG3 (2).png")
NEAR_CONTRADICTION = (f"{SEED}/train/Osteoarthritis/MildG2 (2).png", f"{SEED}/test/Normal/NormalG0 (3).png")
BILATERAL = f"{SEED}/test/Normal/NormalG0 (4).png"
BILATERAL_HALF = f"{SEED}/train/Osteoarthritis/DoubtfulG1 (2).png"   # the right knee of BILATERAL, G1 vs G0
MIRRORED = (f"{SEED}/train/Osteoarthritis/ModerateG3 (4).png", f"{SEED}/test/Osteoarthritis/ModerateG3 (5).png")
LEAKED_PATIENT = "9000001"   # 9000001L in train/Normal, 9000001R in Valid/Osteoarthritis
OTHER_KNEE = (f"{SEED}/train/Normal/9000002L.png", f"{KL}/train/2/9000002R.png")   # mirror images, KL0 vs KL2
CROSS_DATASET_PATIENT = (f"{SEED}/train/Osteoarthritis/9000003R.png", f"{KL}/train/2/9000003L.png")
OAI299 = f"{SEED}/test/Osteoarthritis/9000005_1.png"
UNRECOGNISED = f"{SEED}/train/Normal/9000099L.png"   # OAI name but RGB 300x162
KL_ONLY_PATIENTS = 40


def smooth_image(seed: int, height: int, width: int) -> np.ndarray:
    """A smooth random field with fine texture in [0, 1] that looks nothing like another seed's."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((max(height // 16, 4), max(width // 16, 4)))
    field = zoom(coarse, (height / coarse.shape[0], width / coarse.shape[1]), order=3)[:height, :width]
    field = gaussian_filter(field, 2) + 0.3 * gaussian_filter(rng.random((height, width)), 1)   # bone texture
    return (field - field.min()) / (field.max() - field.min())


def save(path: Path, image: np.ndarray, kind: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "gray8":
        Image.fromarray(np.round(image * 255).astype(np.uint8), "L").save(path)
    elif kind == "rgb":
        gray = np.round(image * 255).astype(np.uint8)
        Image.fromarray(np.stack([gray, gray, gray], axis=-1), "RGB").save(path)
    elif kind == "gray16":
        Image.fromarray(np.round(image * 65535).astype(np.uint16)).save(path)
    else:
        raise ValueError(kind)


def bilateral(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """640x161: two knees side by side with a dark gap (the split column) in the middle."""
    image = np.zeros((161, 640))
    image[:, :300] = left[:161, :300]
    image[:, 340:] = right[:161, :300]
    return image


def make_datasets(root: Path) -> Path:
    """Write the synthetic datasets under root/datasets and return that folder."""
    datasets = root / "datasets"
    seed = datasets / SEED
    kl_rows = []   # split, kl_grade, file, sha256, stored_at

    def oai(rel: str, image_seed: int, grade: int, kl_split: str = "train", size: int = 224) -> None:
        path = datasets / rel
        save(path, smooth_image(image_seed, size, size), "gray8")
        if size == 224:
            kl_rows.append((kl_split, grade, path.name, sha(path), rel))

    oai(f"{SEED}/train/Normal/9000001L.png", 1, 0)
    oai(f"{SEED}/Valid/Osteoarthritis/9000001R.png", 2, 2)
    oai(f"{SEED}/train/Normal/9000002L.png", 3, 0)
    oai(f"{SEED}/train/Osteoarthritis/9000003R.png", 4, 3)
    oai(f"{SEED}/Valid/Normal/9000004L.png", 5, 0)
    oai(f"{SEED}/test/Normal/9000004R.png", 6, 1)
    save(datasets / OAI299, smooth_image(7, 299, 299), "gray8")
    save(datasets / UNRECOGNISED, smooth_image(8, 162, 300), "rgb")
    oai(f"{KL}/val/2/9000008L.png", 9, 2, kl_split="val")
    oai(CROSS_DATASET_PATIENT[1], 10, 2)
    other_knee = datasets / OTHER_KNEE[1]
    save(other_knee, smooth_image(3, 224, 224)[:, ::-1], "gray8")
    kl_rows.append(("train", 2, other_knee.name, sha(other_knee), OTHER_KNEE[1]))
    for patient in range(KL_ONLY_PATIENTS):
        for side, offset in (("L", 0), ("R", 1)):
            grade = (patient + offset) % 5
            oai(f"{KL}/train/{grade}/91{patient:05d}{side}.png", 1000 + 2 * patient + offset, grade)

    moderate = smooth_image(20, 162, 300)
    save(datasets / EXACT_DUPLICATE[0], moderate, "rgb")
    shutil.copy(datasets / EXACT_DUPLICATE[0], datasets / EXACT_DUPLICATE[1])
    save(datasets / NEAR_DUPLICATE[1], moderate, "gray16")   # same radiograph, other encoding

    save(datasets / EXACT_DUPLICATE_IN_TRAIN[0], smooth_image(21, 162, 300), "rgb")
    shutil.copy(datasets / EXACT_DUPLICATE_IN_TRAIN[0], datasets / EXACT_DUPLICATE_IN_TRAIN[1])

    save(datasets / CONTRADICTION[0], smooth_image(22, 162, 300), "rgb")
    (datasets / CONTRADICTION[1]).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(datasets / CONTRADICTION[0], datasets / CONTRADICTION[1])

    mild = smooth_image(23, 162, 300)
    save(datasets / NEAR_CONTRADICTION[0], mild, "rgb")
    save(datasets / NEAR_CONTRADICTION[1], mild, "gray16")

    right_knee = smooth_image(24, 162, 300)
    save(datasets / BILATERAL, bilateral(smooth_image(25, 162, 300), right_knee), "rgb")
    save(datasets / BILATERAL_HALF, right_knee, "rgb")

    flipped = smooth_image(26, 162, 300)
    save(datasets / MIRRORED[0], flipped, "rgb")
    save(datasets / MIRRORED[1], flipped[:, ::-1], "rgb")

    for index in range(12):   # unrelated second-collection images so every stratum has several groups
        grade, word = [(0, "Normal"), (1, "Doubtful"), (2, "Mild"), (3, "Moderate")][index % 4]
        folder = "test/Normal" if grade == 0 else "train/Osteoarthritis"
        save(seed / folder / f"{word}G{grade} ({10 + index}).png", smooth_image(100 + index, 162, 300),
             "rgb" if index % 3 else "gray16")

    for split in ("train", "Valid", "test"):
        for label in ("Normal", "Osteoarthritis"):
            (seed / split / label).mkdir(parents=True, exist_ok=True)
    with open(datasets / KL / "manifest.csv", "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["split", "kl_grade", "file", "sha256", "stored_at"])
        writer.writerows(kl_rows)
    return datasets


def planted_views(contents, size: int = 64) -> None:
    """Stand-in knee views for tests of the grouping logic without the core: an unrelated textured
    field per knee, except that each planted near-duplicate is its original shifted by 2 pixels
    (or mirrored) -- what re-cropping does to a radiograph."""
    margin = 4
    fields = {}

    def field(key: str) -> np.ndarray:
        if key not in fields:
            rng = np.random.default_rng(int(hashlib.sha256(key.encode()).hexdigest()[:8], 16))
            fields[key] = gaussian_filter(rng.random((size + 2 * margin, size + 2 * margin)), 1.5)
        return fields[key]

    def view(key: str, shift: int = 0) -> np.ndarray:
        return field(key)[margin:margin + size, margin + shift:margin + shift + size]

    copies = {NEAR_DUPLICATE[1]: NEAR_DUPLICATE[0], NEAR_CONTRADICTION[1]: NEAR_CONTRADICTION[0]}
    for content in contents:
        path = content.path
        if path in copies:
            content.add_knee("single", view(copies[path], shift=2))
        elif path == BILATERAL:
            content.add_knee("left", view(path))
            content.add_knee("right", view(BILATERAL_HALF, shift=2))
        elif path in (MIRRORED[1], OTHER_KNEE[1]):
            original = MIRRORED[0] if path == MIRRORED[1] else OTHER_KNEE[0]
            content.add_knee("single", view(original)[:, ::-1])
        else:
            content.add_knee("single", view(path))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def planted_inventory(datasets: Path):
    """The inventory of a synthetic dataset folder, with the planted near-duplicate views in place of the core's."""
    from data import knee_data
    files, manifest_rows = knee_data.scan_files(datasets)
    contents, notes = knee_data.group_contents(files, manifest_rows)
    planted_views(contents)
    return knee_data.link_inventory(datasets, files, contents, notes)
