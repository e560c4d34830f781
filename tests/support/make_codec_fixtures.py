#!/usr/bin/python3
"""Make compressed DICOM files with DCMTK and GDCM, and the reference toolkits' decoding of each.

    make_codec_fixtures.py --out DIR [--datasets DIR]

Images made here (8, 12 and 16 bits, unsigned and signed, MONOCHROME2 and MONOCHROME1, one with a VOI window)
go into DICOM with dump2dcm, then into every compressed syntax a Debian tool writes: dcmcjpeg +e1 (JPEG Lossless,
first-order prediction, .70) and +el (JPEG Lossless, .57), dcmcjpls +el (JPEG-LS, .80) and +en (near-lossless,
.81), gdcmconv --j2k (JPEG 2000 lossless, .90) and --j2k --lossy (JPEG 2000, .91). The reference samples of each
are what the toolkit that wrote it decodes it to (dcmdjpeg, dcmdjpls, gdcmconv --raw), written raw by
dcmdump +W. Debian has no HTJ2K encoder: tests/node/dicom_codecs.test.mjs makes those files with OpenJPH's
encoder. With the datasets, a whole bilateral radiograph (full-radiographs/normal_N14.jpg) becomes a
hospital-style 12-bit export, uncompressed and in each lossless syntax, for the scoring checks.
Nothing here is committed. DIR/codecs.json:

  {"cases": [{"name", "file", "syntax", "lossless", "original", "reference", "reference_tool",
              "rows", "columns", "bits_allocated", "bits_stored", "is_signed", "photometric", "frames"}],
   "films": [{"name", "file", "syntax", "original"}]}

`original` is the uncompressed file the case was made from; `reference` the raw little-endian samples the
reference toolkit decoded (bits_allocated wide, as DCMTK stores them; every frame of a multi-frame case, of
which the core reads frame 1).
"""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from make_dicom_fixtures import dump_to_dicom, output_and_datasets

WHOLE_FILM = "full-radiographs/normal_N14.jpg"
UID_ROOT = "2.25.301729385671028405518305913486351617"  # a UUID-derived root (PS3.5 B.2) for these test files


@dataclass(frozen=True)
class Encoding:
    suffix: str
    syntax: str
    lossless: bool
    command: tuple[str, ...]  # run as command SRC DST
    decoder: tuple[str, ...]  # the same toolkit's decompression, run as decoder SRC DST
    signed_too: bool = True  # DCMTK's near-lossless JPEG-LS refuses signed pixels


DCMDJPEG = ("dcmdjpeg",)
DCMDJPLS = ("dcmdjpls",)
GDCM_RAW = ("gdcmconv", "--raw")
# A multi-frame image the way archives fragment it: frames split into 1 kB fragments, with and without the
# basic offset table, so frame 1 is found by the table or by its end-of-image marker.
FRAGMENTED = [
    Encoding("fragments-offset-table", "1.2.840.10008.1.2.4.70", True, ("dcmcjpeg", "+e1", "+fs", "1", "+ot"), DCMDJPEG),
    Encoding("fragments-no-offset-table", "1.2.840.10008.1.2.4.70", True, ("dcmcjpeg", "+e1", "+fs", "1", "-ot"),
             DCMDJPEG),
    Encoding("jpeg-ls-fragments", "1.2.840.10008.1.2.4.80", True, ("dcmcjpls", "+el", "+fs", "1", "-ot"), DCMDJPLS),
]
ENCODINGS = [
    Encoding("jpeg-lossless-sv1", "1.2.840.10008.1.2.4.70", True, ("dcmcjpeg", "+e1"), DCMDJPEG),
    Encoding("jpeg-lossless", "1.2.840.10008.1.2.4.57", True, ("dcmcjpeg", "+el"), DCMDJPEG),
    Encoding("jpeg-ls", "1.2.840.10008.1.2.4.80", True, ("dcmcjpls", "+el"), DCMDJPLS),
    Encoding("jpeg-ls-near", "1.2.840.10008.1.2.4.81", False, ("dcmcjpls", "+en", "+md", "2"), DCMDJPLS,
             signed_too=False),
    Encoding("j2k", "1.2.840.10008.1.2.4.90", True, ("gdcmconv", "--j2k"), GDCM_RAW),
    Encoding("j2k-lossy", "1.2.840.10008.1.2.4.91", False, ("gdcmconv", "--j2k", "--lossy", "-q", "40", "--quiet"), GDCM_RAW),
]


def run(out: Path, *command: str) -> None:
    subprocess.run(command, check=True, cwd=out, stdout=subprocess.DEVNULL)


def transfer_syntax_of(path: Path) -> str:
    dump = subprocess.run(["dcmdump", "-s", "-Un", "+P", "0002,0010", str(path)], check=True, capture_output=True, text=True)
    return dump.stdout.split("[", 1)[1].split("]", 1)[0] if "[" in dump.stdout else ""


def raw_samples(out: Path, decoded: Path) -> Path:
    """dcmdump +W writes the pixel data as it is stored, little-endian, beside the file."""
    folder = out / f"{decoded.stem}.pixels"
    folder.mkdir()
    run(out, "dcmdump", "-q", "+W", str(folder), str(decoded))
    [raw] = folder.glob("*.raw")
    target = out / f"{decoded.stem}.raw"
    raw.rename(target)
    folder.rmdir()
    return target


def instance_uid(index: int) -> dict[str, str]:
    """GDCM's lossy encoders record the image they derive from, by its SOP Instance UID."""
    return {"(0008,0018)": f"UI [{UID_ROOT}.{index}]"}


def synthetic_images(out: Path) -> list[tuple[str, Path, dict]]:
    """Small images for each sample layout: a ramp with texture, so every predictor and bit plane is used."""
    rows, columns = 48, 64
    y, x = np.mgrid[0:rows, 0:columns]
    texture = (x * 61 + y * 17 + (x * y) % 23) % 4096
    images = [
        ("u8", (texture % 256).astype(np.uint8), {}, 8, False),
        ("u12", texture.astype(np.uint16), {"(0028,0101)": "US 12", "(0028,0102)": "US 11"}, 12, False),
        ("s12", (texture - 2048).astype(np.int16),
         {"(0028,0101)": "US 12", "(0028,0102)": "US 11", "(0028,0103)": "US 1"}, 12, True),
        ("u16", (texture * 16 + (x % 16)).astype(np.uint16), {}, 16, False),
        ("s16", (texture * 16 - 32768).astype(np.int16), {"(0028,0103)": "US 1"}, 16, True),
        ("mono1-u12", texture.astype(np.uint16),
         {"(0028,0101)": "US 12", "(0028,0102)": "US 11", "(0028,0004)": "CS [MONOCHROME1]"}, 12, False),
        ("window-s12", (texture - 2048).astype(np.int16),
         {"(0028,0101)": "US 12", "(0028,0102)": "US 11", "(0028,0103)": "US 1", "(0028,1050)": "DS [100]",
          "(0028,1051)": "DS [1500]", "(0028,1052)": "DS [-10]", "(0028,1053)": "DS [2]"}, 12, True),
        ("multiframe-u12", texture.astype(np.uint16), {"(0028,0101)": "US 12", "(0028,0102)": "US 11"}, 12, False),
    ]
    frames = np.stack([(texture + 700 * frame) % 4096 for frame in range(3)]).astype(np.uint16)
    made = []
    for index, (name, pixels, attributes, bits_stored, is_signed) in enumerate(images, start=1):
        stack = frames if name == "multiframe-u12" else pixels[None]
        path = dump_to_dicom(out, name, stack, {**instance_uid(index), **attributes})
        made.append((name, path, {"rows": rows, "columns": columns, "bits_allocated": pixels.dtype.itemsize * 8,
                                  "bits_stored": bits_stored, "is_signed": is_signed,
                                  "photometric": attributes.get("(0028,0004)", "CS [MONOCHROME2]")[4:-1],
                                  "frames": len(stack)}))
    return made


def whole_film(out: Path, datasets: Path) -> Path:
    """A hospital-style 12-bit export of a real bilateral radiograph: detector spacing, a window, no preamble tricks."""
    with Image.open(datasets / WHOLE_FILM) as image:
        grey = np.asarray(image.convert("L"), dtype=np.uint16)
    twelve_bit = grey << 4 | grey >> 4
    return dump_to_dicom(out, "film12", twelve_bit[None], {
        **instance_uid(100), "(0028,0101)": "US 12", "(0028,0102)": "US 11", "(0018,1164)": "DS [0.143\\0.143]",
        "(0028,1050)": "DS [2048]", "(0028,1051)": "DS [4096]"})


def encode(out: Path, original: Path, encoding: Encoding) -> Path:
    compressed = out / f"{original.stem}-{encoding.suffix}.dcm"
    run(out, *encoding.command, str(original), str(compressed))
    found = transfer_syntax_of(compressed)
    if found != encoding.syntax:
        raise RuntimeError(f"{' '.join(encoding.command)} wrote {found or 'no transfer syntax'}, not {encoding.syntax}")
    return compressed


def main() -> None:
    out, datasets = output_and_datasets(__doc__)

    cases = []
    for name, original, layout in synthetic_images(out):
        encodings = FRAGMENTED if layout["frames"] > 1 else ENCODINGS
        for encoding in (e for e in encodings if e.signed_too or not layout["is_signed"]):
            compressed = encode(out, original, encoding)
            decoded = out / f"{compressed.stem}.decoded.dcm"
            run(out, *encoding.decoder, str(compressed), str(decoded))
            # gdcmconv --raw writes Bits Stored 16 for a 12-bit JPEG 2000 image; the samples are what the toolkit
            # decoded, their meaning is the compressed file's.
            bits = layout["bits_stored"]
            run(out, "dcmodify", "-nb", "-m", f"(0028,0101)={bits}", "-m", f"(0028,0102)={bits - 1}", str(decoded))
            cases.append({"name": compressed.stem, "file": compressed.name, "syntax": encoding.syntax,
                          "lossless": encoding.lossless, "original": original.name,
                          "reference": raw_samples(out, decoded).name, "reference_tool": encoding.decoder[0],
                          **layout})
    films = []
    if (datasets / WHOLE_FILM).exists():
        film = whole_film(out, datasets)
        films.append({"name": film.stem, "file": film.name, "syntax": "1.2.840.10008.1.2.1", "original": film.name})
        for encoding in (e for e in ENCODINGS if e.lossless):
            compressed = encode(out, film, encoding)
            films.append({"name": compressed.stem, "file": compressed.name, "syntax": encoding.syntax,
                          "original": film.name})
    else:
        print(f"make_codec_fixtures: {WHOLE_FILM} not found under {datasets}; no whole film", file=sys.stderr)
    (out / "codecs.json").write_text(json.dumps({"cases": cases, "films": films}, indent=1) + "\n")
    print(f"make_codec_fixtures: {len(cases)} cases and {len(films)} films in {out}")


if __name__ == "__main__":
    main()
