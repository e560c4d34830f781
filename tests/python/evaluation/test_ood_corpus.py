"""tools/evaluation/ood_corpus.py: the non-knee corpus has every promised kind, format and bit depth, reproducibly."""
import csv
import shutil
import struct
from pathlib import Path

import pytest

from evaluation import ood_corpus


def png_bit_depth_and_colour(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    return struct.unpack(">BB", data[24:26])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("ood")
    args = ["--out", str(out)] + ([] if shutil.which("convert") else ["--no-imagemagick"])
    assert ood_corpus.main(args) == 0
    with open(out / "corpus.csv", newline="") as handle:
        return out, list(csv.DictReader(handle))


def test_every_kind_is_there(corpus):
    out, rows = corpus
    kinds = {row["kind"] for row in rows}
    assert {"skimage", "noise", "gradient", "blank"} <= kinds
    if shutil.which("convert"):
        assert {f"imagemagick-{name}.png" for name in ood_corpus.IMAGEMAGICK_BUILTINS} <= {r["file"] for r in rows}
    for row in rows:
        assert row["file"].startswith(row["kind"] + "-") and (out / row["file"]).is_file()


def test_formats_channels_and_bit_depths_vary(corpus):
    out, rows = corpus
    assert {"PNG", "JPEG"} <= {row["format"] for row in rows}
    assert {"L", "RGB", "RGBA"} <= {row["mode"] for row in rows}
    sixteen_bit_grey = [r for r in rows if r["format"] == "PNG" and png_bit_depth_and_colour(out / r["file"]) == (16, 0)]
    assert {r["kind"] for r in sixteen_bit_grey} >= {"noise", "gradient", "blank"}
    # The two-knee aspect is there, so the gate is tested on images the core splits in two.
    assert any(int(r["width"]) / int(r["height"]) >= 2.4 for r in rows)


def test_corpus_is_reproducible(corpus, tmp_path):
    out, rows = corpus
    again = tmp_path / "again"
    ood_corpus.main(["--out", str(again), "--no-imagemagick"])
    for row in rows:
        if row["kind"] in ("noise", "gradient", "blank"):
            assert (again / row["file"]).read_bytes() == (out / row["file"]).read_bytes()
