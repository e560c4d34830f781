"""tools/evaluation/robustness.py (the altered test images) and evaluate.py's robustness table."""
import csv
import io
import json
import shutil

import numpy as np
import pytest
from PIL import Image

import synthetic_predictions
from evaluation import calibrate, evaluate, robustness
from lib.paths import MODEL_CARD


def decoded(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return robustness.to_array(image)


@pytest.mark.parametrize("pixels", [
    np.random.default_rng(1).integers(0, 256, (60, 80), dtype=np.uint8),
    np.random.default_rng(2).integers(0, 65536, (60, 80), dtype=np.uint16),
    np.random.default_rng(3).integers(0, 256, (60, 80, 3), dtype=np.uint8),
], ids=["grey8", "grey16", "rgb"])
def test_versions_alter_only_what_they_say(pixels):
    margin = robustness.MARGIN_PIXELS
    framed = decoded(robustness.with_margin(pixels)[0])
    assert framed.shape[:2] == (pixels.shape[0] + 2 * margin, pixels.shape[1] + 2 * margin)
    assert np.array_equal(framed[margin:-margin, margin:-margin], pixels) and framed[:margin].max() == 0
    negative = decoded(robustness.inverted(pixels)[0])
    assert negative.dtype == pixels.dtype and np.array_equal(negative, np.iinfo(pixels.dtype).max - pixels)
    turned = decoded(robustness.rotated(pixels)[0])
    assert turned.shape == pixels.shape and turned.dtype == pixels.dtype
    assert turned[0, 0].max() == 0   # a corner turned out of the picture is black
    data, suffix = robustness.jpeg(pixels)
    assert suffix == ".jpg" and data[:2] == b"\xff\xd8"
    assert decoded(data).dtype == np.uint8   # JPEG holds 8 bits, as an export gives them


def test_versions_of_the_test_rows_are_listed_with_their_originals(tmp_path):
    datasets, split = tmp_path / "datasets", tmp_path / "split.csv"
    rows = []
    for index, part in enumerate(("test", "test", "val")):
        path = f"set/{part}/{index}.png"
        (datasets / path).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((40, 40), 50 * index, dtype=np.uint8)).save(datasets / path)
        rows.append({"path": path, "sha256": f"{index:064x}", "split": part})
    with split.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "sha256", "split"])
        writer.writeheader()
        writer.writerows(rows)
    assert robustness.main(["--split", str(split), "--datasets", str(datasets), "--out", str(tmp_path / "out")]) == 0
    for version in robustness.VERSIONS:
        with (tmp_path / "out" / version / "files.csv").open(newline="") as handle:
            listed = list(csv.DictReader(handle))
        assert [row["original"] for row in listed] == ["set/test/0.png", "set/test/1.png"]
        assert all((tmp_path / "out" / version / row["file"]).is_file() for row in listed)
    # The validation rows' versions, which the calibration is fitted on beside the published images.
    assert robustness.main(["--split", str(split), "--datasets", str(datasets), "--out", str(tmp_path / "val"),
                            "--rows", "val"]) == 0
    with (tmp_path / "val" / "inverted" / "files.csv").open(newline="") as handle:
        assert [row["original"] for row in csv.DictReader(handle)] == ["set/val/2.png"]


@pytest.fixture(scope="module")
def robustness_results(tmp_path_factory):
    """The synthetic test predictions as every version: unchanged except the JPEG version, whose KL
    logits are rolled by one grade, and the negative, whose knees are marked turned back."""
    folder = tmp_path_factory.mktemp("robustness")
    paths = synthetic_predictions.write_fixture(folder)
    card = folder / "card.json"
    shutil.copy(MODEL_CARD, card)
    calibrate.main(["--predictions", str(paths["val"]), "--split", str(paths["split"]), "--card", str(card)])
    records = [json.loads(line) for line in paths["test"].read_text().splitlines()]
    versions = folder / "versions"
    for version in robustness.VERSIONS:
        (versions / version).mkdir(parents=True)
        listing, altered = [], []
        for index, record in enumerate(records):
            name = f"{index:05d}.png"
            listing.append({"file": name, "original": record["file"].removeprefix("/data/")})
            record = dict(record, file=f"/tmp/{version}/{name}")
            if version.startswith("jpeg") and record["ok"]:
                record["kl_logits"] = list(np.roll(record["kl_logits"], 1))
            if version == "inverted" and record["ok"]:
                record["knees"] = [dict(knee, inverted=True) for knee in record["knees"]]
            altered.append(record)
        with (versions / version / "files.csv").open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["file", "original"])
            writer.writeheader()
            writer.writerows(listing)
        (versions / f"{version}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in altered))
    out = folder / "out"
    evaluate.main(["--test", str(paths["test"]), "--split", str(paths["split"]), "--card", str(card),
                   "--robustness", str(versions), "--out", str(out), "--resamples", "50"])
    return json.loads((out / "report" / "metrics.json").read_text())["results"], (out / "REPORT.md").read_text()


def test_an_unchanged_version_loses_nothing_and_a_damaged_one_misses_the_target(robustness_results):
    results, report = robustness_results
    published = results["test"]["all"]
    margin = results["robustness"][f"margin_{robustness.MARGIN_PIXELS}px"]
    assert margin["kl_accuracy"]["value"] == pytest.approx(published["kl_accuracy"]["value"])
    assert margin["loss"]["qwk"] == pytest.approx(0.0)
    damaged = results["robustness"][f"jpeg_q{robustness.JPEG_QUALITY}"]
    assert damaged["loss"]["kl_accuracy"] > 0.02 and not damaged["meets_target"]
    assert "## Robustness: the versions people export" in report


def test_negatives_turned_back_are_counted(robustness_results):
    results, _ = robustness_results
    negative = results["robustness"]["inverted"]
    assert negative["counts"]["turned_back"] == negative["counts"]["images"] - negative["counts"]["failed"]
    assert results["robustness"]["margin_40px"]["counts"]["turned_back"] == 0
