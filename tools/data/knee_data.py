"""Inventory of the knee X-ray datasets: content hashes, sources, grades, patients, duplicate clusters.

Shared by `tools/data/audit.py` (the report) and `tools/data/split.py` (the leak-free manifest), so both see
exactly the same facts. Pixels are read only through the C++ core (`oac_core.prepare`), the same
canonical crop the model sees; format facts (size, bit depth, colour type) come from the PNG header.
"""
from __future__ import annotations

import csv
import hashlib
import json
import re
import struct
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.fft

from lib.core import load_core
from lib.paths import MODEL_CARD, REPO_ROOT, datasets_dir_if_present

CACHE_ROOT = REPO_ROOT / "models" / "cache"     # git-ignored
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

# Near-duplicates are found in two stages on the core's canonical knee crop, viewed at VIEW_SIZE^2:
# 1. retrieval: a 63-bit DCT pHash (8x8 lowest frequencies of a 32x32 view, DC dropped); every knee's
#    CANDIDATES_PER_KNEE nearest knees by Hamming distance, as is and mirrored, are candidates.
#    A Hamming threshold alone cannot decide: OAI crops of *different* patients come as close as
#    2 bits, while re-cropped copies in the second collection drift 10+ bits apart (audit.md).
# 2. decision: the phase-correlation peak of the two views (1 = identical up to a shift, ~0.2 for
#    unrelated knees). It is shift-tolerant, so re-cropped copies score high.
VIEW_SIZE = 64
PHASH_SIZE = 32
PHASH_FREQS = 8
PHASH_BITS = PHASH_FREQS * PHASH_FREQS - 1
CANDIDATES_PER_KNEE = 6
# Same radiograph: above the highest peak measured between knees of different OAI patients (0.46 on
# the shared datasets; the audit re-measures it on every run and reports the margin).
SAME_RADIOGRAPH_MIN_PEAK = 0.5
# Possibly the same knee: for images without a patient id (second collection) pairs this close are
# kept in one split group, without dropping them as duplicates. Re-cropped copies of one knee score
# 0.25-0.5 there (audit.md shows examples); OAI patients, who have ids, are grouped by id instead.
SAME_KNEE_MIN_PEAK = 0.3


def resolve_datasets_dir(arg: str | None) -> Path:
    path = Path(arg) if arg else datasets_dir_if_present()
    if path is None:
        sys.exit("error: no dataset folder given and ../shared/datasets does not exist; pass --datasets DIR")
    if not (path / SEED_DATASET).is_dir() and not (path / KL_DATASET).is_dir():
        sys.exit(f"error: {path} holds neither {SEED_DATASET}/ nor {KL_DATASET}/; pass the folder that contains them")
    return path


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
    knee_sides: list[str] = field(default_factory=list)       # one per canonical knee
    views: list[np.ndarray] = field(default_factory=list)     # VIEW_SIZE^2 view of the knee crop
    phashes: list[np.ndarray] = field(default_factory=list)
    mirrored_phashes: list[np.ndarray] = field(default_factory=list)
    decode_error: str = ""

    @property
    def path(self) -> str:
        return self.files[0].path

    def add_knee(self, side: str, view: np.ndarray) -> None:
        self.knee_sides.append(side)
        self.views.append(np.asarray(view, dtype=np.float32))
        self.phashes.append(view_phash(view))
        self.mirrored_phashes.append(view_phash(view[:, ::-1]))

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
VIEW_WINDOW = np.outer(np.hanning(VIEW_SIZE), np.hanning(VIEW_SIZE)).astype(np.float32)


def phash(square: np.ndarray) -> np.ndarray:
    """63-bit DCT pHash (bool vector) of a PHASH_SIZE x PHASH_SIZE image."""
    low = (DCT32 @ square.astype(np.float64) @ DCT32.T)[:PHASH_FREQS, :PHASH_FREQS].ravel()[1:]
    return low > np.median(low)


def view_phash(view: np.ndarray) -> np.ndarray:
    """pHash of a VIEW_SIZE view (2x2 block means give the 32x32 input)."""
    factor = VIEW_SIZE // PHASH_SIZE
    return phash(view.reshape(PHASH_SIZE, factor, PHASH_SIZE, factor).mean(axis=(1, 3)))


def view_spec(core):
    spec = core.parse_model_card(MODEL_CARD.read_text())
    spec.preprocess.input_size = VIEW_SIZE
    return spec


def view_cache_dir(core, cache_root: Path) -> Path:
    """Folder of cached knee views. Views depend on the core's build and on the card's preprocessing,
    so both are in the folder name: a rebuilt core or an edited card starts a fresh cache."""
    digest = hashlib.sha256(Path(core.__file__).read_bytes())
    digest.update(json.dumps(json.loads(MODEL_CARD.read_text())["preprocess"], sort_keys=True).encode())
    digest.update(f"view{VIEW_SIZE}".encode())
    return cache_root / f"knee-views-{digest.hexdigest()[:16]}"


def hash_contents(contents: list[Content], datasets: Path, core, progress=None, cache_root: Path | None = None) -> None:
    """Fill each content's knee views (or `decode_error`) from the core's canonical knee crops.

    With cache_root, views are kept per sha256 under it (reading 8,000 images through the core is
    the slow part of a run on a shared machine)."""
    spec = view_spec(core)
    cache = view_cache_dir(core, cache_root) if cache_root else None
    if cache:
        cache.mkdir(parents=True, exist_ok=True)
    for index, content in enumerate(contents):
        cached = cache / f"{content.sha256}.npz" if cache else None
        if cached and cached.is_file():
            with np.load(cached) as stored:
                content.decode_error = str(stored["error"])
                for side, view in zip(stored["sides"], stored["views"]):
                    content.add_knee(str(side), view)
            continue
        try:
            knees = core.prepare((datasets / content.path).read_bytes(), spec)
        except ValueError as error:
            content.decode_error = str(error)
            knees = []
        for knee in knees:
            content.add_knee(knee["side"], np.asarray(knee["tensor"])[0])
        if cached:
            views = np.array(content.views, dtype=np.float32).reshape(-1, VIEW_SIZE, VIEW_SIZE)
            np.savez(cached, sides=np.array(content.knee_sides, dtype=str), views=views,
                     error=np.array(content.decode_error))
        if progress and (index + 1) % 1000 == 0:
            progress(f"read {index + 1}/{len(contents)} images")


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


def nearest_candidates(left: np.ndarray, right: np.ndarray, owners: np.ndarray, k: int,
                       chunk: int = 1024) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each left hash, its k nearest right hashes of other contents: (i, j, Hamming distance)."""
    signed_right = np.where(right, 1.0, -1.0).astype(np.float32)
    bits = left.shape[1]
    k = min(k, len(right) - 1)
    rows, cols, dists = [], [], []
    if k < 1:
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0, int)
    for start in range(0, len(left), chunk):
        block = np.where(left[start:start + chunk], 1.0, -1.0).astype(np.float32)
        distance = np.rint((bits - block @ signed_right.T) / 2).astype(np.int32)
        distance[owners[start:start + chunk, None] == owners[None, :]] = bits + 1
        nearest = np.argpartition(distance, k - 1, axis=1)[:, :k]
        here = np.arange(len(block))[:, None]
        keep = distance[here, nearest] <= bits
        rows.append(np.broadcast_to(here + start, nearest.shape)[keep])
        cols.append(nearest[keep])
        dists.append(distance[here, nearest][keep])
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(dists)


def phase_correlation_peaks(views: np.ndarray, left: np.ndarray, right: np.ndarray, mirrored: bool,
                            chunk: int = 2048) -> np.ndarray:
    """Peak of the phase correlation of views[left] with views[right] (flipped if mirrored)."""
    centred = views.astype(np.float64) - views.mean(axis=(1, 2), keepdims=True)
    spectrum = scipy.fft.rfft2(centred * VIEW_WINDOW)
    partner = scipy.fft.rfft2(centred[:, :, ::-1] * VIEW_WINDOW) if mirrored else spectrum
    peaks = np.empty(len(left), dtype=np.float32)
    for start in range(0, len(left), chunk):
        cross = spectrum[left[start:start + chunk]] * np.conj(partner[right[start:start + chunk]])
        cross /= np.abs(cross) + 1e-9   # whiten; bins without content stay ~0
        surface = scipy.fft.irfft2(cross, s=views.shape[1:])
        peaks[start:start + chunk] = surface.reshape(len(cross), -1).max(axis=1)
    return peaks


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
class KneePair:
    """Two distinct contents whose knee crops were compared (retrieved as pHash neighbours)."""
    a: int          # content indices, a < b
    b: int
    bits: int       # pHash Hamming distance
    peak: float     # phase-correlation peak
    mirrored: bool  # b compared flipped left-right


def same_radiograph(contents: list[Content], pair: KneePair) -> bool:
    """Peak above the threshold, except a mirrored match between two images of one OAI patient:
    that is the other knee (left and right knees are near mirror images), not a copy."""
    a, b = contents[pair.a], contents[pair.b]
    other_knee = pair.mirrored and a.patient is not None and a.patient == b.patient
    return pair.peak >= SAME_RADIOGRAPH_MIN_PEAK and not other_knee


def knee_table(contents: list[Content]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(owner content index, pHash, mirrored pHash, view) per knee crop."""
    owners = np.array([i for i, c in enumerate(contents) for _ in c.views], dtype=np.int64)
    if not len(owners):
        empty = np.zeros((0, PHASH_BITS), dtype=bool)
        return owners, empty, empty, np.zeros((0, VIEW_SIZE, VIEW_SIZE), dtype=np.float32)
    hashes = np.array([h for c in contents for h in c.phashes])
    mirrored = np.array([h for c in contents for h in c.mirrored_phashes])
    views = np.array([v for c in contents for v in c.views], dtype=np.float32)
    return owners, hashes, mirrored, views


def compare_knees(contents: list[Content], k: int = CANDIDATES_PER_KNEE) -> list[KneePair]:
    """Best-scoring comparison per pair of contents among each knee's k pHash neighbours."""
    owners, hashes, mirrored_hashes, views = knee_table(contents)
    best: dict[tuple[int, int], KneePair] = {}
    for right, mirrored in ((hashes, False), (mirrored_hashes, True)):
        left_knee, right_knee, bits = nearest_candidates(hashes, right, owners, k)
        peaks = phase_correlation_peaks(views, left_knee, right_knee, mirrored)
        for i, j, distance, peak in zip(left_knee, right_knee, bits, peaks):
            a, b = int(owners[i]), int(owners[j])
            pair = KneePair(min(a, b), max(a, b), int(distance), float(peak), mirrored)
            key = (pair.a, pair.b)
            if key not in best or pair.peak > best[key].peak:
                best[key] = pair
    return sorted(best.values(), key=lambda pair: (pair.a, pair.b))


@dataclass
class Inventory:
    datasets: Path
    files: list[FileRecord]
    contents: list[Content]                 # sorted by sha256
    notes: list[str]                        # grade/name oddities worth a human look
    knee_pairs: list[KneePair]              # every compared pair (pHash neighbours)
    cluster: list[str]                      # same-radiograph cluster id per content
    conflicts: dict[str, list[str]]         # cluster id -> why its labels contradict
    patient: list[str]                      # OAI id, else "knee:<id>" (possibly the same knee)
    group: list[int]                        # split group (patient ∪ cluster) per content

    @property
    def near_duplicates(self) -> list[KneePair]:
        return [pair for pair in self.knee_pairs if same_radiograph(self.contents, pair)]

    def dropped(self, index: int) -> bool:
        return self.cluster[index] in self.conflicts

    def usable(self, index: int) -> bool:
        """Goes into the split: labels consistent, source recognised, decodable by the core."""
        content = self.contents[index]
        return not self.dropped(index) and content.source is not None and not content.decode_error


def build_inventory(datasets: Path, core, progress=None, cache_root: Path | None = None) -> Inventory:
    files, manifest_rows = scan_files(datasets)
    if not files:
        raise FileNotFoundError(f"no PNG files found under {datasets}")
    contents, notes = group_contents(files, manifest_rows)
    hash_contents(contents, datasets, core, progress, cache_root)
    return link_inventory(datasets, files, contents, notes)


def link_inventory(datasets: Path, files: list[FileRecord], contents: list[Content], notes: list[str]) -> Inventory:
    """Same-radiograph clusters, label conflicts and split groups of contents with knee views."""
    knee_pairs = compare_knees(contents)
    clusters = UnionFind(len(contents))
    knees = UnionFind(len(contents))
    for pair in knee_pairs:
        if same_radiograph(contents, pair):
            clusters.union(pair.a, pair.b)
            knees.union(pair.a, pair.b)
        elif pair.peak >= SAME_KNEE_MIN_PEAK and contents[pair.a].patient is None and contents[pair.b].patient is None:
            knees.union(pair.a, pair.b)
    cluster = [contents[root].sha256[:12] for root in clusters.components()]
    knee = [contents[root].sha256[:12] for root in knees.components()]
    conflicts = cluster_conflicts(contents, cluster)

    patient = [c.patient or f"knee:{knee[i]}" for i, c in enumerate(contents)]
    groups = UnionFind(len(contents))
    first_with_key: dict[str, int] = {}
    for index in range(len(contents)):
        for key in (f"patient:{patient[index]}", f"cluster:{cluster[index]}"):
            groups.union(first_with_key.setdefault(key, index), index)
    return Inventory(datasets, files, contents, notes, knee_pairs, cluster, conflicts, patient,
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


def add_inventory_arguments(parser) -> None:
    """The dataset and cache options that every command reading the inventory takes."""
    parser.add_argument("--datasets", help="folder holding Osteoarthritis_Dataset/ and kneeKL224/ "
                                           "(default: $OAC_DATASETS, else <repo>/../shared/datasets)")
    parser.add_argument("--cache", default=str(CACHE_ROOT),
                        help="folder for cached knee views, keyed by core build and card (default: models/cache)")
    parser.add_argument("--no-cache", action="store_true", help="read every image through the core again")


def inventory_from_arguments(args):
    """Build the inventory the options of add_inventory_arguments describe; exits with a clear message
    when the core's Python module is missing."""
    datasets = resolve_datasets_dir(args.datasets)
    try:
        core = load_core()
    except RuntimeError as error:
        sys.exit(f"error: {error}")
    return build_inventory(datasets, core, progress=lambda m: print(m, file=sys.stderr),
                           cache_root=None if args.no_cache else Path(args.cache))
