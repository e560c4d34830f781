"""tools/evaluation/evaluate.py end to end on synthetic predictions, and the prediction/split join it relies on."""
import csv
import json
import shutil

import numpy as np
import pytest

import synthetic_predictions
from evaluation import calibrate, eval_io, evaluate
from lib import metrics
from lib.paths import MODEL_CARD, REPO_ROOT
from lib.split_manifest import InputError, load_split


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("evaluate")
    paths = synthetic_predictions.write_fixture(folder)
    card = folder / "card.json"
    shutil.copy(MODEL_CARD, card)
    calibrate.main(["--predictions", str(paths["val"]), "--split", str(paths["split"]), "--card", str(card)])
    calibrated = json.loads(card.read_text())
    out = folder / "out"
    evaluate.main(["--test", str(paths["test"]), "--split", str(paths["split"]), "--card", str(card),
                   "--seed", str(paths["seed_test"]), "--ood", str(paths["ood"]), "--out", str(out),
                   "--resamples", "200"])
    return {"paths": paths, "card": card, "calibrated": calibrated, "out": out,
            "metrics": json.loads((out / "report" / "metrics.json").read_text())}


def test_writes_report_plots_and_metrics(evaluated):
    out = evaluated["out"]
    for name in ("roc.png", "reliability.png", "kl_confusion.png", "ood_scores.png", "metrics.json"):
        assert (out / "report" / name).stat().st_size > 0
    report = (out / "REPORT.md").read_text()
    assert "## Targets" in report and "## Seed protocol" in report and "## OOD gate" in report
    assert "0.375" in report   # the original notebook's figure sits next to the seed accuracy


def test_figures_equal_direct_computation(evaluated):
    card = evaluated["calibrated"]
    paths = evaluated["paths"]
    scored = eval_io.join(eval_io.load_predictions(paths["test"]), load_split(paths["split"]))
    scored = scored.select((scored.split == "test") & scored.ok)
    p_oa = 1 / (1 + np.exp(-(scored.oa_logit / card["calibration"]["oa_temperature"]
                             + card["calibration"]["oa_bias"])))
    definite = (scored.label == 1) | (scored.kl_grade == 0)
    labelled = ~np.isnan(scored.label)
    graded = scored.kl_grade >= 0
    # The card's grade rule written out here: the argmax, or cut points counted below the expected grade.
    scaled = scored.kl_logits / card["calibration"]["kl_temperature"]
    probs = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    if card["kl_grade"]["rule"] == "cut_points":
        kl_predicted = (probs @ np.arange(5) > np.array(card["kl_grade"]["cut_points"])[:, None]).sum(axis=0)
    else:
        kl_predicted = probs.argmax(axis=1)
    overall = evaluated["metrics"]["results"]["test"]["all"]
    assert overall["auc_kl2_vs_kl0"]["value"] == pytest.approx(metrics.auc(scored.label[definite], p_oa[definite]))
    assert overall["auc_kl2_vs_kl01"]["value"] == pytest.approx(metrics.auc(scored.label[labelled], p_oa[labelled]))
    verdict = p_oa[labelled] >= card["threshold"]
    assert overall["accuracy"]["value"] == pytest.approx(np.mean(verdict == (scored.label[labelled] == 1)))
    assert overall["kl_accuracy"]["value"] == pytest.approx(np.mean(kl_predicted[graded] == scored.kl_grade[graded]))
    assert overall["qwk"]["value"] == pytest.approx(
        metrics.quadratic_weighted_kappa(scored.kl_grade[graded], kl_predicted[graded], 5))
    assert overall["ece"]["value"] == pytest.approx(
        metrics.expected_calibration_error(scored.label[labelled], p_oa[labelled]))
    assert overall["counts"]["failed"] == 1   # the fixture's blank test image
    assert overall["auc_kl2_vs_kl0"]["ci_low"] <= overall["auc_kl2_vs_kl0"]["value"] <= overall["auc_kl2_vs_kl0"]["ci_high"]
    assert set(evaluated["metrics"]["results"]["test"]) == {"all", "kneexray", "oai224", "oai299"}


def test_targets_are_judged_from_the_figures(evaluated):
    results = evaluated["metrics"]["results"]
    for target in evaluated["metrics"]["targets"]:
        value = evaluate.lookup(results, target["metric"])["value"]
        expected = value >= target["target"] if target["comparison"] == ">=" else value <= target["target"]
        assert target["met"] == expected


def test_seed_protocol_uses_folder_labels_and_every_file(evaluated):
    seed = evaluated["metrics"]["results"]["seed"]
    records = eval_io.load_predictions(evaluated["paths"]["seed_test"])
    assert seed["all"]["counts"]["images"] == len(records)
    folder_oa = np.array(["/Osteoarthritis/" in r["file"] for r in records])
    verdict = np.array([r["oa"] for r in records])
    assert seed["all"]["accuracy"]["value"] == pytest.approx(np.mean(folder_oa == verdict))
    # The file the split leaves out still counts, and is never "clean".
    assert seed[eval_io.NOT_IN_SPLIT]["counts"]["images"] == 1
    assert seed["all"]["counts"]["clean"] < seed["all"]["counts"]["images"] - 1


def test_ood_rejections_by_kind(evaluated):
    ood = evaluated["metrics"]["results"]["ood"]
    assert ood["blank"]["counts"] == {"images": 1, "refused": 1, "refused_by_ood_gate": 0, "refused_as_undecodable": 1}
    assert ood["noise"]["rejection_rate"]["value"] == 1.0
    assert ood["all"]["counts"]["images"] == 19


def test_card_gets_metrics_and_keeps_the_rest(evaluated):
    after = json.loads(evaluated["card"].read_text())
    before = evaluated["calibrated"]
    assert {k for k in after if after.get(k) != before.get(k)} == {"metrics"}
    overall = evaluated["metrics"]["results"]["test"]["all"]
    assert after["metrics"]["auc_kl2_vs_kl0"]["value"] == pytest.approx(overall["auc_kl2_vs_kl0"]["value"], abs=1e-4)
    assert after["metrics"]["seed_protocol_accuracy"]["value"] == pytest.approx(
        evaluated["metrics"]["results"]["seed"]["all"]["accuracy"]["value"], abs=1e-4)


def test_join_matches_by_trailing_path_then_by_content(tmp_path):
    image = tmp_path / "elsewhere" / "renamed.png"
    image.parent.mkdir()
    image.write_bytes(b"knee")
    rows = [{"path": "kneeKL224/val/0/a.png", "sha256": "0" * 64, "source": "oai224", "label": "0", "kl_grade": "0",
             "patient": "1", "cluster": "c1", "split": "val", "seed_split": "", "seed_label": ""},
            {"path": "kneeKL224/val/3/b.png", "sha256": eval_io.sha256_of(image), "source": "oai224", "label": "1",
             "kl_grade": "3", "patient": "1", "cluster": "c2", "split": "val", "seed_split": "", "seed_label": ""}]
    records = [{"file": "/mnt/data/kneeKL224/val/0/a.png", "ok": False, "error": "x"},
               {"file": str(image), "ok": False, "error": "x"},
               {"file": "relative/kneeKL224/val/0/a.png", "ok": False, "error": "x"},
               {"file": "/nowhere/c.png", "ok": False, "error": "x"}]
    warnings = []
    scored = eval_io.join(records, rows, warn=warnings.append)
    assert scored.file.tolist() == ["/mnt/data/kneeKL224/val/0/a.png", str(image)]
    assert scored.label.tolist() == [0.0, 1.0]
    assert scored.unit[0] == scored.unit[1]   # one patient, two clusters: one resampling unit
    assert len(warnings) == 2                 # the unmatched file and the repeated content
    per_file = eval_io.join(records, rows, per_file=True, warn=warnings.append)
    assert len(per_file) == 4 and per_file.source[3] == eval_io.NOT_IN_SPLIT
    assert len(set(per_file.unit.tolist())) == 2


def test_split_manifest_errors_are_clear(tmp_path):
    bad = tmp_path / "split.csv"
    with open(bad, "w", newline="") as handle:
        csv.writer(handle).writerows([["path", "label"], ["a.png", "1"]])
    with pytest.raises(InputError, match="lacks column"):
        load_split(bad)
    with pytest.raises(InputError, match="not found"):
        load_split(tmp_path / "missing.csv")


def test_prediction_errors_are_clear(tmp_path):
    broken = tmp_path / "p.jsonl"
    broken.write_text('{"file": "a.png", "ok": true, "p_oa": 0.7, "oa": true, "oa_logit": 1.0}\n')
    with pytest.raises(InputError, match="lacks kl_logits, ood_score"):
        eval_io.load_predictions(broken)
    broken.write_text("not json\n")
    with pytest.raises(InputError, match=":1: not a JSON object"):
        eval_io.load_predictions(broken)


def test_kl_set_figures_equal_direct_computation(evaluated):
    card = evaluated["calibrated"]
    paths = evaluated["paths"]
    scored = eval_io.join(eval_io.load_predictions(paths["test"]), load_split(paths["split"]))
    scored = scored.select((scored.split == "test") & scored.ok & (scored.kl_grade >= 0))
    scaled = scored.kl_logits / card["calibration"]["kl_temperature"]
    probs = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    # The set rule written out here: grades by decreasing probability until their mass exceeds the threshold.
    sets = np.zeros_like(probs, dtype=bool)
    for row, p in enumerate(probs):
        mass = 0.0
        for grade in np.argsort(-p, kind="stable"):
            if mass > card["kl_set"]["threshold"]:
                break
            sets[row, grade], mass = True, mass + p[grade]
    covered = sets[np.arange(len(sets)), scored.kl_grade]
    overall = evaluated["metrics"]["results"]["test"]["all"]
    assert overall["kl_set_coverage"]["value"] == pytest.approx(covered.mean())
    assert overall["kl_set_size"]["value"] == pytest.approx(sets.sum(axis=1).mean())
    for grade in range(5):
        assert overall[f"kl_set_coverage_kl{grade}"]["value"] == pytest.approx(covered[scored.kl_grade == grade].mean())
    assert sum(evaluated["metrics"]["results"]["kl_sets_given"].values()) == len(sets)
    report = (evaluated["out"] / "REPORT.md").read_text()
    assert "### KL prediction sets" in report and "| KL4 |" in report
    assert evaluated["metrics"]["card"]["kl_set"]["coverage"] == 0.9


def test_reports_name_inputs_relative_to_the_repository(tmp_path):
    inside = REPO_ROOT / "models" / "cache" / "eval" / "test.jsonl"
    assert evaluate.shown_path(inside) == "models/cache/eval/test.jsonl"
    assert evaluate.shown_path(tmp_path / "x.jsonl") == str(tmp_path / "x.jsonl")
    for report in (REPO_ROOT / "models" / "REPORT.md", REPO_ROOT / "models" / "report" / "metrics.json"):
        assert str(REPO_ROOT) not in report.read_text(), f"{report} names a path of the machine that made it"


def test_earlier_models_stand_beside_this_one(evaluated, tmp_path):
    """--previous, repeated oldest first: one column per earlier model, each compared with this one's interval."""
    paths, metrics_json = evaluated["paths"], evaluated["out"] / "report" / "metrics.json"
    earlier = json.loads(metrics_json.read_text())
    earlier["model"]["version"] = "0.1.0"
    auc = earlier["results"]["test"]["all"]["auc_kl2_vs_kl0"]
    auc.update(value=auc["value"] - 0.3, ci_low=auc["ci_low"] - 0.3, ci_high=auc["ci_low"] - 0.2)
    (tmp_path / "old.json").write_text(json.dumps(earlier))
    card = tmp_path / "card.json"
    shutil.copy(evaluated["card"], card)
    evaluate.main(["--test", str(paths["test"]), "--split", str(paths["split"]), "--card", str(card),
                   "--out", str(tmp_path / "out"), "--resamples", "200",
                   "--previous", str(tmp_path / "old.json"), "--previous", str(metrics_json)])
    section = (tmp_path / "out" / "REPORT.md").read_text().split("## Against the previous models (oa-inceptionv3 0.1.0, ")[1]
    row = next(line for line in section.splitlines() if line.startswith("| AUC KL>=2 vs KL0 |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert len(cells) == 1 + 2 + 1 + 2, row
    assert cells[4].endswith("apart") and cells[5] == "+0.000, overlap"


def test_paired_differences_come_from_the_same_patients(evaluated, tmp_path):
    """--paired: against itself every difference is exactly 0; against a release whose OA outputs are noise
    the AUC gain is clearly better and its interval is the paired one."""
    paths = evaluated["paths"]
    records = [json.loads(line) for line in paths["test"].read_text().splitlines() if line.strip()]
    same, noisy = tmp_path / "same", tmp_path / "noisy"
    rng = np.random.default_rng(2)
    for folder, change in ((same, lambda record: record),
                           (noisy, lambda record: dict(record, oa_logit=float(rng.normal(0.0, 3.0))))):
        folder.mkdir()
        shutil.copy(evaluated["card"], folder / "card.json")
        (folder / "test.jsonl").write_text("".join(json.dumps(change(r)) + "\n" for r in reversed(records)))
    card = tmp_path / "card.json"
    shutil.copy(evaluated["card"], card)
    evaluate.main(["--test", str(paths["test"]), "--split", str(paths["split"]), "--card", str(card),
                   "--out", str(tmp_path / "out"), "--resamples", "200", "--paired", str(same), "--paired", str(noisy)])
    paired = json.loads((tmp_path / "out" / "report" / "metrics.json").read_text())["results"]["paired"]
    against_itself, against_noise = (entry["gains"] for entry in paired)
    for gain in against_itself.values():
        assert gain["value"] == 0 and gain["ci_low"] == 0 and gain["ci_high"] == 0
    auc = against_noise["auc_kl2_vs_kl0"]
    assert auc["ci_low"] > 0.2
    assert against_noise["kl_accuracy"]["value"] == 0   # the KL outputs are the same
    section = (tmp_path / "out" / "REPORT.md").read_text().split("## Paired against earlier releases")[1]
    row = next(line for line in section.splitlines() if line.startswith("| AUC KL>=2 vs KL0 |"))
    assert row.count("clearly better") == 1 and "unclear" in row
