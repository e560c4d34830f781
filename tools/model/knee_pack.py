"""The knee pack: train.py's prepared knees in a folder small enough to travel to a lent GPU machine.

train.py caches the C++ core's canonical knee crops as float16 grey planes in [0, 1] (about 100 KB a knee at
224 px); the pack stores each as an 8-bit grey JPEG (a few KB) beside its labels, so a run on a machine without
the datasets or the core (`train.py --pack DIR`) trains on the same crops. tools/model/gpu_run.py writes a pack
and measures, on validation, what the JPEG step changes.

  DIR/knees.npz   jpeg (uint8, every knee's JPEG bytes end to end), offsets [K+1], and per knee oa, kl, split,
                  source, row (the manifest row, as train.load_knees gives them)
  DIR/pack.json   input_size, JPEG quality, the preprocessing's mean and std, and where the crops came from
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

KNEES_FILE = "knees.npz"
META_FILE = "pack.json"
LABEL_FIELDS = ("oa", "kl", "split", "source", "row")


class PackError(ValueError):
    pass


def grey_bytes(planes):
    """float planes in [0, 1] as the 8-bit grey levels a JPEG stores"""
    return (np.clip(planes.astype(np.float32), 0.0, 1.0) * 255.0).round().astype(np.uint8)


def encode_jpeg(plane_u8, quality):
    buffer = io.BytesIO()
    # 4:4:4 is moot for one channel; optimize only shrinks the Huffman tables, the pixels are the same
    # no mode="L": Pillow 13 drops that argument, and a 2-D uint8 array is "L" anyway
    Image.fromarray(plane_u8).save(buffer, format="JPEG", quality=quality, optimize=True)
    return buffer.getvalue()


def decode_jpeg(data):
    return np.asarray(Image.open(io.BytesIO(data)).convert("L"))


def write_pack(folder, planes, labels, meta, quality):
    """Write planes [K,S,S] (grey in [0, 1]) with `labels` (the LABEL_FIELDS arrays, K each) and `meta`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    encoded = [encode_jpeg(plane, quality) for plane in grey_bytes(planes)]
    offsets = np.concatenate([[0], np.cumsum([len(e) for e in encoded])]).astype(np.int64)
    jpeg = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    np.savez(folder / KNEES_FILE, jpeg=jpeg, offsets=offsets, **{name: np.asarray(labels[name]) for name in LABEL_FIELDS})
    meta = {**meta, "input_size": int(planes.shape[-1]), "jpeg_quality": quality, "knees": int(len(planes)),
            "bytes": int(offsets[-1])}
    (folder / META_FILE).write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def read_pack(folder):
    """(planes float16 [K,S,S] in [0, 1], labels {LABEL_FIELDS: arrays}, meta) of a pack folder"""
    folder = Path(folder)
    missing = [name for name in (KNEES_FILE, META_FILE) if not (folder / name).is_file()]
    if missing:
        raise PackError(f"{folder} is not a knee pack: {', '.join(missing)} missing (tools/oac gpu-run pack writes one)")
    meta = json.loads((folder / META_FILE).read_text())
    with np.load(folder / KNEES_FILE, allow_pickle=False) as data:
        jpeg, offsets = data["jpeg"].tobytes(), data["offsets"]
        labels = {name: data[name] for name in LABEL_FIELDS}
    size = meta["input_size"]
    planes = np.empty((len(offsets) - 1, size, size), np.float16)
    for k in range(len(planes)):
        grey = decode_jpeg(jpeg[offsets[k]:offsets[k + 1]])
        if grey.shape != (size, size):
            raise PackError(f"{folder}: knee {k} decodes to {grey.shape}, the pack says {size} px")
        planes[k] = grey.astype(np.float32) / 255.0
    return planes, labels, meta
