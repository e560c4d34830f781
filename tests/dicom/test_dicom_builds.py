"""DICOM in the Python build against DCMTK; tensors of every DICOM fixture bit-identical across the native,
WebAssembly and Python builds; the Embind prepare result's metadata; and `tools/oac classify` on a DICOM
against its source PNG.

ctest (tests/dicom/CMakeLists.txt) generates the inputs first into OAC_DICOM_TEST_DIR: dicom_fixtures/
(tests/support/make_dicom_fixtures.py) and bad_inputs/ (tests/support/bad_inputs.py).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# ctest runs this file on its own, outside tests/python and its conftest: tests/support holds core_build
# and the prepare helpers, tools/ the paths.
SUPPORT = Path(__file__).resolve().parents[1] / "support"
sys.path[:0] = [str(SUPPORT), str(SUPPORT.parents[1] / "tools")]
from core_build import NATIVE_BUILD, WASM_BUILD, import_core  # noqa: E402
from lib.paths import MODEL_CARD, REPO_ROOT  # noqa: E402

TEST_DIR = Path(os.environ.get("OAC_DICOM_TEST_DIR") or NATIVE_BUILD / "tests" / "dicom")
FIXTURES = TEST_DIR / "dicom_fixtures"
BAD_INPUTS = TEST_DIR / "bad_inputs"


def load(path: Path) -> dict:
    if not path.exists():
        pytest.skip(f"{path} missing: run ctest, which generates it first")
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def manifest() -> dict:
    return load(FIXTURES / "manifest.json")


@pytest.fixture(scope="module")
def core():
    return import_core()


def test_python_decodes_every_fixture_as_dcmtk_renders_it(manifest, core):
    for case in manifest["cases"]:
        decoded = core.decode((FIXTURES / case["file"]).read_bytes())
        with Image.open(FIXTURES / case["reference"]) as reference_image:
            reference = np.asarray(reference_image).astype(np.int64)
        reference = reference.reshape(reference.shape[0], reference.shape[1], -1)
        pixels = decoded["pixels"].astype(np.int64)
        assert pixels.shape == reference.shape, case["name"]
        assert (decoded["width"], decoded["height"], decoded["channels"], decoded["bit_depth"]) == (
            case["width"], case["height"], case["channels"], case["bit_depth"]), case["name"]
        assert np.abs(pixels - reference).max() <= case["tolerance"], case["name"]
        spacing = decoded["pixel_spacing_mm"]
        assert (list(spacing) if spacing else None) == case["pixel_spacing_mm"], case["name"]
        assert decoded["laterality"] == case["laterality"], case["name"]


def test_python_refuses_what_it_cannot_decode(manifest, core):
    for case in manifest["refused"]:
        with pytest.raises(ValueError) as raised:
            core.decode((FIXTURES / case["file"]).read_bytes())
        assert str(raised.value) == case["error"], case["name"]


def test_python_prepare_carries_the_metadata(manifest, core):
    spec = core.parse_model_card(MODEL_CARD.read_text())
    case = next((c for c in manifest["cases"] if c["pixel_spacing_mm"] and c["laterality"]), None)
    if case is None:
        pytest.skip("no fixture with spacing and laterality (datasets absent)")
    knees = core.prepare((FIXTURES / case["file"]).read_bytes(), spec)
    assert [list(knee["pixel_spacing_mm"]) for knee in knees] == [case["pixel_spacing_mm"]] * len(knees)
    assert [knee["laterality"] for knee in knees] == [case["laterality"]] * len(knees)


def test_bad_input_corpus_in_python(core):
    expected = load(BAD_INPUTS / "expected.json")
    control = expected["controls"][0]
    control_bytes = (BAD_INPUTS / control["file"]).read_bytes()
    control_pixels = core.decode(control_bytes)["pixels"]
    for case in expected["cases"]:
        data = (BAD_INPUTS / case["file"]).read_bytes()
        if case["error"] is None:
            decoded = core.decode(data)
            assert {key: decoded[key] for key in case["decoded"]} == case["decoded"], case["file"]
        else:
            with pytest.raises(ValueError) as raised:
                core.decode(data)
            assert str(raised.value) == case["error"], case["file"]
        assert np.array_equal(core.decode(control_bytes)["pixels"], control_pixels)


def prepared_files(manifest, core) -> list[Path]:
    """Every fixture prepare() accepts (a window can leave a small synthetic image blank)."""
    spec = core.parse_model_card(MODEL_CARD.read_text())
    files = []
    for case in manifest["cases"]:
        path = FIXTURES / case["file"]
        try:
            core.prepare(path.read_bytes(), spec)
        except ValueError:
            continue
        files.append(path)
    return files


def python_tensor_digests(core, files: list[Path]) -> list[str]:
    spec = core.parse_model_card(MODEL_CARD.read_text())
    return [hashlib.sha256(b"".join(knee["tensor"].tobytes() for knee in core.prepare(path.read_bytes(), spec)))
            .hexdigest() for path in files]


def dumped_digests(command: list[str], output: Path, count: int) -> list[str]:
    subprocess.run(command, check=True, timeout=600)
    return [hashlib.sha256((output / f"{index}.f32").read_bytes()).hexdigest() for index in range(count)]


def test_tensors_identical_in_native_wasm_and_python(manifest, core, tmp_path):
    files = prepared_files(manifest, core)
    assert len(files) >= 0.8 * len(manifest["cases"])
    python = python_tensor_digests(core, files)
    native_tool = NATIVE_BUILD / "tests" / "oac_prepare_dump"
    native_out = tmp_path / "native"
    native_out.mkdir()
    assert dumped_digests([str(native_tool), str(MODEL_CARD), str(native_out), *map(str, files)], native_out,
                          len(files)) == python
    if WASM_BUILD is None or not (WASM_BUILD / "oac_core.mjs").exists():
        pytest.skip("the WebAssembly build is off or not built")
    wasm_out = tmp_path / "wasm"
    wasm_out.mkdir()
    script = SUPPORT / "wasm_prepare_dump.mjs"
    assert dumped_digests([shutil.which("node"), str(script), str(WASM_BUILD), str(MODEL_CARD), str(wasm_out),
                           *map(str, files)], wasm_out, len(files)) == python


def embind_prepare(control: Path, files: list[Path]) -> list[dict]:
    if WASM_BUILD is None or not (WASM_BUILD / "oac_core.mjs").exists():
        pytest.skip("the WebAssembly build is off or not built")
    script = SUPPORT / "embind_prepare.mjs"
    run = subprocess.run([shutil.which("node"), str(script), str(WASM_BUILD), str(MODEL_CARD), str(control), *map(str, files)],
                         check=True, capture_output=True, text=True, timeout=600)
    return json.loads(run.stdout)


def test_embind_prepare_reports_spacing_laterality_and_errors(manifest):
    cases = [case for case in manifest["cases"] if "window" not in case["name"]]
    refused = manifest["refused"]
    results = embind_prepare(FIXTURES / cases[0]["file"],
                             [FIXTURES / case["file"] for case in cases + refused])
    for case, result in zip(cases, results):
        assert result["ok"], (case["name"], result["error"])
        assert result["pixel_spacing_mm"] == case["pixel_spacing_mm"], case["name"]
        assert result["laterality"] == case["laterality"], case["name"]
    for case, result in zip(refused, results[len(cases):]):
        assert result == {"ok": False, "error": case["error"], "pixel_spacing_mm": None, "laterality": "", "knees": 0,
                          "controlUnchanged": True}, case["name"]


def test_bad_input_corpus_through_embind():
    expected = load(BAD_INPUTS / "expected.json")
    control = next(entry for entry in expected["controls"] if entry["file"].endswith(".dcm"))
    results = embind_prepare(BAD_INPUTS / control["file"], [BAD_INPUTS / case["file"] for case in expected["cases"]])
    for case, result in zip(expected["cases"], results):
        assert result["controlUnchanged"], case["file"]
        if case["error"] is None:
            assert result["ok"], (case["file"], result["error"])
        else:
            assert (result["ok"], result["error"]) == (False, case["error"]), case["file"]


def classify(files: list[Path]) -> list[dict]:
    run = subprocess.run([str(REPO_ROOT / "tools" / "oac"), "classify", "--quiet", *map(str, files)],
                         capture_output=True, text=True, timeout=600)
    if run.returncode == 1:
        pytest.skip(f"tools/oac classify cannot run here: {run.stderr.strip()[:300]}")
    return [json.loads(line) for line in run.stdout.splitlines()]


def test_cli_classifies_a_dicom_exactly_like_its_source_png(manifest):
    if WASM_BUILD is None or not (WASM_BUILD / "oac_core.mjs").exists():
        pytest.skip("the WebAssembly build is off or not built")
    cases = [case for case in manifest["cases"] if case["source_png"]
             and case["name"].rsplit("-", 1)[-1] in ("export", "deflated", "rle", "big-endian", "grey16", "rgb8")]
    if not cases:
        pytest.skip("no dataset-derived DICOM fixtures (datasets absent)")
    dicoms = classify([FIXTURES / case["file"] for case in cases])
    pngs = classify([Path(case["source_png"]) for case in cases])
    # What the DICOM header adds: the file's spacing and laterality, and the patient's side of a one-knee film.
    metadata_keys = {"file", "pixel_spacing_mm", "laterality", "patient_side"}
    without_metadata = lambda result: {k: [without_metadata(knee) for knee in v] if k == "knees" else v
                                       for k, v in result.items() if k not in metadata_keys}
    for case, dicom, png in zip(cases, dicoms, pngs):
        assert dicom["ok"] and png["ok"], (case["name"], dicom.get("error"), png.get("error"))
        assert without_metadata(dicom) == without_metadata(png), case["name"]
        single_sided = len(dicom["knees"]) == 1 and case["laterality"] in ("L", "R")
        assert [knee.get("patient_side") for knee in dicom["knees"]] == \
               ([case["laterality"]] if single_sided else [None] * len(dicom["knees"])), case["name"]
        assert dicom.get("laterality", "") == case["laterality"], case["name"]
        assert dicom.get("pixel_spacing_mm") == case["pixel_spacing_mm"], case["name"]
