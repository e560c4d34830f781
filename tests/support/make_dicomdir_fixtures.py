#!/usr/bin/python3
"""Make a small file set with a DICOMDIR (DCMTK's dcmmkdir), and damaged copies of its DICOMDIR.

    make_dicomdir_fixtures.py --out DIR

DIR/CD/ holds DICOMDIR and DICOM/ST00000S/SE00000N/IM00000N, files without extensions: study 1 with two X-ray
series (two images, their file names in the reverse of their instance numbers, and one), a structured report
and a presentation state; study 2 with one X-ray. The pixels are synthetic, so no dataset is needed. DIR/broken/
holds DICOMDIRs that must be refused: cut short, with the first record's offset one byte off, with the first
record naming itself as the next, and an image named DICOMDIR. DIR/dicomdir.json:

  {"folder": "CD",
   "entries": [{"file", "record_type", "sop_class_uid", "study_instance_uid", "study_description",
                "series_instance_uid", "series_number", "instance_number", "has_pixel_data"}],
   "broken": {"truncated": FILE, "dangling_offset": FILE, "offset_loop": FILE, "not_a_directory": FILE}}

`entries` are the files the DICOMDIR lists, in no particular order.
"""
from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path

import numpy as np

from make_dicom_fixtures import dump_to_dicom, output_and_datasets
from make_patient_cd import UID_ROOT, instance, make_dicomdir, run, structured_report

DX = "1.2.840.10008.5.1.4.1.1.1.1"
SR = "1.2.840.10008.5.1.4.1.1.88.11"
GSPS = "1.2.840.10008.5.1.4.1.1.11.1"
ROOT_RECORD_OFFSET = b"\x04\x00\x00\x12UL\x04\x00"  # (0004,1200) UL, 4 bytes, explicit VR little endian


def in_study(study: int, series: int, number: int, description: str) -> dict[str, str]:
    """instance() moved to study `study`, with UIDs and a description of its own."""
    attributes = instance(series, number, description)
    if study == 1:
        return attributes
    return {**attributes, "(0008,1030)": "LO [KNEE LEFT]", "(0020,000d)": f"UI [{UID_ROOT}.{study}]",
            "(0020,000e)": f"UI [{UID_ROOT}.{study}.{series}]",
            "(0008,0018)": f"UI [{UID_ROOT}.{study}.{series}.{number}]"}


def text(value: str) -> str:
    """The text of a dump value: "LO [KNEE]" → "KNEE"."""
    return value.split("[", 1)[1].rsplit("]", 1)[0]


def series_of(path: Path) -> str:
    """The file's own Series Instance UID, not one it references (+p prefixes those with their sequence)."""
    shown = subprocess.run(["dcmdump", "-q", "+p", "+P", "0020,000e", str(path)], check=True, capture_output=True,
                           text=True).stdout
    return text(next(line for line in shown.splitlines() if line.startswith("(0020,000e)")))


def entry(file: str, record_type: str, sop_class_uid: str, attributes: dict[str, str], **overrides) -> dict:
    """What the DICOMDIR must say of a file made with `attributes` (instance(), in_study())."""
    return {"file": file, "record_type": record_type, "sop_class_uid": sop_class_uid,
            "study_instance_uid": text(attributes["(0020,000d)"]), "study_description": text(attributes["(0008,1030)"]),
            "series_instance_uid": text(attributes["(0020,000e)"]), "series_number": int(text(attributes["(0020,0011)"])),
            "instance_number": int(text(attributes["(0020,0013)"])), "has_pixel_data": record_type == "IMAGE",
            **overrides}


def broken_copies(dicomdir: Path, image: Path, out: Path) -> dict[str, str]:
    data = dicomdir.read_bytes()
    at = data.index(ROOT_RECORD_OFFSET) + len(ROOT_RECORD_OFFSET)
    (root,) = struct.unpack_from("<I", data, at)
    dangling = bytearray(data)
    struct.pack_into("<I", dangling, at, root + 1)
    # The root record's first element is its (0004,1400) Offset of the Next Directory Record: item header (8 bytes),
    # element header (8 bytes), then the offset.
    assert data[root + 8:root + 16] == b"\x04\x00\x00\x14UL\x04\x00"
    loop = bytearray(data)
    struct.pack_into("<I", loop, root + 16, root)
    copies = {"truncated": data[:root + (len(data) - root) // 2], "dangling_offset": bytes(dangling),
              "offset_loop": bytes(loop), "not_a_directory": image.read_bytes()}
    (out / "broken").mkdir()
    for name, content in copies.items():
        (out / "broken" / name).write_bytes(content)
    return {name: f"broken/{name}" for name in copies}


def main() -> None:
    out, _ = output_and_datasets(__doc__)
    cd = out / "CD"
    pixels = np.arange(64 * 64, dtype=np.uint16).reshape(1, 64, 64)
    # (file, study, series, instance number, series description)
    images = [("DICOM/ST000001/SE000001/IM000001", 1, 1, 2, "AP"), ("DICOM/ST000001/SE000001/IM000002", 1, 1, 1, "AP"),
              ("DICOM/ST000001/SE000002/IM000001", 1, 2, 1, "LATERAL"), ("DICOM/ST000002/SE000001/IM000001", 2, 1, 1, "PA")]
    entries = []
    for file, study, series, number, description in images:
        (cd / file).parent.mkdir(parents=True, exist_ok=True)
        attributes = in_study(study, series, number, description)
        dump_to_dicom(out, f"image{len(entries)}", pixels, attributes).rename(cd / file)
        entries.append(entry(file, "IMAGE", DX, attributes))
    others = cd / "DICOM" / "ST000001" / "SE000003"
    others.mkdir()
    report = in_study(1, 3, 1, "REPORT")
    structured_report(out, report).rename(others / "IM000001")
    run(out, "dcmpsmk", str(cd / images[0][0]), str(others / "IM000002"))
    entries += [
        entry("DICOM/ST000001/SE000003/IM000001", "SR DOCUMENT", SR, report),
        # dcmpsmk puts the presentation state in a series of its own, numbered 1, its instance 1.
        entry("DICOM/ST000001/SE000003/IM000002", "PRESENTATION", GSPS, instance(1, 1, ""),
              series_instance_uid=series_of(others / "IM000002")),
    ]
    make_dicomdir(cd)
    manifest = {"folder": "CD", "entries": entries,
                "broken": broken_copies(cd / "DICOMDIR", cd / images[0][0], out)}
    (out / "dicomdir.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"make_dicomdir_fixtures: {cd}")


if __name__ == "__main__":
    main()
