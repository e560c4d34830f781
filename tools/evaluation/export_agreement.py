"""The same film, any export: does a whole radiograph score alike as the file it came as, an 8-bit PNG, and 12- and
16-bit DICOM in MONOCHROME1 and MONOCHROME2?

Each development radiograph (full-radiographs/) is decoded by the core and its grey levels written again as
those exports (a colour-encoded JPEG's grey is its luma rounded to 8 bits, as a viewer's export would make it;
higher bit depths scale the levels to the full range; MONOCHROME1 stores them inverted). Every file is classified
by `tools/oac classify` with the shipped model and with its fp32 reference, and each export's P(OA) is compared
with the file it came from, knee by knee, where the boxes agree. The fp32 column tells what the core's canonical
crops change; the shipped column adds how the 8-bit network answers a change of that size.

usage: export_agreement.py [--out models/export-agreement.md] [--limit N]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from lib.core import load_core
from lib.card import load_card
from lib.dicom_writer import dump_to_dicom
from lib.paths import MODEL_CARD, REPO_ROOT, datasets_dir

TARGET = 0.02  # |delta P(OA)| of an export from the file it came from
CLASSIFY = REPO_ROOT / "tools" / "app" / "classify.mjs"
FP32_REFERENCE = REPO_ROOT / "models" / "reference" / "oa-inceptionv3-fp32.onnx"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
EXPORTS = ("8-bit PNG", "12-bit MONOCHROME2", "12-bit MONOCHROME1", "16-bit MONOCHROME2", "16-bit MONOCHROME1")


def grey_levels(core, path: Path) -> np.ndarray:
    """The film's grey as 8-bit levels: the core's decode, colour reduced to its Rec. 601 luma and rounded."""
    decoded = core.decode(path.read_bytes())
    if decoded["bit_depth"] != 8:
        raise ValueError(f"{path.name} has {decoded['bit_depth']}-bit samples; the study starts from 8-bit films")
    pixels = decoded["pixels"].astype(np.float64)
    luma = pixels[..., 0] if pixels.shape[2] < 3 else pixels[..., 0] * 0.299 + pixels[..., 1] * 0.587 + pixels[..., 2] * 0.114
    return np.round(luma).astype(np.uint8)


def write_exports(levels: np.ndarray, stem: str, folder: Path) -> dict[str, Path]:
    png = folder / f"{stem}.png"
    Image.fromarray(levels).save(png)
    exports = {"8-bit PNG": png}
    for bits in (12, 16):
        top = (1 << bits) - 1
        scaled = np.round(levels.astype(np.float64) * top / 255).astype(np.uint16)
        for photometric, stored in (("MONOCHROME2", scaled), ("MONOCHROME1", top - scaled)):
            attributes = {"(0028,0004)": f"CS [{photometric}]", "(0028,0101)": f"US {bits}", "(0028,0102)": f"US {bits - 1}"}
            exports[f"{bits}-bit {photometric}"] = dump_to_dicom(folder, f"{stem}-{bits}-{photometric}", stored[None], attributes)
    return exports


def fp32_card(folder: Path) -> Path:
    """A copy of the shipped card describing the fp32 reference, so both turn logits into probabilities alike."""
    card = load_card(MODEL_CARD)
    data = FP32_REFERENCE.read_bytes()
    card.update(model_file=str(FP32_REFERENCE), sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    card.pop("self_test", None)
    path = folder / "fp32.json"
    path.write_text(json.dumps(card))
    return path


def classify(files: list[Path], card: Path) -> dict[str, dict]:
    run = subprocess.run(["node", str(CLASSIFY), "--quiet", "--model", str(card), "--files-from", "-"],
                         input="\n".join(map(str, files)), capture_output=True, text=True)
    if run.returncode not in (0, 2):
        raise RuntimeError(f"tools/oac classify failed: {run.stderr.strip()}")
    return {result["file"]: result for result in map(json.loads, run.stdout.splitlines())}


def differences(results: dict[str, dict], films: dict[Path, dict[str, Path]]) -> dict[str, dict]:
    """Per export: the |delta P(OA)| of every knee whose box agrees with the source's, and the knees that moved."""
    out = {name: {"deltas": [], "box_changes": 0} for name in EXPORTS}
    for source, exports in films.items():
        original = results[str(source)]
        if not original["ok"]:
            continue
        for name, path in exports.items():
            result = results[str(path)]
            knees = result["knees"] if result["ok"] else []
            for index, knee in enumerate(original["knees"]):
                if index < len(knees) and knees[index]["box"] == knee["box"]:
                    out[name]["deltas"].append(abs(knees[index]["p_oa"] - knee["p_oa"]))
                else:
                    out[name]["box_changes"] += 1
    return out


def render(films: int, knees: int, by_model: dict[str, dict[str, dict]]) -> str:
    lines = ["# The same film, any export", "",
             f"Written by `tools/oac export-agreement`: {films} development radiographs (`full-radiographs/`, {knees} knees "
             "found in the files as given), each written again as an 8-bit PNG and as 12- and 16-bit DICOM in "
             "MONOCHROME2 and MONOCHROME1 from the grey levels the core decodes. |ΔP(OA)| is each export's knee against "
             f"the same knee of the file it came from; target ≤ {TARGET}.", "",
             "| export | model | mean \\|ΔP(OA)\\| | max \\|ΔP(OA)\\| | knees over target | boxes that moved |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name in EXPORTS:
        for model, by_export in by_model.items():
            measured = by_export[name]
            deltas = np.array(measured["deltas"]) if measured["deltas"] else np.zeros(1)
            lines.append(f"| {name} | {model} | {deltas.mean():.4f} | {deltas.max():.4f} | {int((deltas > TARGET).sum())} "
                         f"| {measured['box_changes']} |")
    lines += ["", WHY]
    return "\n".join(lines) + "\n"


WHY = ("The fp32 rows measure the core: its canonical crops of one film agree whatever the export's bit depth or "
       "photometric interpretation, up to the rounding of a colour JPEG's luma to 8 bits and of 8-bit levels to 12 "
       "bits. The shipped rows add the 8-bit network's answer to those tiny changes: its input and every activation "
       "are rounded to 256 levels, so a change far below one level flips some roundings, within the network's own "
       "quantisation error against fp32 (models/quantization-formats.md).")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "models" / "export-agreement.md")
    parser.add_argument("--limit", type=int, default=0, help="only the first N radiographs (0: all)")
    args = parser.parse_args()
    core = load_core()
    sources = sorted(path for path in (datasets_dir() / "full-radiographs").iterdir() if path.suffix.lower() in IMAGE_SUFFIXES)
    sources = sources[:args.limit] if args.limit else sources
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        films = {source: write_exports(grey_levels(core, source), source.stem, folder) for source in sources}
        everything = [*films, *(path for exports in films.values() for path in exports.values())]
        models = {"shipped": MODEL_CARD, "fp32 reference": fp32_card(folder)}
        by_model = {}
        knees = 0
        for model, card in models.items():
            results = classify(everything, card)
            by_model[model] = differences(results, films)
            knees = sum(len(results[str(source)].get("knees", [])) for source in films)
    args.out.write_text(render(len(films), knees, by_model))
    print(f"export_agreement: wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
