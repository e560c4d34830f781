#!/usr/bin/python3
"""Make DICOM test files with DCMTK, and DCMTK's rendering of each as the reference to match.

    make_dicom_fixtures.py --out DIR [--datasets DIR]

Bases: dataset PNGs exported to DICOM the way a hospital viewer would (img2dcm for 8-bit grey and RGB,
dump2dcm for 16-bit grey) and small synthetic images for layouts the datasets lack (12-bit signed, high bit
below the top, 8 bits in 16, planar RGB, multi-frame). dcmconv, dcmcrle and dcmcjpeg convert each base into
every supported transfer syntax, and into files without the preamble; dcmodify makes MONOCHROME1, rescale and
VOI window variants; dcmcjpeg and dcmcjpls make the compressed files the core leaves to the page's and the
CLI's codecs (make_codec_fixtures.py tests those), which the core alone refuses. The reference for
each is dcmj2pnm's PNG (+Wi 1 where a window is set). Dataset-derived files are made here, at test time, and
never committed. DIR/manifest.json:

  {"cases":   [{"name", "file", "reference", "tolerance", "width", "height", "channels", "bit_depth",
                "pixel_spacing_mm", "laterality", "source_png"}],
   "refused": [{"name", "file", "error"}],
   "datasets": true | false}

`tolerance` is the largest difference allowed from the reference: 0 for every lossless decode, more only
where DCMTK's rendering itself rounds differently (libjpeg's inverse DCT and colour upsampling against
stb_image's; inversion of MONOCHROME1 and negative-slope images without a window). `source_png` (or "") is the PNG a case was made from without loss, whose tensor
the DICOM's must equal bit for bit.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from bad_inputs import dicom_unsupported, outside_codec_refusal  # the core's messages, in one place

# ctest runs this without tools/oac's PYTHONPATH; tools/lib/paths.py knows where the datasets are.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
from lib.dicom_writer import dump_to_dicom  # noqa: E402
from lib.paths import datasets_dir  # noqa: E402

OAI_GREY8 = "Osteoarthritis_Dataset/Valid/Normal/9001695L.png"
GREY16 = "Osteoarthritis_Dataset/Valid/Osteoarthritis/ModerateG3 (128).png"
RGB8 = "Osteoarthritis_Dataset/Valid/Osteoarthritis/ModerateG3 (1).png"
BILATERAL_GREY16 = "Osteoarthritis_Dataset/Valid/Osteoarthritis/ModerateG3 (203).png"


@dataclass
class Base:
    """A DICOM file as exported, with what decoding it must give."""
    name: str
    path: Path
    width: int
    height: int
    channels: int
    bit_depth: int
    pixel_spacing_mm: list[float] | None = None
    laterality: str = ""
    source_png: str = ""
    tolerance: int = 0
    stored_bits: int = 8
    # (center, width) in rescaled units (slope 2, intercept -1000) that shows the image's range
    rescaled_window: tuple[int, int] = (-750, 200)
    window: bool = False
    baseline_jpeg: bool = True  # dcmcjpeg +eb can encode it (8 bits allocated)


class Dcmtk:
    def __init__(self, out: Path):
        self.out = out

    def run(self, *args: str) -> None:
        subprocess.run(args, check=True, cwd=self.out, stdout=subprocess.DEVNULL)

    def derive(self, base: Base, suffix: str, *command: str) -> Base:
        """Runs `command SRC DST` on the base file and returns the derived case."""
        derived = self.out / f"{base.name}-{suffix}.dcm"
        self.run(*command, str(base.path), str(derived))
        return replace(base, name=f"{base.name}-{suffix}", path=derived)

    def modify(self, base: Base, suffix: str, *insertions: str, **changes) -> Base:
        derived = self.out / f"{base.name}-{suffix}.dcm"
        shutil.copyfile(base.path, derived)
        arguments = [argument for insertion in insertions for argument in ("-i", insertion)]
        self.run("dcmodify", "-nb", *arguments, str(derived))
        return replace(base, name=f"{base.name}-{suffix}", path=derived, **changes)


def png_to_bmp_to_dicom(out: Path, name: str, png: Path) -> Path:
    """What a viewer's "export as DICOM" does with an 8-bit image: img2dcm reads BMP (not PNG)."""
    bmp = out / f"{name}.bmp"
    with Image.open(png) as image:
        image.save(bmp)
    path = out / f"{name}.dcm"
    subprocess.run(["img2dcm", "-i", "BMP", bmp.name, path.name], check=True, cwd=out)
    bmp.unlink()
    return path


def dataset_bases(out: Path, datasets: Path, dcmtk: Dcmtk) -> list[Base]:
    grey8 = Base("oai-grey8", png_to_bmp_to_dicom(out, "oai-grey8", datasets / OAI_GREY8), 224, 224, 1, 8,
                 source_png=str(datasets / OAI_GREY8))
    # Hospital exports carry the detector's spacing and the image laterality; Pixel Spacing is often absent.
    grey8 = dcmtk.modify(grey8, "export", "(0018,1164)=0.143\\0.143", "(0020,0062)=R", pixel_spacing_mm=[0.143, 0.143],
                         laterality="R")
    rgb = Base("rgb8", png_to_bmp_to_dicom(out, "rgb8", datasets / RGB8), 300, 162, 3, 8,
               source_png=str(datasets / RGB8))
    with Image.open(datasets / GREY16) as image:
        grey16_pixels = np.asarray(image, dtype=np.int64).astype(np.uint16)
    with Image.open(datasets / BILATERAL_GREY16) as image:
        bilateral_pixels = np.asarray(image, dtype=np.int64).astype(np.uint16)
    spacing = {"(0028,0030)": "DS [0.15\\0.16]", "(0018,1164)": "DS [0.143\\0.143]", "(0020,0060)": "CS [L]"}
    grey16 = Base("grey16", dump_to_dicom(out, "grey16", grey16_pixels[None], spacing), 300, 162, 1, 16,
                  pixel_spacing_mm=[0.15, 0.16], laterality="L", source_png=str(datasets / GREY16), baseline_jpeg=False,
                  stored_bits=16, rescaled_window=(40000, 60000))
    bilateral = Base("bilateral16", dump_to_dicom(out, "bilateral16", bilateral_pixels[None],
                                                  {"(0020,0060)": "CS [B]"}),
                     640, 161, 1, 16, laterality="B", source_png=str(datasets / BILATERAL_GREY16), baseline_jpeg=False,
                     stored_bits=16)
    return [grey8, rgb, grey16, bilateral]


def synthetic_bases(out: Path) -> list[Base]:
    rows, columns = 48, 64
    y, x = np.mgrid[0:rows, 0:columns]
    ramp12 = (x * 61 + y * 17) % 4096
    signed12 = dump_to_dicom(out, "signed12", (ramp12 - 2048).astype(np.int16)[None],
                             {"(0028,0101)": "US 12", "(0028,0102)": "US 11", "(0028,0103)": "US 1"})
    # High bit 15 with 12 bits stored: the stored value sits in the top bits, the low four hold junk.
    high_bit = dump_to_dicom(out, "highbit15", ((ramp12 << 4) | (x % 16)).astype(np.uint16)[None],
                             {"(0028,0101)": "US 12", "(0028,0102)": "US 15"})
    eight_in_sixteen = dump_to_dicom(out, "bits8of16", ((x * 4 + y) % 256 | 0xAB00).astype(np.uint16)[None],
                                     {"(0028,0101)": "US 8", "(0028,0102)": "US 7"})
    # Three different planes, yet close enough to grey that the core takes the picture for a radiograph.
    grey = (x * 3 + y * 2) % 200
    planes = np.stack([grey, grey + (x % 3) * 6, grey + 20 - (y % 4) * 5]).astype(np.uint8)
    # Planar configuration 1 stores the red, green and blue planes one after another: the planes' bytes
    # go in unchanged, only the shape says three samples per pixel.
    planar_rgb = dump_to_dicom(out, "planar-rgb", planes.reshape(1, rows, columns, 3), {"(0028,0006)": "US 1"})
    frames = np.stack([(x * 3 + y * 2 + 50 * frame) % 256 for frame in range(3)]).astype(np.uint8)
    multi_frame = dump_to_dicom(out, "multiframe8", frames, {})
    return [
        Base("signed12", signed12, columns, rows, 1, 16, baseline_jpeg=False, stored_bits=12, rescaled_window=(0, 3000)),
        Base("highbit15", high_bit, columns, rows, 1, 16, baseline_jpeg=False, stored_bits=12),
        Base("bits8of16", eight_in_sixteen, columns, rows, 1, 8, baseline_jpeg=False),
        Base("planar-rgb", planar_rgb, columns, rows, 3, 8),
        Base("multiframe8", multi_frame, columns, rows, 1, 8),
    ]


def variants(base: Base, dcmtk: Dcmtk, out: Path) -> list[Base]:
    cases = [base,
             dcmtk.derive(base, "implicit", "dcmconv", "+ti"),
             dcmtk.derive(base, "big-endian", "dcmconv", "+tb"),
             dcmtk.derive(base, "deflated", "dcmconv", "+td"),
             dcmtk.derive(base, "data-set-only", "dcmconv", "-F", "+ti"),
             dcmtk.derive(base, "rle", "dcmcrle")]
    without_preamble = out / f"{base.name}-no-preamble.dcm"
    without_preamble.write_bytes(base.path.read_bytes()[132:])
    cases.append(replace(base, name=f"{base.name}-no-preamble", path=without_preamble))
    if base.baseline_jpeg:
        # Lossy: the tensor can no longer equal the PNG's, and stb_image's IDCT and upsampling differ
        # from libjpeg's by a level or two.
        cases.append(replace(dcmtk.derive(base, "jpeg-baseline", "dcmcjpeg", "+eb", "+q", "95"), source_png="",
                             tolerance=1 if base.channels == 1 else 3))
    return cases


def grey_variants(base: Base, dcmtk: Dcmtk) -> list[Base]:
    """MONOCHROME1, rescale and VOI window, in the explicit little endian base and one conversion."""
    # Inverted without a window, DCMTK's levels differ from the core's exact `top - value` by rounding
    # (one level), and for 12 stored bits by where it inverts: before scaling to 16 bits (up to 15 levels).
    inverted_tolerance = 1 if base.stored_bits in (8, 16) else 15
    inverted = dcmtk.modify(base, "monochrome1", "(0028,0004)=MONOCHROME1", source_png="", tolerance=inverted_tolerance)
    negative_slope = dcmtk.modify(base, "negative-slope", "(0028,1052)=100", "(0028,1053)=-1", source_png="",
                                  tolerance=inverted_tolerance)
    # Two windows: the first one counts.
    centre, width = base.rescaled_window
    windowed = dcmtk.modify(base, "window", "(0028,1052)=-1000", "(0028,1053)=2", f"(0028,1050)={centre}\\7",
                            f"(0028,1051)={width}\\9", source_png="", window=True, bit_depth=16, tolerance=0)
    windowed_inverted = dcmtk.modify(windowed, "monochrome1", "(0028,0004)=MONOCHROME1")
    return [inverted, negative_slope, windowed, windowed_inverted,
            dcmtk.derive(windowed_inverted, "rle", "dcmcrle"), dcmtk.derive(windowed, "big-endian", "dcmconv", "+tb")]


def refused(bases: dict[str, Base], dcmtk: Dcmtk) -> list[dict]:
    def compressed(name: str, uid: str) -> str:
        return outside_codec_refusal(name, uid)
    grey16, signed12 = bases.get("grey16", bases["highbit15"]), bases["signed12"]
    cases = [
        (dcmtk.derive(grey16, "jpeg-lossless-sv1", "dcmcjpeg", "+e1"),
         compressed("JPEG Lossless (first-order prediction)", "1.2.840.10008.1.2.4.70")),
        (dcmtk.derive(grey16, "jpeg-lossless", "dcmcjpeg", "+el"),
         compressed("JPEG Lossless", "1.2.840.10008.1.2.4.57")),
        (dcmtk.derive(grey16, "jpeg-ls", "dcmcjpls", "+el"),
         compressed("JPEG-LS Lossless", "1.2.840.10008.1.2.4.80")),
        (dcmtk.derive(grey16, "jpeg-ls-near", "dcmcjpls", "+en"),
         compressed("JPEG-LS Near-Lossless", "1.2.840.10008.1.2.4.81")),
        (dcmtk.derive(signed12, "jpeg-extended-12bit", "dcmcjpeg", "+ee"),
         dicom_unsupported("is 12-bit JPEG (only 8-bit JPEG is supported)")),
    ]
    return [{"name": case.name, "file": case.path.name, "error": error} for case, error in cases]


def reference(case: Base, dcmtk: Dcmtk) -> str:
    name = f"{case.name}.ref.png"
    options = ["+on2" if case.bit_depth == 16 else "+on"] + (["+Wi", "1"] if case.window else [])
    dcmtk.run("dcmj2pnm", *options, str(case.path), name)
    return name


def output_and_datasets(description: str) -> tuple[Path, Path]:
    """The fixture writers' command line (--out DIR [--datasets DIR]): DIR made anew, and the datasets' folder."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--datasets", type=Path, default=datasets_dir())
    args = parser.parse_args()
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    return args.out.resolve(), args.datasets.resolve()


def main() -> None:
    out, datasets = output_and_datasets(__doc__)
    dcmtk = Dcmtk(out)

    have_datasets = all((datasets / path).exists() for path in (OAI_GREY8, GREY16, RGB8, BILATERAL_GREY16))
    if not have_datasets:
        print(f"make_dicom_fixtures: datasets not found under {datasets}; synthetic cases only", file=sys.stderr)
    bases = (dataset_bases(out, datasets, dcmtk) if have_datasets else []) + synthetic_bases(out)
    by_name = {base.name.removesuffix("-export"): base for base in bases}

    cases = [case for base in bases for case in variants(base, dcmtk, out)]
    for grey in ("oai-grey8", "grey16", "signed12"):
        if grey in by_name:
            cases += grey_variants(by_name[grey], dcmtk)
    manifest = {
        "datasets": have_datasets,
        "cases": [{"name": case.name, "file": case.path.name, "reference": reference(case, dcmtk),
                   "tolerance": case.tolerance, "width": case.width, "height": case.height, "channels": case.channels,
                   "bit_depth": case.bit_depth, "pixel_spacing_mm": case.pixel_spacing_mm,
                   "laterality": case.laterality, "source_png": case.source_png} for case in cases],
        "refused": refused(by_name, dcmtk),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"make_dicom_fixtures: {len(manifest['cases'])} cases, {len(manifest['refused'])} refused, in {out}")


if __name__ == "__main__":
    main()
