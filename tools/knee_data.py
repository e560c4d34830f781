"""Inventory of the knee X-ray datasets: content hashes, sources, grades, patients, duplicate clusters.

Shared by `tools/audit.py` (the report) and `tools/split.py` (the leak-free manifest), so both see
exactly the same facts. Pixels are read only through the C++ core (`oac_core.prepare`), the same
canonical crop the model sees; format facts (size, bit depth, colour type) come from the PNG header.
"""
from __future__ import annotations

import csv
import hashlib
import os
import re
import struct
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
MODEL_CARD = REPO / "models" / "oa-inceptionv3.json"
SEED_DATASET = "Osteoarthritis_Dataset"
KL_DATASET = "kneeKL224"
SEED_SPLITS = ("train", "Valid", "test")
SEED_LABELS = ("Normal", "Osteoarthritis")

SOURCES = ("oai224", "kneexray", "oai299")
# Second-collection file names carry the KL grade: "NormalG0 (12).png", "MildG2 (5)(1).png".
KNEEXRAY_NAME = re.compile(r"^(Normal|Doubtful|Mild|Moderate|Severe)G([0-4]) \(\d+\)(\(\d+\))?\.png$")
KNEEXRAY_WORD_GRADE = {"Normal": 0, "Doubtful": 1, "Mild": 2, "Moderate": 3, "Severe": 4}
KNEEXRAY_SIZES = {(300, 162), (640, 161)}
OAI224_NAME = re.compile(r"^(\d{7})([LR])\.png$")
OAI299_NAME = re.compile(r"^(\d{7})_([12])\.png$")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_GRAY, PNG_RGB = 0, 2

# pHash: 8x8 lowest DCT frequencies of a 32x32 view of the canonical crop, DC dropped -> 63 bits.
PHASH_SIZE = 32
PHASH_FREQS = 8
PHASH_BITS = PHASH_FREQS * PHASH_FREQS - 1
# Two knee crops whose hashes differ in at most this many of 63 bits are the same radiograph.
# The audit measures why: re-encodings of one image (RGB vs 16-bit, rescaled) land at 0-4 bits, while
# knees of *different* OAI patients -- which cannot be duplicates -- never come closer than the
# smallest distance it reports (the margin is printed in audit.md).
NEAR_DUPLICATE_MAX_BITS = 8


def default_datasets_dir() -> Path | None:
    """`$OAC_DATASETS` (set by tools/oac), else `<repo>/../shared/datasets` when it exists."""
    env = os.environ.get("OAC_DATASETS")
    if env:
        return Path(env)
    candidate = REPO.parent / "shared" / "datasets"
    return candidate if candidate.is_dir() else None


def resolve_datasets_dir(arg: str | None) -> Path:
    path = Path(arg) if arg else default_datasets_dir()
    if path is None:
        sys.exit("error: no dataset folder given and ../shared/datasets does not exist; pass --datasets DIR")
    if not (path / SEED_DATASET).is_dir() and not (path / KL_DATASET).is_dir():
        sys.exit(f"error: {path} holds neither {SEED_DATASET}/ nor {KL_DATASET}/; pass the folder that contains them")
    return path


def load_core():
    """Import the pybind11 core from the build tree (tools/oac puts it on PYTHONPATH too)."""
    build_dir = REPO / "build" / "native" / "python"
    if str(build_dir) not in sys.path:
        sys.path.insert(0, str(build_dir))
    try:
        import oac_core
    except ImportError as error:
        raise RuntimeError(
            f"the C++ core's Python module oac_core is not importable ({error}); "
            f"build it first with `tools/oac build` (it lands in {build_dir})") from error
    return oac_core


# ---------------------------------------------------------------------------------------------
# Files, formats, sources, grades and patients


@dataclass(frozen=True)
class PngHeader:
    width: int
    height: int
    bit_depth: int
    color_type: int

    @property
    def describe(self) -> str:
        kind = {0: "gray", 2: "RGB", 3: "palette", 4: "gray+alpha", 6: "RGBA"}.get(self.color_type, "?")
        return f"{self.width}x{self.height} {self.bit_depth}-bit {kind}"


def read_png_header(data: bytes) -> PngHeader | None:
    if len(data) < 33 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    width, height, bit_depth, color_type = struct.unpack(">IIBB", data[16:26])
    return PngHeader(width, height, bit_depth, color_type)


def classify_source(name: str, header: PngHeader | None) -> str | None:
    """Source by name AND format; None when the two disagree or neither is known."""
    if header is None:
        return None
    size = (header.width, header.height)
    if OAI224_NAME.match(name):
        ok = size == (224, 224) and header.bit_depth == 8 and header.color_type == PNG_GRAY
        return "oai224" if ok else None
    if OAI299_NAME.match(name):
        return "oai299" if size == (299, 299) and header.color_type == PNG_GRAY else None
    if KNEEXRAY_NAME.match(name):
        rgb = header.color_type == PNG_RGB
        gray16 = header.color_type == PNG_GRAY and header.bit_depth == 16
        return "kneexray" if size in KNEEXRAY_SIZES and (rgb or gray16) else None
    return None


def patient_of(name: str) -> str | None:
    """OAI participant id (7 digits); left and right knee (L/R or _1/_2) are one patient."""
    match = OAI224_NAME.match(name) or OAI299_NAME.match(name)
    return match.group(1) if match else None


def kneexray_grade(name: str) -> int | None:
    match = KNEEXRAY_NAME.match(name)
    if not match:
        return None
    word, digit = match.group(1), int(match.group(2))
    if KNEEXRAY_WORD_GRADE[word] != digit:
        raise ValueError(f"file name {name!r} names grade {word} but G{digit}")
    return digit


@dataclass
class FileRecord:
    """One file on disk."""
    path: str                      # relative to the datasets folder
    sha256: str
    header: PngHeader | None
    source: str | None
    seed_split: str = ""           # Osteoarthritis_Dataset folder: train/Valid/test
    seed_label: str = ""           # Osteoarthritis_Dataset folder: Normal/Osteoarthritis

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass
class Content:
    """One unique image content (sha256) with every file that holds it."""
    sha256: str
    files: list[FileRecord]
    kl_grade: int | None = None
    kl_split: str = ""             # kneeKL224's own split for images in its manifest
    label: int | None = None       # 1 = KL >= 2 (radiographic OA)
    label_basis: str = ""          # "kl_grade" or "seed_folder"
    patient: str | None = None
    phashes: list[np.ndarray] = field(default_factory=list)   # one per canonical knee
    mirrored_phashes: list[np.ndarray] = field(default_factory=list)
    knee_sides: list[str] = field(default_factory=list)
    decode_error: str = ""

    @property
    def path(self) -> str:
        return self.files[0].path

    @property
    def source(self) -> str | None:
        sources = {f.source for f in self.files}
        return sources.pop() if len(sources) == 1 else None

    @property
    def seed_splits(self) -> list[str]:
        return [s for s in SEED_SPLITS if any(f.seed_split == s for f in self.files)]

    @property
    def seed_labels(self) -> list[str]:
        return [s for s in SEED_LABELS if any(f.seed_label == s for f in self.files)]


def file_order(record: FileRecord) -> tuple:
    """Representative path of a content: kneeKL224 first, then the seed folders train, Valid, test;
    within a folder the shorter name ("MildG2 (5).png" before its copy "MildG2 (5)(1).png")."""
    seed_rank = SEED_SPLITS.index(record.seed_split) if record.seed_split else -1
    return (seed_rank, len(record.path), record.path)


def scan_files(datasets: Path) -> tuple[list[FileRecord], list[dict]]:
    """Every PNG of both datasets, plus kneeKL224's manifest rows."""
    records = []
    seed_root = datasets / SEED_DATASET
    if seed_root.is_dir():
        for split in SEED_SPLITS:
            for label in SEED_LABELS:
                folder = seed_root / split / label
                if not folder.is_dir():
                    raise FileNotFoundError(f"{folder} is missing: expected {SEED_DATASET}/{{train,Valid,test}}/{{Normal,Osteoarthritis}}")
                for file in sorted(folder.iterdir()):
                    if file.suffix.lower() == ".png":
                        records.append(_file_record(datasets, file, split, label))
    manifest_rows = []
    manifest = datasets / KL_DATASET / "manifest.csv"
    if manifest.is_file():
        with open(manifest, newline="") as handle:
            manifest_rows = list(csv.DictReader(handle))
        for row in manifest_rows:
            stored = datasets / row["stored_at"]
            if not row["stored_at"].startswith(KL_DATASET + "/"):
                continue   # stored in Osteoarthritis_Dataset: already scanned above
            if not stored.is_file():
                raise FileNotFoundError(f"{manifest} lists {row['stored_at']}, which does not exist")
            records.append(_file_record(datasets, stored, "", ""))
    elif (datasets / KL_DATASET).is_dir():
        raise FileNotFoundError(f"{manifest} is missing")
    return records, manifest_rows


def _file_record(datasets: Path, file: Path, seed_split: str, seed_label: str) -> FileRecord:
    data = file.read_bytes()
    header = read_png_header(data)
    return FileRecord(path=file.relative_to(datasets).as_posix(), sha256=hashlib.sha256(data).hexdigest(),
                      header=header, source=classify_source(file.name, header),
                      seed_split=seed_split, seed_label=seed_label)


def group_contents(records: list[FileRecord], manifest_rows: list[dict]) -> tuple[list[Content], list[str]]:
    """Unique contents with KL grade, label and patient; returns (contents, grade/label notes)."""
    by_sha: dict[str, list[FileRecord]] = defaultdict(list)
    for record in records:
        by_sha[record.sha256].append(record)
    manifest_by_sha = {row["sha256"]: row for row in manifest_rows}
    manifest_by_name = {row["file"]: row for row in manifest_rows}
    notes = []
    contents = []
    for sha, files in sorted(by_sha.items()):
        content = Content(sha256=sha, files=sorted(files, key=file_order))
        names = sorted({f.name for f in files})
        patients = {patient_of(n) for n in names} - {None}
        if len(patients) > 1:
            notes.append(f"{content.path}: identical bytes under names of different patients {sorted(patients)}")
        content.patient = min(patients) if patients else None
        row = manifest_by_sha.get(sha)
        if row is None:
            for name in names:
                if name in manifest_by_name:
                    notes.append(f"{content.path}: named like kneeKL224's {name} but its bytes differ; grade not taken")
        if row is not None:
            content.kl_grade = int(row["kl_grade"])
            content.kl_split = row["split"]
        grades = {kneexray_grade(n) for n in names} - {None}
        if grades:
            content.kl_grade = grades.pop() if len(grades) == 1 else None
        if content.kl_grade is not None:
            content.label = int(content.kl_grade >= 2)
            content.label_basis = "kl_grade"
        elif content.source in ("oai224", "oai299") and len(content.seed_labels) == 1:
            # The seed dataset files OAI knees as Normal = KL0-1 and Osteoarthritis = KL2-4.
            content.label = int(content.seed_labels[0] == "Osteoarthritis")
            content.label_basis = "seed_folder"
        contents.append(content)
    return contents, notes


# ---------------------------------------------------------------------------------------------
# Perceptual hash of the canonical crop


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    x = np.arange(n)[None, :]
    return np.cos(np.pi * (2 * x + 1) * k / (2 * n))


DCT32 = _dct_matrix(PHASH_SIZE)


def phash(square: np.ndarray) -> np.ndarray:
    """63-bit DCT pHash (bool vector) of a PHASH_SIZE x PHASH_SIZE image."""
    low = (DCT32 @ square.astype(np.float64) @ DCT32.T)[:PHASH_FREQS, :PHASH_FREQS].ravel()[1:]
    return low > np.median(low)


def hash_spec(core):
    spec = core.parse_model_card(MODEL_CARD.read_text())
    spec.preprocess.input_size = PHASH_SIZE
    return spec


def hash_contents(contents: list[Content], datasets: Path, core, progress=None) -> None:
    """Fill `phashes` / `knee_sides` (or `decode_error`) from the core's canonical knee crops."""
    spec = hash_spec(core)
    for index, content in enumerate(contents):
        data = (datasets / content.path).read_bytes()
        try:
            knees = core.prepare(data, spec)
        except ValueError as error:
            content.decode_error = str(error)
            continue
        for knee in knees:
            view = np.asarray(knee["tensor"])[0]
            content.phashes.append(phash(view))
            content.mirrored_phashes.append(phash(view[:, ::-1]))
            content.knee_sides.append(knee["side"])
        if progress and (index + 1) % 1000 == 0:
            progress(f"hashed {index + 1}/{len(contents)}")


def hamming_pairs(left: np.ndarray, right: np.ndarray, max_bits: int, chunk: int = 1024):
    """(i, j, distance) with Hamming distance <= max_bits between left[i] and right[j] (bool [N, bits])."""
    signed_right = np.where(right, 1.0, -1.0).astype(np.float32)
    bits = left.shape[1]
    for start in range(0, len(left), chunk):
        block = np.where(left[start:start + chunk], 1.0, -1.0).astype(np.float32)
        # agreements - disagreements = bits - 2 * distance
        distance = np.rint((bits - block @ signed_right.T) / 2).astype(np.int32)
        for i, j in zip(*np.nonzero(distance <= max_bits)):
            yield int(i) + start, int(j), int(distance[i, j])


def nearest_other_group(hashes: np.ndarray, groups: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """For each hash, the smallest Hamming distance to a hash of a *different* group."""
    signed = np.where(hashes, 1.0, -1.0).astype(np.float32)
    bits = hashes.shape[1]
    out = np.empty(len(signed), dtype=np.int32)
    for start in range(0, len(signed), chunk):
        block = signed[start:start + chunk]
        distance = np.rint((bits - block @ signed.T) / 2).astype(np.int32)
        distance[groups[start:start + chunk, None] == groups[None, :]] = bits + 1
        out[start:start + chunk] = distance.min(axis=1)
    return out


class UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int) -> None:
        a, b = self.find(i), self.find(j)
        if a != b:
            self.parent[max(a, b)] = min(a, b)

    def components(self) -> list[int]:
        return [self.find(i) for i in range(len(self.parent))]


@dataclass
class NearDuplicate:
    a: int          # content indices, a < b
    b: int
    bits: int
    mirrored: bool  # b matches a flipped left-right


def knee_hash_table(contents: list[Content], mirrored: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(owner content index per knee crop, bool hashes [knees, bits])."""
    owners = [i for i, c in enumerate(contents) for _ in c.phashes]
    hashes = [h for c in contents for h in (c.mirrored_phashes if mirrored else c.phashes)]
    if not hashes:
        return np.zeros(0, dtype=np.int64), np.zeros((0, PHASH_BITS), dtype=bool)
    return np.array(owners), np.array(hashes)


def find_near_duplicates(contents: list[Content], max_bits: int = NEAR_DUPLICATE_MAX_BITS) -> list[NearDuplicate]:
    """Pairs of distinct contents sharing a knee crop, as is or mirrored, within max_bits."""
    owners, hashes = knee_hash_table(contents)
    _, flipped = knee_hash_table(contents, mirrored=True)
    best: dict[tuple[int, int], NearDuplicate] = {}
    for right, mirrored in ((hashes, False), (flipped, True)):
        for i, j, bits in hamming_pairs(hashes, right, max_bits):
            a, b = int(owners[i]), int(owners[j])
            if a == b:
                continue
            pair = NearDuplicate(min(a, b), max(a, b), bits, mirrored)
            key = (pair.a, pair.b)
            if key not in best or (pair.bits, pair.mirrored) < (best[key].bits, best[key].mirrored):
                best[key] = pair
    return sorted(best.values(), key=lambda pair: (pair.a, pair.b))


# ---------------------------------------------------------------------------------------------
# Clusters, contradictions and leak-free groups


@dataclass
class Inventory:
    datasets: Path
    files: list[FileRecord]
    contents: list[Content]                 # sorted by sha256
    notes: list[str]                        # grade/name oddities worth a human look
    near_duplicates: list[NearDuplicate]
    cluster: list[str]                      # duplicate-cluster id per content
    conflicts: dict[str, list[str]]         # cluster id -> why its labels contradict
    patient: list[str]                      # group id per content: OAI id, else "cluster:<id>"
    group: list[int]                        # split group (patient ∪ cluster) per content

    def dropped(self, index: int) -> bool:
        return self.cluster[index] in self.conflicts

    def usable(self, index: int) -> bool:
        """Goes into the split: labels consistent, source recognised, decodable by the core."""
        content = self.contents[index]
        return not self.dropped(index) and content.source is not None and not content.decode_error


def build_inventory(datasets: Path, core, progress=None) -> Inventory:
    files, manifest_rows = scan_files(datasets)
    if not files:
        raise FileNotFoundError(f"no PNG files found under {datasets}")
    contents, notes = group_contents(files, manifest_rows)
    hash_contents(contents, datasets, core, progress)
    return link_inventory(datasets, files, contents, notes)


def link_inventory(datasets: Path, files: list[FileRecord], contents: list[Content], notes: list[str]) -> Inventory:
    """Near-duplicate clusters, label conflicts and split groups of hashed contents."""
    near_duplicates = find_near_duplicates(contents)
    clusters = UnionFind(len(contents))
    for pair in near_duplicates:
        clusters.union(pair.a, pair.b)
    roots = clusters.components()
    cluster = [contents[root].sha256[:12] for root in roots]
    conflicts = cluster_conflicts(contents, cluster)

    patient = [c.patient or f"cluster:{cluster[i]}" for i, c in enumerate(contents)]
    groups = UnionFind(len(contents))
    first_with_key: dict[str, int] = {}
    for index in range(len(contents)):
        for key in (f"patient:{patient[index]}", f"cluster:{cluster[index]}"):
            groups.union(first_with_key.setdefault(key, index), index)
    return Inventory(datasets, files, contents, notes, near_duplicates, cluster, conflicts, patient,
                     groups.components())


def cluster_conflicts(contents: list[Content], cluster: list[str]) -> dict[str, list[str]]:
    """Clusters (same or near-same radiograph) whose members disagree on any label."""
    members: dict[str, list[Content]] = defaultdict(list)
    for index, content in enumerate(contents):
        members[cluster[index]].append(content)
    conflicts = {}
    for cluster_id, group in members.items():
        reasons = []
        folders = sorted({f.seed_label for c in group for f in c.files if f.seed_label})
        if len(folders) > 1:
            reasons.append("filed under " + " and ".join(folders))
        names = {f.name for c in group for f in c.files}
        name_grades = sorted({g for g in map(kneexray_grade, names) if g is not None})
        grades = sorted({c.kl_grade for c in group if c.kl_grade is not None} | set(name_grades))
        if len(grades) > 1:
            reasons.append("KL grades " + " vs ".join(map(str, grades)))
        labels = sorted({c.label for c in group if c.label is not None})
        if len(labels) > 1:
            reasons.append("OA labels 0 vs 1")
        if reasons:
            conflicts[cluster_id] = reasons
    return conflicts
