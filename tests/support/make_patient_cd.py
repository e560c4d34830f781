#!/usr/bin/python3
"""Make a folder laid out like the CD a hospital hands a patient, with DCMTK and GDCM.

    make_patient_cd.py --out DIR [--datasets DIR]

DIR/CD/ holds DICOMDIR (dcmmkdir, listing every file below) and DICOM/ST000001/SE00000N/IM00000N files without extensions, in two series of
one study: the knee X-rays, compressed as PACS exports are (a whole bilateral film, 12-bit, JPEG Lossless
first-order prediction; a knee crop, JPEG 2000 by GDCM; a knee crop, JPEG-LS), a picture that is not a knee
X-ray (noise), a structured report and a grayscale presentation state (dcmpsmk) of the film; beside them a
README.TXT, as discs carry. Made from dataset images at test time; nothing is committed. DIR/cd.json:

  {"folder": "CD", "knee_images": [{"file", "syntax", "uncompressed"}], "not_knee": [{"file"}],
   "not_images": 2, "not_images_sentence": "2 files were not images: a report, a presentation state"}

`uncompressed` is the same image as Explicit VR Little Endian, outside the CD, to score against.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image

from make_dicom_fixtures import dump_to_dicom, output_and_datasets

WHOLE_FILM = "full-radiographs/normal_N14.jpg"
KNEE_CROP = "Osteoarthritis_Dataset/Valid/Normal/9001695L.png"
UID_ROOT = "2.25.118273645501928374650192837465019"  # a UUID-derived root (PS3.5 B.2) for these test files
STUDY = {"(0010,0010)": "PN [TEST^PATIENT]", "(0010,0020)": "LO [CD0001]", "(0008,0020)": "DA [20260101]",
         "(0008,0030)": "TM [101500]", "(0008,0050)": "SH [A1]", "(0020,0010)": "SH [1]",
         "(0008,1030)": "LO [KNEE BILATERAL]", "(0020,000d)": f"UI [{UID_ROOT}.1]"}


def run(out: Path, *command: str) -> None:
    subprocess.run(command, check=True, cwd=out, stdout=subprocess.DEVNULL)


def instance(series: int, number: int, description: str) -> dict[str, str]:
    return {**STUDY, "(0020,000e)": f"UI [{UID_ROOT}.1.{series}]", "(0020,0011)": f"IS [{series}]",
            "(0008,103e)": f"LO [{description}]", "(0020,0013)": f"IS [{number}]",
            "(0008,0018)": f"UI [{UID_ROOT}.1.{series}.{number}]", "(0008,0060)": "CS [DX]"}


def grey(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("L"), dtype=np.uint16)


# The report's title, which an SR DOCUMENT record needs (LOINC "Radiology Report"); dump2dcm reads the sequence
# as it stands, one element a line.
REPORT_TITLE = ("SQ (Sequence with undefined length)\n(fffe,e000) na (Item with undefined length)\n"
                "(0008,0100) SH [11528-7]\n(0008,0102) SH [LN]\n(0008,0104) LO [Radiology Report]\n"
                "(fffe,e00d) na (ItemDelimitationItem)\n(fffe,e0dd) na (SequenceDelimitationItem)")


def structured_report(out: Path, attributes: dict[str, str]) -> Path:
    """A Basic Text SR with what a directory record needs (dcmmkdir +I fills the rest); `attributes`: instance()."""
    sop_class = "1.2.840.10008.5.1.4.1.1.88.11"
    lines = {"(0002,0002)": f"UI [{sop_class}]", "(0002,0010)": "UI =LittleEndianExplicit",
             "(0008,0016)": f"UI [{sop_class}]", **attributes, "(0008,0060)": "CS [SR]",
             "(0008,0023)": "DA [20260101]", "(0008,0033)": "TM [103000]", "(0040,a491)": "CS [COMPLETE]",
             "(0040,a493)": "CS [UNVERIFIED]", "(0040,a040)": "CS [CONTAINER]", "(0040,a043)": REPORT_TITLE,
             "(0040,a050)": "CS [SEPARATE]"}
    dump = out / "report.dump"
    dump.write_text("".join(f"{tag} {value}\n" for tag, value in sorted(lines.items())))
    path = out / "report.dcm"
    run(out, "dump2dcm", dump.name, path.name)
    dump.unlink()
    return path


def make_dicomdir(cd: Path) -> None:
    """cd/DICOMDIR over every file under cd/DICOM, as a disc's burner writes it."""
    # +I invents the type 1 attributes a record needs and the report lacks; -Nxc takes compressed images in a
    # general-purpose directory, as PACS export tools do.
    run(cd, "dcmmkdir", "-q", "+I", "-Nxc", "+r", "+id", ".", "DICOM")


def main() -> None:
    work, datasets = output_and_datasets(__doc__)

    film = grey(datasets / WHOLE_FILM)
    film12 = dump_to_dicom(work, "film12", (film << 4 | film >> 4)[None],
                           {**instance(1, 1, "AP STANDING"), "(0028,0101)": "US 12", "(0028,0102)": "US 11",
                            "(0018,1164)": "DS [0.143\\0.143]"})
    crop = dump_to_dicom(work, "crop8", grey(datasets / KNEE_CROP).astype(np.uint8)[None],
                         {**instance(2, 1, "LEFT KNEE"), "(0020,0062)": "CS [L]"})
    crop_ls = dump_to_dicom(work, "crop8-ls", grey(datasets / KNEE_CROP).astype(np.uint8)[None],
                            {**instance(2, 2, "LEFT KNEE"), "(0020,0062)": "CS [L]"})
    noise = np.random.default_rng(7).integers(0, 4096, size=(256, 256)).astype(np.uint16)
    not_knee = dump_to_dicom(work, "noise12", noise[None], {**instance(2, 3, "LEFT KNEE"), "(0028,0101)": "US 12",
                                                            "(0028,0102)": "US 11"})

    cd = work / "CD"
    images = cd / "DICOM" / "ST000001"
    for folder in ("SE000001", "SE000002", "SE000003"):
        (images / folder).mkdir(parents=True)
    placed = {
        "DICOM/ST000001/SE000001/IM000001": (film12, ("dcmcjpeg", "+e1"), "1.2.840.10008.1.2.4.70"),
        "DICOM/ST000001/SE000002/IM000001": (crop, ("gdcmconv", "--j2k"), "1.2.840.10008.1.2.4.90"),
        "DICOM/ST000001/SE000002/IM000002": (crop_ls, ("dcmcjpls", "+el"), "1.2.840.10008.1.2.4.80"),
        "DICOM/ST000001/SE000002/IM000003": (not_knee, ("dcmconv", "+te"), "1.2.840.10008.1.2.1"),
    }
    for target, (source, command, _) in placed.items():
        run(work, *command, str(source), str(cd / target))
    run(work, "dcmpsmk", str(film12), str(images / "SE000003" / "IM000001"))
    shutil.copyfile(structured_report(work, instance(3, 1, "REPORT")), images / "SE000003" / "IM000002")
    (cd / "README.TXT").write_text("Images of your examination. Open them with the viewer on this disc.\r\n")
    make_dicomdir(cd)

    manifest = {
        "folder": "CD",
        "knee_images": [{"file": f"CD/{target}", "syntax": syntax, "uncompressed": source.name}
                        for target, (source, _, syntax) in placed.items() if source != not_knee],
        "not_knee": [{"file": "CD/DICOM/ST000001/SE000002/IM000003"}],
        "not_images": 2,
        "not_images_sentence": "2 files were not images: a report, a presentation state",
    }
    (work / "cd.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"make_patient_cd: {work / 'CD'}")


if __name__ == "__main__":
    main()
