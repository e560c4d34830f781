#!/usr/bin/python3
"""Write the seed corpora of the fuzz targets: small valid images of every kind the core reads, and the
malformed files of bad_inputs.py, so that fuzzing starts from both sides of every check.

    make_seeds.py --out DIR     ->  DIR/decode/, DIR/dicom/, DIR/prepare/, DIR/frames/

Everything is made here (PIL, the DICOM writer of bad_inputs.py and, when installed, DCMTK for the
other transfer syntaxes); seeds stay small because libFuzzer's speed falls with input size.
"""
from __future__ import annotations

import argparse
import io
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

import bad_inputs

MAX_SEED_BYTES = 16 * 1024


def image_seeds() -> dict[str, bytes]:
    y, x = np.mgrid[0:12, 0:40]  # wide enough for the bilateral split
    grey = ((x * 6 + y * 9) % 256).astype(np.uint8)
    images = {
        "grey": Image.fromarray(grey),
        "grey16": Image.fromarray(grey.astype(np.uint16) * 257),
        "rgb": Image.fromarray(np.stack([grey, grey[::-1], 255 - grey], axis=-1)),
        "rgba": Image.fromarray(np.stack([grey, grey, grey, grey[:, ::-1]], axis=-1)),
        "grey-alpha": Image.fromarray(grey).convert("LA"),
        "palette": Image.fromarray(grey).convert("P"),
        "one-bit": Image.fromarray(grey).convert("1"),
    }
    seeds = {}
    for name, image in images.items():
        seeds[f"{name}.png"] = save(image, "PNG")
    for name in ("grey", "rgb"):
        seeds[f"{name}-baseline.jpg"] = save(images[name], "JPEG", quality=80)
        seeds[f"{name}-progressive.jpg"] = save(images[name], "JPEG", quality=80, progressive=True)
    seeds["rgb-420.jpg"] = save(images["rgb"], "JPEG", quality=60, subsampling=2)
    seeds["rgb.bmp"] = save(images["rgb"], "BMP")
    seeds["palette.bmp"] = save(images["palette"], "BMP")
    seeds["rgba.bmp"] = save(images["rgba"], "BMP")
    return seeds


def save(image: Image.Image, format_name: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, format_name, **options)
    return out.getvalue()


def dicom_seeds() -> dict[str, bytes]:
    """Small DICOM files: the corpus writer's, converted by DCMTK into the other transfer syntaxes."""
    base = {
        "grey8.dcm": bad_inputs.Dicom(rows=12, columns=40).bytes(),
        "grey16.dcm": bad_inputs.Dicom(rows=6, columns=20, bits=16).bytes(),
        "rgb8.dcm": bad_inputs.Dicom(rows=6, columns=8, photometric="RGB", samples_per_pixel=3).bytes(),
    }
    seeds = dict(base)
    if shutil.which("dcmconv") is None:
        print("make_seeds: DCMTK not found; DICOM seeds in explicit VR little endian only", file=sys.stderr)
        return seeds
    conversions = {
        "implicit": ["dcmconv", "+ti"], "big-endian": ["dcmconv", "+tb"], "deflated": ["dcmconv", "+td"],
        "data-set-only": ["dcmconv", "-F", "+ti"], "rle": ["dcmcrle"],
        "window-monochrome1": ["dcmodify", "-nb", "-i", "(0028,0004)=MONOCHROME1", "-i", "(0028,1050)=100",
                               "-i", "(0028,1051)=50", "-i", "(0028,1053)=2", "-i", "(0018,1164)=0.1\\0.1",
                               "-i", "(0020,0062)=L"],
    }
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for name, data in base.items():
            source = work / name
            source.write_bytes(data)
            for suffix, command in conversions.items():
                target = work / f"{source.stem}-{suffix}.dcm"
                if command[0] == "dcmodify":
                    shutil.copyfile(source, target)
                    subprocess.run([*command, str(target)], check=True, stdout=subprocess.DEVNULL)
                else:
                    subprocess.run([*command, str(source), str(target)], check=True, stdout=subprocess.DEVNULL)
                seeds[target.name] = target.read_bytes()
            if name != "grey16.dcm":
                target = work / f"{source.stem}-jpeg.dcm"
                subprocess.run(["dcmcjpeg", "+eb", str(source), str(target)], check=True, stdout=subprocess.DEVNULL)
                seeds[target.name] = target.read_bytes()
        # A DICOMDIR over one of them, for the DICOMDIR reader that the dicom target runs too; its records need a
        # patient, a study and a series, which the corpus writer's files do not name.
        disc = work / "disc"
        (disc / "DICOM").mkdir(parents=True)
        listed = disc / "DICOM" / "IM000001"
        shutil.copyfile(work / "grey8.dcm", listed)
        subprocess.run(["dcmodify", "-nb", "-i", "(0010,0010)=SEED", "-i", "(0008,0060)=OT", "-i", "(0020,000d)=1.2.3",
                        "-i", "(0020,000e)=1.2.3.1", str(listed)], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["dcmmkdir", "-q", "+I", "+r", "+id", ".", "DICOM"], cwd=disc, check=True, stdout=subprocess.DEVNULL)
        seeds["DICOMDIR"] = (disc / "DICOMDIR").read_bytes()
    seeds["grey8-no-preamble.dcm"] = base["grey8.dcm"][132:]
    return seeds


def frame_seeds() -> dict[str, bytes]:
    """Encapsulated pixel data of the syntaxes the page's codecs decode: one and several fragments, with and
    without an offset table, one and two frames."""
    frame = bad_inputs.flat_lossless_jpeg(8, 8)
    halves = (frame[:len(frame) // 2], frame[len(frame) // 2:])

    def lossless(*fragments: bytes, frames: int = 1, offset_table: bytes = b"") -> bytes:
        extra = [bad_inputs.element((0x0028, 0x0008), "IS", bad_inputs.padded(str(frames)))] if frames > 1 else []
        return bad_inputs.Dicom(rows=8, columns=8, transfer_syntax=bad_inputs.JPEG_LOSSLESS_SV1, extra=extra,
                                pixel_data=bad_inputs.encapsulated(*fragments, offset_table=offset_table)).bytes()
    return {
        "lossless-one-fragment.dcm": lossless(frame),
        "lossless-two-fragments.dcm": lossless(*halves),
        "lossless-two-frames-offset-table.dcm": lossless(frame, frame, frames=2,
                                                         offset_table=struct.pack("<2I", 0, len(frame) + 8)),
        "lossless-two-frames-end-markers.dcm": lossless(*halves, frame, frames=2),
        "j2k-header.dcm": bad_inputs.Dicom(rows=8, columns=8, transfer_syntax=bad_inputs.JPEG_2000_LOSSLESS,
                                           pixel_data=bad_inputs.encapsulated(b"\xff\x4f\xff\x51" + bytes(38))).bytes(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    images, dicoms = image_seeds(), dicom_seeds()
    malformed = {case.file: case.data for case in bad_inputs.all_cases() if len(case.data) <= MAX_SEED_BYTES}
    corpora = {
        "decode": {**images, **dicoms, **malformed},
        "dicom": {**dicoms, **{name: data for name, data in malformed.items() if name.startswith("dicom-")}},
        "prepare": {**images, **dicoms},
        "frames": {**frame_seeds(), **{name: data for name, data in malformed.items() if name.startswith("dicom-")}},
    }
    for target, seeds in corpora.items():
        folder = args.out / target
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        for name, data in seeds.items():
            (folder / name).write_bytes(data)
        print(f"make_seeds: {len(seeds)} seeds in {folder}")


if __name__ == "__main__":
    main()
