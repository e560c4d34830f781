"""tools/data/audit.py and tools/data/knee_data.py on a synthetic dataset with planted duplicates, near-duplicates,
contradictory labels and shared patients.

The grouping logic is tested twice: with stand-in hashes (no pixels, runs without the core) and end to
end through oac_core's canonical crops (skipped until the core's Python module is built).
"""
import json

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

import knee_fixtures as fx
from data import audit, knee_data
from lib.core import load_core
from data.knee_data import PngHeader


def core_or_skip():
    try:
        return load_core()
    except RuntimeError as error:
        pytest.skip(f"needs the C++ core's Python module: {error}")


def pair_paths(report):
    return {frozenset((p["a"], p["b"])) for p in report["near_duplicates"]["list"]}


@pytest.mark.parametrize("name, header, source", [
    ("9001695L.png", PngHeader(224, 224, 8, 0), "oai224"),
    ("9001695R.png", PngHeader(224, 224, 16, 0), None),          # OAI crops are 8-bit
    ("9001695L.png", PngHeader(300, 162, 8, 2), None),           # name and format disagree
    ("NormalG0 (12).png", PngHeader(300, 162, 8, 2), "kneexray"),
    ("MildG2 (5)(1).png", PngHeader(640, 161, 16, 0), "kneexray"),
    ("MildG2 (5).png", PngHeader(640, 161, 8, 0), None),         # second collection: RGB or 16-bit gray
    ("DoubtfulG1 (3).png", PngHeader(224, 224, 8, 2), None),
    ("9093622_1.png", PngHeader(299, 299, 8, 0), "oai299"),
    ("9093622_3.png", PngHeader(299, 299, 8, 0), None),
    ("knee.png", PngHeader(224, 224, 8, 0), None),
    ("9001695L.png", None, None),                                # not a PNG
])
def test_source_needs_name_and_format(name, header, source):
    assert knee_data.classify_source(name, header) == source


def test_patient_ids_join_both_knees():
    assert knee_data.patient_of("9001695L.png") == knee_data.patient_of("9001695R.png") == "9001695"
    assert knee_data.patient_of("9093622_1.png") == knee_data.patient_of("9093622_2.png") == "9093622"
    assert knee_data.patient_of("NormalG0 (12).png") is None


def test_second_collection_grades_from_names():
    assert [knee_data.kneexray_grade(n) for n in ("NormalG0 (1).png", "DoubtfulG1 (2).png", "MildG2 (3)(1).png",
                                                   "ModerateG3 (4).png", "SevereG4 (5).png")] == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="names grade Mild but G3"):
        knee_data.kneexray_grade("MildG3 (1).png")


def test_png_header_is_read_from_bytes(tmp_path):
    fx.save(tmp_path / "a.png", fx.smooth_image(1, 161, 640), "gray16")
    assert knee_data.read_png_header((tmp_path / "a.png").read_bytes()) == PngHeader(640, 161, 16, 0)
    assert knee_data.read_png_header(b"GIF89a" + bytes(40)) is None


def test_phash_is_stable_under_noise_and_separates_images():
    rng = np.random.default_rng(0)
    image, other = (gaussian_filter(rng.random((32, 32)), 1.0) for _ in range(2))
    noisy = image + rng.normal(0, 0.002, image.shape)
    h = knee_data.phash(image)
    assert h.shape == (knee_data.PHASH_BITS,)
    assert (h != knee_data.phash(noisy)).sum() <= 4
    assert (h != knee_data.phash(other)).sum() > 16


def test_nearest_candidates_match_brute_force():
    hashes = np.random.default_rng(1).random((40, 63)) < 0.5
    owners = np.arange(40)
    owners[5] = 4                                   # two knees of one image are never candidates
    rows, cols, bits = knee_data.nearest_candidates(hashes, hashes, owners, 3)
    for i in range(40):
        distance = (hashes[i] != hashes).sum(axis=1)
        distance[owners == owners[i]] = 99
        mine = sorted(bits[rows == i])
        assert mine == sorted(distance)[:3]
        assert not set(cols[rows == i]) & set(np.flatnonzero(owners == owners[i]))


def test_phase_correlation_scores_shifted_copies_high_and_strangers_low():
    rng = np.random.default_rng(2)
    field = gaussian_filter(rng.random((72, 72)), 1.0)
    views = np.array([field[4:68, 4:68], field[4:68, 7:71], field[4:68, 4:68][:, ::-1],
                      gaussian_filter(rng.random((64, 64)), 1.0)], dtype=np.float32)
    shifted, stranger = knee_data.phase_correlation_peaks(views, np.array([0, 0]), np.array([1, 3]), mirrored=False)
    mirrored = knee_data.phase_correlation_peaks(views, np.array([0]), np.array([2]), mirrored=True)[0]
    assert shifted > 0.6 and mirrored > 0.95
    assert stranger < knee_data.SAME_KNEE_MIN_PEAK


def test_scan_groups_identical_bytes_and_reads_grades(datasets):
    files, manifest_rows = knee_data.scan_files(datasets)
    contents, _ = knee_data.group_contents(files, manifest_rows)
    by_path = {f.path: c for c in contents for f in c.files}
    for pair in (fx.EXACT_DUPLICATE, fx.EXACT_DUPLICATE_IN_TRAIN, fx.CONTRADICTION):
        assert by_path[pair[0]] is by_path[pair[1]]
    assert len(files) - len(contents) == 3
    assert by_path[fx.CONTRADICTION[0]].kl_grade is None            # named G0 and G1
    assert by_path[f"{fx.SEED}/test/Normal/9000004R.png"].kl_grade == 1
    assert by_path[f"{fx.SEED}/test/Normal/9000004R.png"].label == 0   # KL1 is not OA
    assert by_path[fx.OAI299].label == 1 and by_path[fx.OAI299].kl_grade is None
    assert by_path[fx.UNRECOGNISED].source is None


def test_report_finds_planted_problems(planted_inventory):
    report = audit.build_report(planted_inventory)
    dup = report["exact_duplicates"]
    assert dup["groups"] == 3 and dup["redundant_files"] == 3
    assert sorted(fx.EXACT_DUPLICATE) in [sorted(group) for group in dup["list"]]
    assert dup["by_location"]["Valid/Osteoarthritis + test/Osteoarthritis"] == 1

    pairs = pair_paths(report)
    assert report["near_duplicates"]["same_knee_pairs"] == 0
    assert frozenset(fx.NEAR_DUPLICATE) in pairs
    assert frozenset(fx.NEAR_CONTRADICTION) in pairs
    assert frozenset((fx.BILATERAL, fx.BILATERAL_HALF)) in pairs
    assert frozenset(fx.MIRRORED) in pairs
    assert report["near_duplicates"]["mirrored_pairs"] == 1
    assert len(pairs) == 4          # not OTHER_KNEE: a patient's mirrored other knee is no copy

    bad = report["contradictions"]
    dropped = {path for item in bad["list"] for path in item["files"]}
    assert set(fx.CONTRADICTION) | set(fx.NEAR_CONTRADICTION) | {fx.BILATERAL, fx.BILATERAL_HALF} == dropped
    assert bad["clusters"] == 3

    leaks = report["patients"]["seed_split_leaks"]
    assert leaks["train/Valid"]["list"] == [fx.LEAKED_PATIENT]
    assert leaks["Valid/test"]["list"] == ["9000004"]
    assert leaks["train/test"]["patients"] == 0
    assert [u["path"] for u in report["sources"]["unrecognised"]] == [fx.UNRECOGNISED]

    seed = {(r["source"], r["seed_split"], r["seed_label"]): r["files"] for r in report["confounding"]["seed_files"]}
    assert seed[("kneexray", "test", "Normal")] == 6
    assert ("kneexray", "train", "Normal") not in seed
    grades = report["kl_grades"]["unique_contents_by_grade"]
    assert grades["oai299"] == {"?": 1}


def test_audit_end_to_end_through_the_core(datasets, tmp_path):
    core_or_skip()
    assert audit.main(["--datasets", str(datasets), "--out", str(tmp_path), "--no-cache"]) == 0
    report = json.loads((tmp_path / "audit.json").read_text())
    # Through the core's canonical crops a 16-bit re-encoding, a mirrored copy and one knee of a
    # bilateral image are near-duplicates of their originals, and nothing else is.
    assert pair_paths(report) == {frozenset(fx.NEAR_DUPLICATE), frozenset(fx.NEAR_CONTRADICTION),
                                  frozenset((fx.BILATERAL, fx.BILATERAL_HALF)), frozenset(fx.MIRRORED)}
    assert report["contradictions"]["clusters"] == 3
    assert report["sources"]["bilateral_contents"] == 1
    markdown = (tmp_path / "audit.md").read_text()
    assert f"Same radiograph: phase-correlation peak >= {knee_data.SAME_RADIOGRAPH_MIN_PEAK}" in markdown
    assert fx.CONTRADICTION[0] in markdown


def test_view_cache_returns_what_the_core_gave(datasets, tmp_path):
    core = core_or_skip()
    files, manifest_rows = knee_data.scan_files(datasets)
    fresh, _ = knee_data.group_contents(files, manifest_rows)
    again, _ = knee_data.group_contents(files, manifest_rows)
    knee_data.hash_contents(fresh, datasets, core, cache_root=tmp_path)
    assert len(list(tmp_path.glob("knee-views-*/*.npz"))) == len(fresh)
    knee_data.hash_contents(again, datasets, core, cache_root=tmp_path)
    for a, b in zip(fresh, again):
        assert a.knee_sides == b.knee_sides and a.decode_error == b.decode_error
        assert all(np.array_equal(x, y) for x, y in zip(a.views, b.views))


def test_possibly_same_knee_joins_groups_without_dropping(datasets, monkeypatch):
    files, manifest_rows = knee_data.scan_files(datasets)
    contents, notes = knee_data.group_contents(files, manifest_rows)
    by_path = {c.path: i for i, c in enumerate(contents)}
    a = by_path[f"{fx.SEED}/test/Normal/NormalG0 (10).png"]
    b = by_path[f"{fx.SEED}/train/Osteoarthritis/MildG2 (12).png"]
    oai_a = by_path[f"{fx.SEED}/train/Normal/9000002L.png"]
    oai_b = by_path[f"{fx.SEED}/Valid/Normal/9000004L.png"]
    peak = (knee_data.SAME_KNEE_MIN_PEAK + knee_data.SAME_RADIOGRAPH_MIN_PEAK) / 2
    pairs = [knee_data.KneePair(min(a, b), max(a, b), 20, peak, False),
             knee_data.KneePair(min(oai_a, oai_b), max(oai_a, oai_b), 20, peak, False)]
    monkeypatch.setattr(knee_data, "compare_knees", lambda contents: pairs)
    inventory = knee_data.link_inventory(datasets, files, contents, notes)
    assert inventory.group[a] == inventory.group[b] and inventory.patient[a] == inventory.patient[b]
    assert inventory.cluster[a] != inventory.cluster[b]
    assert not inventory.dropped(a) and not inventory.dropped(b)      # G0 vs G2, but not the same image
    assert inventory.group[oai_a] != inventory.group[oai_b]           # OAI knees are grouped by patient id


def test_missing_dataset_folder_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="holds neither Osteoarthritis_Dataset/ nor kneeKL224/"):
        knee_data.resolve_datasets_dir(str(tmp_path))
