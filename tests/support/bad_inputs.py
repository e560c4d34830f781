#!/usr/bin/python3
"""Write a corpus of malformed and hostile image files, each with the exact error the image core gives.

    tests/support/bad_inputs.py --out DIR

Every file is made here from arithmetic and PIL, so the corpus is the same on every machine. DIR gets the
files and DIR/expected.json:

    {"cases":    [{"file": "...", "what": "why the file is odd", "error": "the core's exact message",
                  "page_error": "the page's and the CLI's message, where their codecs decode the file"}],
     "controls": [{"file": "...", "width": W, "height": H, "channels": C, "bit_depth": B}]}

A case whose "error" is null is odd but valid and must decode to its "decoded" {width, height, channels,
bit_depth} (a CMYK JPEG, which the core converts to RGB). A consumer decodes each case, checks the
outcome, then decodes the controls (a PNG and a DICOM) to check that nothing from the odd file leaked
into the next call. The C++ tests run it natively and
under Node (tests/dicom/), and the web page's tests can run the same files through the worker.
"""
from __future__ import annotations

import argparse
import io
import json
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

NOT_AN_IMAGE = "The file is not a PNG, JPEG or BMP image."
NO_PIXELS = "The image has no pixels: its header declares a width or height of 0."
DICOM_TRUNCATED = "The DICOM file is truncated: it ends before the image data is complete."
EXPORT_ADVICE = ("Export the image from your viewer as uncompressed DICOM (transfer syntax Explicit VR Little Endian) "
                 "or as PNG, then open that file.")


def truncated(format_name: str) -> str:
    return f"The {format_name} file is truncated: it ends before the image data is complete."


def undecodable(format_name: str, detail: str) -> str:
    return f"The {format_name} file is damaged or uses an unsupported variant ({detail})."


def too_many_pixels(width: int, height: int) -> str:
    return (f"The image declares {width} x {height} pixels ({width * height / 1e6:.1f} megapixels), more than the "
            "limit of 64.0 megapixels; the file is probably corrupt or a decompression bomb.")


def dicom_damaged(detail: str) -> str:
    return f"The DICOM file is damaged: {detail}."


def outside_codec_refusal(name: str, uid: str) -> str:
    """The core's own answer to a file whose frames the page's and the CLI's codecs decode (web/codecs/)."""
    return (f"The DICOM file is compressed with {name} (transfer syntax {uid}), which the page and tools/oac classify "
            f"decode with their codecs; this build of the image core does not. {EXPORT_ADVICE}")


def codec_failure(name: str) -> str:
    return f"The DICOM file's {name} image could not be decoded: the file may be truncated or damaged."


def dicom_unsupported(what: str) -> str:
    return f"The DICOM image {what}, which this app cannot read. {EXPORT_ADVICE}"


def dicom_length_past_end(tag: tuple[int, int], declared: int, remaining: int) -> str:
    return (f"The DICOM file is truncated or damaged: element ({tag[0]:04X},{tag[1]:04X}) declares {declared} bytes "
            f"but only {remaining} remain.")


# --- DICOM Part 10 writing (PS3.10 file format, PS3.5 encodings) -------------------------------------

EXPLICIT_LITTLE = "1.2.840.10008.1.2.1"
IMPLICIT_LITTLE = "1.2.840.10008.1.2"
DEFLATED = "1.2.840.10008.1.2.1.99"
RLE_LOSSLESS = "1.2.840.10008.1.2.5"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
JPEG_LS_LOSSLESS = "1.2.840.10008.1.2.4.80"
JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"
JPEG_2000_LOSSLESS = "1.2.840.10008.1.2.4.90"
HTJ2K_LOSSLESS = "1.2.840.10008.1.2.4.201"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
LONG_LENGTH_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}
UNDEFINED = 0xFFFFFFFF
PIXEL_DATA = (0x7FE0, 0x0010)


def padded(text: str, pad: bytes = b" ") -> bytes:
    data = text.encode("ascii")
    return data + pad if len(data) % 2 else data


def element(tag: tuple[int, int], vr: str, value: bytes, *, explicit: bool = True, length: int | None = None) -> bytes:
    """One little-endian data element; `length` overrides the true value length (lying headers)."""
    length = len(value) if length is None else length
    head = struct.pack("<HH", *tag)
    if tag[0] == 0xFFFE or not explicit:
        return head + struct.pack("<I", length) + value
    if vr in LONG_LENGTH_VRS:
        return head + vr.encode() + b"\0\0" + struct.pack("<I", length) + value
    return head + vr.encode() + struct.pack("<H", length) + value


def us(tag: tuple[int, int], value: int) -> bytes:
    return element(tag, "US", struct.pack("<H", value))


def item(value: bytes, length: int | None = None) -> bytes:
    return element((0xFFFE, 0xE000), "", value, length=length)


SEQUENCE_END = element((0xFFFE, 0xE0DD), "", b"")
ITEM_END = element((0xFFFE, 0xE00D), "", b"")


def file_meta(transfer_syntax: str) -> bytes:
    body = (element((0x0002, 0x0001), "OB", b"\0\1")
            + element((0x0002, 0x0002), "UI", padded(SECONDARY_CAPTURE, b"\0"))
            + element((0x0002, 0x0003), "UI", padded("1.2.826.0.1.3680043.10.1", b"\0"))
            + element((0x0002, 0x0010), "UI", padded(transfer_syntax, b"\0")))
    return element((0x0002, 0x0000), "UL", struct.pack("<I", len(body))) + body


@dataclass
class Dicom:
    """A Part 10 file as named parts, so that it can be cut at each structural boundary."""
    transfer_syntax: str = EXPLICIT_LITTLE
    rows: int = 4
    columns: int = 5
    bits: int = 8
    photometric: str = "MONOCHROME2"
    samples_per_pixel: int = 1
    extra: list[bytes] = field(default_factory=list)  # elements before the image attributes (sorted tags)
    pixel_data: bytes | None = None  # the whole Pixel Data element; default: native pixels

    def parts(self) -> list[tuple[str, bytes]]:
        parts = [("preamble", b"\0" * 128 + b"DICM"), ("file meta", file_meta(self.transfer_syntax))]
        parts += [(f"extra element {i}", data) for i, data in enumerate(self.extra)]
        parts += [
            ("SOP Class UID", element((0x0008, 0x0016), "UI", padded(SECONDARY_CAPTURE, b"\0"))),
            ("Samples per Pixel", us((0x0028, 0x0002), self.samples_per_pixel)),
            ("Photometric Interpretation", element((0x0028, 0x0004), "CS", padded(self.photometric))),
            *([("Planar Configuration", us((0x0028, 0x0006), 0))] if self.samples_per_pixel > 1 else []),
            ("Rows", us((0x0028, 0x0010), self.rows)),
            ("Columns", us((0x0028, 0x0011), self.columns)),
            ("Bits Allocated", us((0x0028, 0x0100), self.bits)),
            ("Bits Stored", us((0x0028, 0x0101), self.bits)),
            ("High Bit", us((0x0028, 0x0102), self.bits - 1)),
            ("Pixel Representation", us((0x0028, 0x0103), 0)),
        ]
        if self.pixel_data is None:
            count = self.rows * self.columns * self.samples_per_pixel
            values = bytes((7 * i + 3) % 251 for i in range(count * self.bits // 8))
            self.pixel_data = element(PIXEL_DATA, "OB" if self.bits == 8 else "OW", values + b"\0" * (len(values) % 2))
        parts.append(("Pixel Data", self.pixel_data))
        return parts

    def bytes(self) -> bytes:
        return b"".join(data for _, data in self.parts())


def part10(transfer_syntax: str, data_set: bytes) -> bytes:
    return b"\0" * 128 + b"DICM" + file_meta(transfer_syntax) + data_set


def encapsulated(*fragments: bytes, offset_table: bytes = b"") -> bytes:
    body = item(offset_table) + b"".join(item(f + b"\0" * (len(f) % 2)) for f in fragments) + SEQUENCE_END
    return element(PIXEL_DATA, "OB", body, length=UNDEFINED)


def rle_frame(segments: list[bytes], offsets: list[int] | None = None) -> bytes:
    header_offsets = offsets or [64 + sum(len(s) for s in segments[:i]) for i in range(len(segments))]
    header = struct.pack("<16I", len(segments), *(header_offsets + [0] * (15 - len(header_offsets))))
    return header + b"".join(segments)


def flat_lossless_jpeg(rows: int, columns: int) -> bytes:
    """A valid 8-bit JPEG Lossless (process 14, predictor 1) codestream of a flat image: one Huffman code, "0",
    for a difference of 0, so the scan is rows x columns zero bits (rows x columns a multiple of 8)."""
    huffman_table = b"\x00" + bytes([1] + [0] * 15) + b"\x00"
    frame = struct.pack(">BHHB", 8, rows, columns, 1) + b"\x01\x11\x00"
    scan = b"\x01\x01\x00" + b"\x01\x00\x00"  # one component, tables 0; predictor 1, Se 0, point transform 0

    def segment(marker: int, body: bytes) -> bytes:
        return struct.pack(">HH", marker, len(body) + 2) + body
    return (b"\xff\xd8" + segment(0xFFC4, huffman_table) + segment(0xFFC3, frame) + segment(0xFFDA, scan)
            + bytes(rows * columns // 8) + b"\xff\xd9")


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


# --- Corpus --------------------------------------------------------------------------------------------

@dataclass
class Case:
    file: str
    what: str
    error: str | None
    data: bytes
    decoded: dict | None = None  # for the valid oddities (error None)
    page_error: str | None = None  # where it differs from the core's: the page and the CLI decode more


def pil_bytes(image: Image.Image, format_name: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, format_name, **options)
    return out.getvalue()


def gradient(mode: str, width: int, height: int) -> Image.Image:
    image = Image.new("L", (width, height))
    image.putdata([(x * 37 + y * 11) % 256 for y in range(height) for x in range(width)])
    return image.convert(mode)


def png_chunks(png: bytes) -> list[tuple[bytes, int, int]]:
    """(type, start, end) of each chunk, end exclusive, CRC included."""
    chunks, at = [], 8
    while at + 8 <= len(png):
        length, kind = struct.unpack(">I4s", png[at:at + 8])
        chunks.append((kind, at, at + 12 + length))
        at += 12 + length
    return chunks


def png_with_header(png: bytes, *, width: int | None = None, height: int | None = None,
                    bit_depth: int | None = None) -> bytes:
    data = bytearray(png)
    if width is not None:
        data[16:20] = struct.pack(">I", width)
    if height is not None:
        data[20:24] = struct.pack(">I", height)
    if bit_depth is not None:
        data[24] = bit_depth
    return bytes(data)


def jpeg_frame_at(jpeg: bytes) -> int:
    """Offset of the first start-of-frame marker (baseline or progressive)."""
    return min(i for i in (jpeg.find(b"\xff\xc0"), jpeg.find(b"\xff\xc2")) if i >= 0)


def with_bytes(data: bytes, at: int, patch: bytes) -> bytes:
    return data[:at] + patch + data[at + len(patch):]


def generic_cases() -> list[Case]:
    return [
        Case("empty.png", "a zero-byte file", "The file is empty.", b""),
        Case("notes.txt", "a text file", NOT_AN_IMAGE, b"Knee X-ray, left, 2024-03-01: joint space narrowing.\n"),
        Case("page.html", "an HTML page saved under an image name", NOT_AN_IMAGE,
             b"<!DOCTYPE html><html><head><title>x-ray.png</title></head><body><img src=x.png></body></html>\n"),
        Case("image.gif", "a GIF, which the core does not read", NOT_AN_IMAGE,
             b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,"
             b"\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"),
        Case("wrong-png-magic.png", "a PNG whose signature has one wrong byte", NOT_AN_IMAGE,
             b"\x89PNX\r\n\x1a\n" + pil_bytes(gradient("L", 8, 6), "PNG")[8:]),
        Case("dicom-preamble-only.dcm", "the 128 zero bytes of a DICOM preamble, cut before \"DICM\"", NOT_AN_IMAGE,
             b"\0" * 128),
    ]


def png_cases() -> list[Case]:
    png = pil_bytes(gradient("L", 8, 6), "PNG")
    chunks = png_chunks(png)
    idat = next((start, end) for kind, start, end in chunks if kind == b"IDAT")
    iend_start = next(start for kind, start, _ in chunks if kind == b"IEND")
    cases = [
        Case(f"png-truncated-{name}.png", f"a PNG cut {name.replace('-', ' ')}", truncated("PNG"), png[:keep])
        for name, keep in [("after-signature", 8), ("inside-header", 20), ("after-header", 33),
                           ("inside-image-data", (idat[0] + idat[1]) // 2), ("before-end-chunk", iend_start)]
    ]
    palette_png = pil_bytes(gradient("P", 8, 6), "PNG")
    cases += [
        Case("png-zero-width.png", "a PNG header declaring width 0", NO_PIXELS, png_with_header(png, width=0)),
        Case("png-width-2-31.png", "a PNG header declaring width 2^31", too_many_pixels(2**31, 6),
             png_with_header(png, width=2**31)),
        Case("png-bomb.png", "a 100-byte PNG declaring 100000 x 100000 pixels", too_many_pixels(100000, 100000),
             png_with_header(png, width=100000, height=100000)),
        Case("png-lying-data-length.png", "a PNG whose image data chunk claims 2 GB", truncated("PNG"),
             with_bytes(png, idat[0], struct.pack(">I", 0x7FFFFFF0))),
        Case("png-palette-16-bit.png", "a palette PNG declaring 16 bits per index (PNG allows at most 8)",
             undecodable("PNG", "bad ctype"), png_with_header(palette_png, bit_depth=16)),
        Case("png-palette-missing.png", "a palette PNG whose palette chunk is gone", undecodable("PNG", "no PLTE"),
             palette_png[:8] + b"".join(palette_png[start:end] for kind, start, end in png_chunks(palette_png)
                                        if kind != b"PLTE")),
        Case("png-bad-zlib.png", "a PNG whose compressed data has a corrupt header", undecodable("PNG", "bad zlib header"),
             with_bytes(png, idat[0] + 8, b"\x78\x02")),
        Case("png-empty-first-image-data.png",
             "a PNG whose first image data chunk is empty (stb_image copied it from a null buffer; found by fuzzing)",
             undecodable("PNG", "empty first image data chunk"),
             png[:idat[0]] + struct.pack(">I", 0) + b"IDAT" + struct.pack(">I", zlib.crc32(b"IDAT")) + png[idat[0]:]),
    ]
    return cases


def oversized_huffman_table(jpeg: bytes, declared_length: int | None = None) -> bytes:
    """The first Huffman table listing 16 x 255 codes, which overflowed stb_image 2.27 (found by fuzzing)."""
    at = jpeg.index(b"\xff\xc4")
    length = struct.unpack(">H", jpeg[at + 2:at + 4])[0] if declared_length is None else declared_length
    return jpeg[:at + 2] + struct.pack(">H", length) + jpeg[at + 4:at + 5] + b"\xff" * 16 + jpeg[at + 21:]


def jpeg_cases() -> list[Case]:
    jpeg = pil_bytes(gradient("L", 16, 16), "JPEG", quality=90)
    frame = jpeg_frame_at(jpeg)
    scan = jpeg.find(b"\xff\xda")
    cases = [
        Case(f"jpeg-truncated-{name}.jpg", f"a JPEG cut {name.replace('-', ' ')}", truncated("JPEG"), jpeg[:keep])
        for name, keep in [("after-start-marker", 3), ("inside-tables", frame - 20), ("inside-frame-header", frame + 6),
                           ("before-scan", scan), ("inside-scan", (scan + len(jpeg)) // 2)]
    ]
    height_at = frame + 5
    cases += [
        Case("jpeg-zero-width.jpg", "a JPEG frame header declaring width 0", NO_PIXELS,
             with_bytes(jpeg, height_at, struct.pack(">HH", 16, 0))),
        Case("jpeg-bomb.jpg", "a small JPEG declaring 65000 x 65000 pixels", too_many_pixels(65000, 65000),
             with_bytes(jpeg, height_at, struct.pack(">HH", 65000, 65000))),
        Case("jpeg-lying-segment-length.jpg", "a JPEG whose first segment claims to run past the end",
             truncated("JPEG"), with_bytes(jpeg, 4, b"\xff\xf0")),
        Case("jpeg-huffman-overflow.jpg", "a Huffman table listing 4080 codes (at most 256 fit)",
             undecodable("JPEG", "bad DHT header"), oversized_huffman_table(jpeg)),
        Case("jpeg-huffman-overflow-short-segment.jpg",
             "a Huffman table segment declaring 3 bytes, so that its table's counts come from what follows",
             undecodable("JPEG", "bad DHT header"), oversized_huffman_table(jpeg, declared_length=3)),
        Case("jpeg-undefined-huffman-table.jpg", "a scan using Huffman tables 1, which no DHT segment defines",
             undecodable("JPEG", "undefined Huffman table"), with_bytes(jpeg, scan + 6, b"\x11")),
        Case("jpeg-cmyk.jpg", "a CMYK JPEG (Adobe inverted), valid: the core converts it to RGB", None,
             pil_bytes(gradient("CMYK", 16, 16), "JPEG", quality=90),
             decoded={"width": 16, "height": 16, "channels": 3, "bit_depth": 8}),
    ]
    return cases


def bmp_cases() -> list[Case]:
    bmp = pil_bytes(gradient("RGB", 7, 5), "BMP")
    return [
        Case("bmp-truncated-header.bmp", "a BMP cut inside its info header", truncated("BMP"), bmp[:20]),
        Case("bmp-truncated-pixels.bmp", "a BMP cut inside its pixel rows", truncated("BMP"), bmp[:len(bmp) - 9]),
        Case("bmp-zero-width.bmp", "a BMP declaring width 0", NO_PIXELS, with_bytes(bmp, 18, struct.pack("<i", 0))),
        Case("bmp-width-2-31.bmp", "a BMP declaring width 2^31 (negative as a signed field)",
             undecodable("BMP", "negative width"), with_bytes(bmp, 18, struct.pack("<I", 2**31))),
        Case("bmp-height-2-31.bmp", "a BMP declaring height -2^31", too_many_pixels(7, 2**31),
             with_bytes(bmp, 22, struct.pack("<I", 2**31))),
        Case("bmp-lying-pixel-offset.bmp", "a BMP whose pixel offset points past the end", undecodable("BMP", "bad offset"),
             with_bytes(bmp, 10, struct.pack("<I", 1 << 30))),
    ]


def dicom_truncation_cases() -> list[Case]:
    """The control-like DICOM cut at each structural boundary."""
    parts = Dicom().parts()
    offsets, at = {}, 0
    for name, data in parts:
        offsets[name] = at
        at += len(data)
    whole = Dicom().bytes()
    meta_start = offsets["file meta"]
    syntax_value_at = meta_start + len(file_meta(EXPLICIT_LITTLE)) - len(padded(EXPLICIT_LITTLE, b"\0"))
    pixel_at = offsets["Pixel Data"]
    pixel_length = 20
    cuts = [
        ("after-preamble", offsets["file meta"], DICOM_TRUNCATED),
        ("inside-meta-header", meta_start + 5, DICOM_TRUNCATED),
        ("inside-transfer-syntax", syntax_value_at + 4,
         dicom_length_past_end((0x0002, 0x0010), len(padded(EXPLICIT_LITTLE, b"\0")), 4)),
        ("after-meta", offsets["SOP Class UID"], DICOM_TRUNCATED),
        ("inside-rows-element", offsets["Rows"] + 3, DICOM_TRUNCATED),
        ("before-pixel-data", pixel_at, "The DICOM file contains no image: it has no Pixel Data (it may be a report, "
                                        "a presentation state or a directory)."),
        ("inside-pixel-data-header", pixel_at + 10, DICOM_TRUNCATED),
        ("inside-pixel-data", pixel_at + 12 + 7, dicom_length_past_end(PIXEL_DATA, pixel_length, 7)),
        ("one-byte-short", len(whole) - 1, dicom_length_past_end(PIXEL_DATA, pixel_length, pixel_length - 1)),
    ]
    return [Case(f"dicom-truncated-{name}.dcm", f"a DICOM file cut {name.replace('-', ' ')}", error, whole[:keep])
            for name, keep, error in cuts]


def nested_sequences(depth: int) -> bytes:
    """An undefined-length sequence nested `depth` levels deep (Referenced Image Sequence)."""
    inner = b""
    for _ in range(depth):
        inner = element((0x0008, 0x1140), "SQ", item(inner, length=UNDEFINED) + ITEM_END + SEQUENCE_END,
                        length=UNDEFINED)
    return inner


def dicom_structure_cases() -> list[Case]:
    rows_tag, pixel_bytes = (0x0028, 0x0010), 20
    lying_rows = Dicom().bytes().replace(us(rows_tag, 4), element(rows_tag, "US", struct.pack("<H", 4), length=65000))
    lying_item_header = item(b"", length=100_000)
    lying_item = Dicom(extra=[element((0x0008, 0x1140), "SQ", lying_item_header + SEQUENCE_END,
                                      length=UNDEFINED)]).bytes()
    palette = Dicom(photometric="PALETTE COLOR", bits=16,
                    extra=[element((0x0028, 0x1101), "US", struct.pack("<HHH", 256, 0, 16)),
                           element((0x0028, 0x1201), "OW", bytes(512))])
    jpeg16 = pil_bytes(gradient("L", 16, 16), "JPEG", quality=90)
    bomb_data_set = (element((0x0028, 0x0010), "US", struct.pack("<H", 4))
                     + element((0x0009, 0x0010), "OB", b"\0" * 110_000_000))
    return [
        Case("dicom-no-pixel-data.dcm", "a DICOM file with image attributes but no Pixel Data",
             "The DICOM file contains no image: it has no Pixel Data (it may be a report, a presentation state or "
             "a directory).", Dicom().bytes()[:-len(element(PIXEL_DATA, "OB", b"\0" * pixel_bytes))]),
        Case("dicom-lying-rows-length.dcm", "a Rows element whose length field claims 65000 bytes",
             dicom_length_past_end(rows_tag, 65000, len(lying_rows) - lying_rows.index(b"\x28\x00\x10\x00US") - 8),
             lying_rows),
        Case("dicom-lying-pixel-length.dcm", "a Pixel Data element claiming 4 GB",
             dicom_length_past_end(PIXEL_DATA, 0xFFFFFFF0, pixel_bytes),
             Dicom(pixel_data=element(PIXEL_DATA, "OB", bytes(pixel_bytes), length=0xFFFFFFF0)).bytes()),
        Case("dicom-lying-sequence-item.dcm", "an item inside a sequence claiming more bytes than the file has",
             dicom_length_past_end((0xFFFE, 0xE000), 100_000,
                                   len(lying_item) - lying_item.index(lying_item_header) - len(lying_item_header)),
             lying_item),
        Case("dicom-endless-sequence.dcm", "an undefined-length sequence that never ends", DICOM_TRUNCATED,
             part10(EXPLICIT_LITTLE, element((0x0008, 0x1140), "SQ", item(b"", length=UNDEFINED), length=UNDEFINED))),
        Case("dicom-nested-too-deep.dcm", "sequences nested 200 levels deep",
             dicom_damaged("its sequences are nested too deeply"), Dicom(extra=[nested_sequences(200)]).bytes()),
        Case("dicom-undefined-length-text.dcm", "a text element with an undefined length",
             dicom_damaged("element (0008,0070) has an undefined length"),
             Dicom(extra=[element((0x0008, 0x0070), "UT", b"", length=UNDEFINED)]).bytes()),
        Case("dicom-bad-vr.dcm", "an element whose value representation is two digits",
             dicom_damaged("element (0008,0070) has no valid value representation"),
             Dicom(extra=[b"\x08\x00\x70\x00" + b"42" + b"\x02\x00" + b"AB"]).bytes()),
        Case("dicom-stray-delimiter.dcm", "an item delimiter outside any sequence",
             dicom_damaged("it has a stray (FFFE,E00D) delimiter"), Dicom(extra=[ITEM_END]).bytes()),
        Case("dicom-zero-rows.dcm", "Rows = 0", NO_PIXELS, Dicom(rows=0).bytes()),
        Case("dicom-bomb.dcm", "a tiny file declaring 65535 x 65535 pixels", too_many_pixels(65535, 65535),
             Dicom(rows=65535, columns=65535, pixel_data=element(PIXEL_DATA, "OB", bytes(pixel_bytes))).bytes()),
        Case("dicom-short-pixel-data.dcm", "Pixel Data holding fewer bytes than Rows x Columns",
             "The DICOM file is truncated: its pixel data holds 20 bytes, fewer than the 40 bytes of one 10 x 4 image.",
             Dicom(columns=10, pixel_data=element(PIXEL_DATA, "OB", bytes(20))).bytes()),
        Case("dicom-missing-rows.dcm", "pixel data without a Rows element",
             dicom_damaged("it has pixel data but lacks Rows, Columns or Bits Allocated"),
             Dicom().bytes().replace(us(rows_tag, 4), b"")),
        Case("dicom-32-bit.dcm", "32 bits allocated per sample",
             dicom_unsupported("stores 32 bits per sample (8 and 16 are supported)"), Dicom(bits=32).bytes()),
        Case("dicom-bits-stored-too-many.dcm", "Bits Stored 12 in Bits Allocated 8",
             dicom_damaged("its Bits Stored (12) and High Bit (11) do not fit in Bits Allocated (8)"),
             Dicom().bytes().replace(us((0x0028, 0x0101), 8), us((0x0028, 0x0101), 12))
             .replace(us((0x0028, 0x0102), 7), us((0x0028, 0x0102), 11))),
        Case("dicom-palette-16-bit.dcm", "a 16-bit PALETTE COLOR image",
             dicom_unsupported("uses the colour model PALETTE COLOR"), palette.bytes()),
        Case("dicom-rgb-one-sample.dcm", "RGB with one sample per pixel",
             dicom_damaged("its colour model RGB does not match 1 samples per pixel"),
             Dicom(photometric="RGB").bytes()),
        Case("dicom-ybr-uncompressed.dcm", "uncompressed YBR_FULL colour",
             dicom_unsupported("stores uncompressed colour as YBR_FULL instead of RGB"),
             Dicom(photometric="YBR_FULL", samples_per_pixel=3).bytes()),
        Case("dicom-jpeg-ls.dcm", "a JPEG-LS stream cut after its start marker",
             outside_codec_refusal("JPEG-LS Lossless", JPEG_LS_LOSSLESS),
             Dicom(transfer_syntax=JPEG_LS_LOSSLESS, pixel_data=encapsulated(b"\xff\xd8\xff\xf7")).bytes(),
             page_error=codec_failure("JPEG-LS Lossless")),
        Case("dicom-j2k-truncated.dcm", "a JPEG 2000 codestream cut inside its size marker",
             outside_codec_refusal("JPEG 2000 Lossless", JPEG_2000_LOSSLESS),
             Dicom(transfer_syntax=JPEG_2000_LOSSLESS,
                   pixel_data=encapsulated(b"\xff\x4f\xff\x51\x00\x29\x00\x00\x00\x00")).bytes(),
             page_error=codec_failure("JPEG 2000 Lossless")),
        Case("dicom-htj2k-truncated.dcm", "an HTJ2K codestream cut inside its size marker",
             outside_codec_refusal("High-Throughput JPEG 2000 Lossless", HTJ2K_LOSSLESS),
             Dicom(transfer_syntax=HTJ2K_LOSSLESS,
                   pixel_data=encapsulated(b"\xff\x4f\xff\x51\x00\x29\x00\x00\x00\x00")).bytes(),
             page_error=codec_failure("High-Throughput JPEG 2000 Lossless")),
        Case("dicom-jpeg-lossless-lying-fragment.dcm", "a JPEG Lossless fragment claiming more bytes than the file has",
             outside_codec_refusal("JPEG Lossless (first-order prediction)", JPEG_LOSSLESS_SV1),
             Dicom(transfer_syntax=JPEG_LOSSLESS_SV1,
                   pixel_data=element(PIXEL_DATA, "OB", item(b"") + item(bytes(10), length=5000),
                                      length=UNDEFINED)).bytes(),
             page_error=dicom_length_past_end((0xFFFE, 0xE000), 5000, 10)),
        Case("dicom-jpeg-lossless-size-mismatch.dcm", "an 8 x 8 JPEG Lossless frame in an 8 x 9 image",
             outside_codec_refusal("JPEG Lossless (first-order prediction)", JPEG_LOSSLESS_SV1),
             Dicom(rows=9, columns=8, transfer_syntax=JPEG_LOSSLESS_SV1,
                   pixel_data=encapsulated(flat_lossless_jpeg(8, 8))).bytes(),
             page_error="The DICOM file is damaged: its JPEG Lossless (first-order prediction) image is 8 x 8, but its "
                        "header says 8 x 9."),
        Case("dicom-unknown-syntax.dcm", "an unknown transfer syntax UID",
             dicom_unsupported("uses the unknown transfer syntax 1.2.3.4.5"),
             Dicom(transfer_syntax="1.2.3.4.5").bytes()),
        Case("dicom-native-undefined-length.dcm", "uncompressed Pixel Data with an undefined length",
             dicom_damaged("its Pixel Data is encapsulated although the transfer syntax is uncompressed"),
             Dicom(pixel_data=encapsulated(bytes(20))).bytes()),
        Case("dicom-jpeg-not-encapsulated.dcm", "JPEG transfer syntax with plain Pixel Data",
             dicom_damaged("its Pixel Data is not encapsulated although the transfer syntax is compressed"),
             Dicom(transfer_syntax=JPEG_BASELINE).bytes()),
        Case("dicom-jpeg-no-fragments.dcm", "encapsulated Pixel Data with only an offset table",
             dicom_damaged("its encapsulated pixel data has no fragments"),
             Dicom(transfer_syntax=JPEG_BASELINE, pixel_data=encapsulated()).bytes()),
        Case("dicom-jpeg-garbage.dcm", "a JPEG fragment that is not a JPEG",
             dicom_damaged("its compressed pixel data is not a JPEG stream"),
             Dicom(transfer_syntax=JPEG_BASELINE, pixel_data=encapsulated(b"not a jpeg")).bytes()),
        Case("dicom-jpeg-size-mismatch.dcm", "a 16 x 16 JPEG fragment in a 4 x 5 image",
             dicom_damaged("its embedded JPEG image is 16 x 16 with 1 channel(s), but its header says 5 x 4 with 1"),
             Dicom(transfer_syntax=JPEG_BASELINE, pixel_data=encapsulated(jpeg16)).bytes()),
        Case("dicom-jpeg-huffman-overflow.dcm", "an embedded JPEG whose Huffman table lists 4080 codes",
             "The DICOM file's embedded JPEG image could not be read. " + undecodable("JPEG", "bad DHT header"),
             Dicom(rows=16, columns=16, transfer_syntax=JPEG_BASELINE,
                   pixel_data=encapsulated(oversized_huffman_table(jpeg16))).bytes()),
        Case("dicom-jpeg-lying-fragment.dcm", "a fragment claiming more bytes than the file has",
             dicom_length_past_end((0xFFFE, 0xE000), 5000, 10),
             Dicom(transfer_syntax=JPEG_BASELINE,
                   pixel_data=element(PIXEL_DATA, "OB", item(b"") + item(bytes(10), length=5000),
                                      length=UNDEFINED)).bytes()),
        Case("dicom-rle-segment-count.dcm", "an RLE frame with 3 segments for a grey 8-bit image",
             dicom_damaged("its RLE frame has 3 segments instead of 1"),
             Dicom(transfer_syntax=RLE_LOSSLESS,
                   pixel_data=encapsulated(rle_frame([b"\x13" + bytes(20)] * 3))).bytes()),
        Case("dicom-rle-offset-outside.dcm", "an RLE segment offset pointing past the frame",
             dicom_damaged("its RLE segment offsets point outside the frame"),
             Dicom(transfer_syntax=RLE_LOSSLESS,
                   pixel_data=encapsulated(rle_frame([b"\x13" + bytes(20)], offsets=[100_000]))).bytes()),
        Case("dicom-rle-short-segment.dcm", "an RLE segment decoding to 5 of 20 pixels",
             dicom_damaged("an RLE segment holds fewer pixels than the image"),
             Dicom(transfer_syntax=RLE_LOSSLESS, pixel_data=encapsulated(rle_frame([b"\x04" + bytes(5)]))).bytes()),
        Case("dicom-rle-cut-literal.dcm", "an RLE literal run cut by the end of its segment",
             dicom_damaged("an RLE segment ends inside a literal run"),
             Dicom(transfer_syntax=RLE_LOSSLESS, pixel_data=encapsulated(rle_frame([b"\x13" + bytes(5)]))).bytes()),
        Case("dicom-deflate-garbage.dcm", "a deflated data set that is not deflate data",
             dicom_damaged("its deflated data set does not inflate"), part10(DEFLATED, b"\xff" * 64)),
        Case("dicom-deflate-bomb.dcm", "a 100 kB deflated data set that inflates to 110 MB",
             "The DICOM file's deflated data expands to more than 100.0 MB; the file is probably corrupt or a "
             "decompression bomb.",
             part10(DEFLATED, raw_deflate(bomb_data_set))),
    ]


def controls() -> list[tuple[str, bytes, dict]]:
    png = pil_bytes(gradient("L", 8, 6), "PNG")
    return [("control.png", png, {"width": 8, "height": 6, "channels": 1, "bit_depth": 8}),
            ("control.dcm", Dicom().bytes(), {"width": 5, "height": 4, "channels": 1, "bit_depth": 8})]


def all_cases() -> list[Case]:
    return (generic_cases() + png_cases() + jpeg_cases() + bmp_cases() + dicom_truncation_cases()
            + dicom_structure_cases())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder for the files and expected.json")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    cases = all_cases()
    names = [case.file for case in cases]
    assert len(names) == len(set(names)), "case file names must be unique"
    for case in cases:
        (args.out / case.file).write_bytes(case.data)
    control_entries = []
    for name, data, facts in controls():
        (args.out / name).write_bytes(data)
        control_entries.append({"file": name, **facts})
    expected = {"cases": [{"file": c.file, "what": c.what, "error": c.error,
                           **({"decoded": c.decoded} if c.decoded else {}),
                           **({"page_error": c.page_error} if c.page_error else {})} for c in cases],
                "controls": control_entries}
    (args.out / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    print(f"bad_inputs: {len(cases)} cases and {len(control_entries)} controls in {args.out}")


if __name__ == "__main__":
    main()
