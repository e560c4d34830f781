#!/usr/bin/python3
"""Train the knee-osteoarthritis InceptionV3 on CPU, from nsfwjs's Keras InceptionV3 weights.

One readable script, its configuration in one place (CONFIG below; command-line flags override it).
Every pixel comes from the C++ core's Python module (`oac_core.prepare`), so training sees exactly the
tensors the browser and the CLI compute. Augmentations run on those tensors and are chosen to break
the shortcuts the audit found between image source and label: contrast, gamma, blur, noise,
resolution, crop, rotation (up to 8 degrees) and flip; and, for the users' images, JPEG re-compression
and black margins (--aug-jpeg, --aug-margins).

Protocols:
  clean  train/val of models/data/split.csv (patient- and duplicate-grouped), the shipped model;
  seed   the original notebook's folders only: Osteoarthritis_Dataset/train to train, /Valid to select.

The run directory holds last.pt (resumable at any checkpoint), best.pt (best validation score),
train.log and history.json. Rerunning the same command resumes.

A run's configuration can live in a JSON file (`--config tools/model/runs/v3.json`: the Config fields below,
by name); flags given on the command line override it. `--init-from` takes a training checkpoint (.pt)
or an exported ONNX model (.onnx, imported by tools/model/import_onnx_weights.py).

usage: tools/oac train [--config FILE.json] [--protocol clean|seed] [--input-size 224] [--run NAME] ...
"""
import argparse
import csv
import datetime
import hashlib
import io
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from lib import core
from lib.git import file_at_commit, git
from lib.metrics import auc, quadratic_weighted_kappa
from lib.numeric import sigmoid, softmax
from lib.paths import MODEL_CARD, REPO_ROOT, datasets_dir
from model.inception import PRETRAINED_PATH, OAInceptionV3, mirror_averaged, pretrained_oa_model
from model.knee_pack import PackError, read_pack


@dataclass
class Config:
    protocol: str = "clean"
    input_size: int = 224
    run: str = ""                      # default: <protocol>-<input_size>
    epochs: int = 8
    batch_size: int = 32
    lr_backbone: float = 3e-4
    lr_heads: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    dropout: float = 0.4
    init: str = "nsfwjs"               # nsfwjs (converted Keras weights) or random
    init_from: str = ""                # a checkpoint (.pt) or exported model (.onnx) whose weights start this run;
                                       # "<commit>:<path>" takes the file as that commit has it
    split: str = "models/data/split.csv"  # manifest; rows whose split is neither train nor val are unused
    freeze_through: str = "mixed5"     # nsfwjs kept everything up to mixed5 from ImageNet; "none" trains all
    freeze_bn_stats: bool = False      # every BatchNorm in inference mode (statistics fixed; beta still trains)
    kl_loss_weight: float = 1.0
    kl_neighbour_smoothing: float = 0.0  # KL target mass moved to the neighbouring grade(s)
    aug_jpeg: float = 0.0              # fraction of samples re-compressed as JPEG (quality 40-95)
    aug_margins: float = 0.0           # fraction of samples given black margins (2-15% of the side, 1-4 sides)
    aug_negatives: float = 0.0         # fraction of samples turned into their negative (bone dark)
    aug_black_corners: float = 0.0     # fraction of samples turned by up to 8 degrees with black corners
    distil_from: str = ""              # a model (as init_from) whose mirror-averaged predictions on the training
                                       # knees become soft targets: flip averaging learned, not paid per inference
    distil_weight: float = 0.0         # share of the loss that follows those soft targets (the rest: the labels)
    channels_last: bool = True         # NHWC memory format for model and input (faster on CPU)
    mixed_precision: bool = True       # on a GPU the training step runs under bf16 autocast; the CPU stays fp32
    patience: int = 3                  # epochs without a better validation score
    eval_every_steps: int = 0          # 0: once per epoch
    checkpoint_every_steps: int = 50
    max_minutes: float = 0.0           # 0: no time budget
    train_subset: int = 0              # 0: all; >0: a seeded subset (for ablations)
    val_subset: int = 0                # likewise for validation
    ood_components: int = 128
    ood_fit_images: int = 2000
    seed: int = 1234
    threads: int = 2
    core: str = ""                     # "": the build tree's oac_core and the working tree's card; a git commit:
                                       # that commit's core (built once into build/train-core/) and card


oac_core = None  # the C++ core's Python module, imported by load_core()


def parse_bool(text):
    if isinstance(text, bool):
        return text
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, not {text!r}")


def read_config_file(path):
    """A run config: a JSON object whose keys are Config fields (a "comment" key is allowed)."""
    values = json.loads(Path(path).read_text())
    values.pop("comment", None)
    names = {f.name: f for f in fields(Config)}
    unknown = sorted(set(values) - set(names))
    if unknown:
        sys.exit(f"train: {path}: unknown config keys {unknown}; known: {sorted(names)}")
    for name, value in values.items():
        expected = type(names[name].default)
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            values[name] = float(value)
        elif not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            sys.exit(f"train: {path}: {name} must be {expected.__name__}, got {value!r}")
    return values


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="JSON file of Config values (flags override it)")
    for f in fields(Config):
        kind = parse_bool if isinstance(f.default, bool) else type(f.default)
        parser.add_argument("--" + f.name.replace("_", "-"), type=kind, default=None,
                            help=f"default {f.default!r}")
    parser.add_argument("--datasets", default=str(datasets_dir()))
    parser.add_argument("--pack", help="train on this knee pack (tools/model/knee_pack.py) instead of preparing the "
                                       "knees with the core: neither the datasets nor the core are needed")
    parser.add_argument("--fresh", action="store_true", help="ignore an existing last.pt and start over")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto: a CUDA GPU (one per rank) when there is one, else the CPU")
    parser.add_argument("--work", help="folder for train/<run>/ and cache/ (default build/)")
    parser.add_argument("--nproc", type=int, default=1,
                        help="start this many DDP ranks on this machine (as torchrun --standalone --nproc_per_node does)")
    parser.add_argument("--dump-rank-weights", metavar="DIR", help=argparse.SUPPRESS)  # tests: each rank's final weights
    args = parser.parse_args(argv)
    values = asdict(Config())
    if args.config:
        values.update(read_config_file(args.config))
    values.update({f.name: getattr(args, f.name) for f in fields(Config) if getattr(args, f.name) is not None})
    config = Config(**values)
    if not config.run:
        config.run = f"{config.protocol}-{config.input_size}"
    return config, Path(args.datasets), args.fresh, args.config, args


# ----------------------------------------------------------------------------------------------
# Data: the split manifest, knees prepared once by the C++ core, cached as float16 grey planes.

@dataclass
class Knees:
    planes: np.ndarray     # [K, S, S] float16, grey in [0, 1] (the core's tensor channel 0, un-normalised)
    oa: np.ndarray         # [K] float32: 1, 0, or nan when unknown
    kl: np.ndarray         # [K] int64: 0-4, or -1 when unknown
    split: np.ndarray      # [K] str
    source: np.ndarray     # [K] str
    row: np.ndarray        # [K] index into the manifest


def protocol_labels(row, protocol):
    """(split, oa label, kl grade) of a manifest row under a protocol; split None = not used."""
    kl = int(row["kl_grade"]) if row["kl_grade"] != "" else -1
    if protocol == "clean":
        oa = float(row["label"]) if row["label"] != "" else math.nan
        return row["split"], oa, kl
    # Seed protocol: only what the original folders say. The folder label means KL>=2 for OAI images,
    # but the second collection files its KL1 ("Doubtful") under Osteoarthritis; its file names carry
    # the grade, so the radiographic definition (KL>=2) is applied to them from the names alone.
    seed_split = {"train": "train", "Valid": "val"}.get(row["seed_split"])
    if seed_split is None:
        return None, math.nan, -1
    if row["source"] == "kneexray":
        return seed_split, float(kl >= 2), kl
    return seed_split, float(row["seed_label"] == "Osteoarthritis"), -1


def build_pinned_core(commit):
    """Build the Python module of `commit`'s C++ core into build/train-core/<commit>/ once, from `git archive`,
    so that edits to wasm/ in the working tree never change the tensors a run trains on."""
    folder = REPO_ROOT / "build" / "train-core" / commit
    module_dir = folder / "build" / "python"
    if not list(module_dir.glob("oac_core*.so")):
        log(f"building the core of {commit[:12]} into {folder.relative_to(REPO_ROOT)}")
        source = folder / "src"
        shutil.rmtree(source, ignore_errors=True)
        source.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", commit], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
        subprocess.run(["cmake", "-S", str(source), "-B", str(folder / "build"), "-DCMAKE_BUILD_TYPE=Release",
                        "-DOAC_BUILD_WASM=OFF"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["cmake", "--build", str(folder / "build"), "-j2", "--target", "oac_core_python"], check=True,
                       stdout=subprocess.DEVNULL)
    return module_dir


def load_core(config):
    """Import oac_core (the build tree's, or the one pinned by config.core) and return the card text it reads."""
    global oac_core
    if config.core:
        commit = git("rev-parse", "--verify", config.core + "^{commit}").strip()
        module_dir = build_pinned_core(commit)
        module = core.load_core(module_dir)
        card_text = file_at_commit(commit, MODEL_CARD.relative_to(REPO_ROOT).as_posix()).decode()
        described = f"core of {commit[:12]} ({module_dir.relative_to(REPO_ROOT)}), card from {commit[:12]}"
    else:
        module = core.load_core()
        card_text = MODEL_CARD.read_text()
        described = f"core {module.__file__}, card {MODEL_CARD.relative_to(REPO_ROOT)} (working tree)"
    oac_core = module
    return card_text, described


def core_build_id():
    """sha256 of the loaded oac_core module file: prepared tensors are only reused with the core that made them."""
    return hashlib.sha256(Path(oac_core.__file__).read_bytes()).hexdigest()


def load_knees(config, datasets, spec, card_text, cache_dir):
    split = REPO_ROOT / config.split
    rows = list(csv.DictReader(open(split, newline="")))
    # Only rows the protocol trains or validates on are prepared: test rows are never even decoded.
    used = [i for i, row in enumerate(rows) if protocol_labels(row, config.protocol)[0] in ("train", "val")]
    # the key covers everything that shapes a tensor: the core's build, the card's whole preprocess section
    # (as the core reads it, e.g. a localisation template) with the run's input size, and the manifest
    preprocess = json.loads(card_text)["preprocess"]
    key_text = json.dumps({"spec": asdict(spec_as_dict(spec)), "preprocess": preprocess, "protocol": config.protocol,
                           "core": core_build_id()}, sort_keys=True) + split.read_text()
    key = hashlib.sha256(key_text.encode()).hexdigest()[:16]
    cache = cache_dir / f"knees-{config.input_size}-{key}.npz"
    if cache.exists():
        data = np.load(cache, allow_pickle=False)
        planes, row_index = data["planes"], data["row"]
    else:
        log(f"preparing {len(used)} images with the core {Path(oac_core.__file__).name} -> {cache.name}")
        planes, row_index, refused = [], [], []
        mean, std = spec.preprocess.mean[0], spec.preprocess.std[0]
        for n, i in enumerate(used):
            try:
                knees = oac_core.prepare((datasets / rows[i]["path"]).read_bytes(), spec)
            except ValueError as error:  # the core refuses an image: left out, and said so
                refused.append(rows[i]["path"])
                if len(refused) <= 5:
                    log(f"the core refused {rows[i]['path']}: {error}")
                continue
            for knee in knees:
                planes.append((knee["tensor"][0] * std + mean).astype(np.float16))
                row_index.append(i)
            if n % 500 == 0:
                log(f"prepared {n}/{len(used)} images")
        if refused:
            log(f"WARNING: the core refused {len(refused)} of {len(used)} train/val images; they are left out")
        planes, row_index = np.stack(planes), np.array(row_index)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(str(cache) + ".tmp.npz", planes=planes, row=row_index)
        os.replace(str(cache) + ".tmp.npz", cache)
    labels = [protocol_labels(rows[i], config.protocol) for i in row_index]
    return Knees(
        planes=planes,
        oa=np.array([l[1] for l in labels], dtype=np.float32),
        kl=np.array([l[2] for l in labels], dtype=np.int64),
        split=np.array([l[0] or "" for l in labels]),
        source=np.array([rows[i]["source"] for i in row_index]),
        row=row_index,
    )


def prepared_knees(config, datasets, cache_dir):
    """(Knees, the core's spec): the knees prepared by the core that `config` pins, or read from cache_dir"""
    card_text, core_described = load_core(config)
    spec = oac_core.parse_model_card(card_text)
    spec.preprocess.input_size = config.input_size
    log(f"preprocessing: {core_described}")
    return load_knees(config, datasets, spec, card_text, cache_dir), spec


def knees_from_pack(folder, config):
    """(Knees, a stand-in for the core's spec, a description) from a knee pack. Training reads only the spec's
    preprocessing mean and std, which the pack keeps; its crops must be the ones this config would prepare."""
    try:
        planes, labels, meta = read_pack(folder)
    except PackError as error:
        sys.exit(f"train: {error}")
    wanted = {"input_size": config.input_size, "protocol": config.protocol, "split": config.split,
              "core": config.core or meta.get("core")}
    differing = {k: (meta.get(k), v) for k, v in wanted.items() if meta.get(k) != v}
    if differing:
        sys.exit(f"train: the pack {folder} was made for another run: " +
                 ", ".join(f"{k} is {have!r} in the pack, {want!r} in the config" for k, (have, want) in differing.items()))
    preprocess = SimpleNamespace(mean=meta["mean"], std=meta["std"], input_size=meta["input_size"])
    knees = Knees(planes=planes, oa=labels["oa"], kl=labels["kl"], split=labels["split"], source=labels["source"],
                  row=labels["row"])
    described = (f"knee pack {folder} ({meta['knees']} knees as JPEG quality {meta['jpeg_quality']}, "
                 f"core {str(meta['core'])[:12]})")
    return knees, SimpleNamespace(preprocess=preprocess), described


@dataclass
class SpecSummary:
    input_size: int
    mean: list
    std: list
    window: list
    border_tolerance: float
    border_max_fraction: float
    bilateral_min_aspect: float


def spec_as_dict(spec):
    p = spec.preprocess
    return SpecSummary(p.input_size, list(p.mean), list(p.std), list(p.window_percentiles),
                       p.border_tolerance, p.border_max_fraction, p.bilateral_min_aspect)


# ----------------------------------------------------------------------------------------------
# Augmentation on batches of grey planes in [0, 1]; per-sample parameters, vectorised.

def augment(x, gen, jpeg=0.0, margins=0.0, negatives=0.0, black_corners=0.0):
    """Augmented copy of x [n,1,S,S] (grey in [0,1]); every draw comes from `gen`, in a fixed order.

    jpeg: fraction of samples re-compressed as 8-bit JPEG at quality 40-95; margins: fraction given black
    margins; negatives: fraction turned into their negative; black_corners: fraction turned by up to 8 degrees
    with black corners. Each is drawn after the older augmentations, so with 0 the older draws are unchanged."""
    n, _, size, _ = x.shape
    # the draws are made where `gen` lives, so a batch on a GPU is augmented there (x must be on gen's device)
    device = gen.device
    rand = lambda *shape: torch.rand(*shape, generator=gen, device=device)
    u = lambda lo, hi: lo + (hi - lo) * rand(n)

    # geometry: zoom (crop), aspect, shift, rotation, horizontal flip (left and right knees mirror)
    zoom, aspect, angle = u(0.78, 1.0), u(0.9, 1.1), u(-0.14, 0.14)
    flip = torch.where(rand(n) < 0.5, -1.0, 1.0)
    sx, sy = zoom * aspect.sqrt() * flip, zoom / aspect.sqrt()
    theta = torch.stack([
        torch.stack([sx * angle.cos(), -sy * angle.sin(), u(-0.08, 0.08)], 1),
        torch.stack([sx * angle.sin(), sy * angle.cos(), u(-0.08, 0.08)], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    # resolution: the second collection's knees are upsampled from ~160 px, the OAI crops are native;
    # degrading half of every batch to a random lower resolution hides that difference.
    low = rand(n) < 0.5
    if low.any():
        side = int(size * float(u(0.4, 0.9)[0]))
        degraded = F.interpolate(F.interpolate(x[low], size=(side, side), mode="area"),
                                 size=(size, size), mode="bilinear", align_corners=False)
        x = x.clone()
        x[low] = degraded

    # blur with a per-sample Gaussian (sigma 0 means identity)
    sigma = torch.where(rand(n) < 0.3, u(0.4, 1.3), torch.zeros(n, device=device))
    taps = torch.arange(-3, 4, dtype=torch.float32, device=device)
    kernel = torch.exp(-(taps[None] ** 2) / (2 * sigma.clamp(min=1e-3)[:, None] ** 2))
    kernel = kernel / kernel.sum(1, keepdim=True)
    x = x.transpose(0, 1)  # samples as channels for a grouped convolution
    x = F.conv2d(F.pad(x, (3, 3, 0, 0), mode="reflect"), kernel[:, None, None, :], groups=n)
    x = F.conv2d(F.pad(x, (0, 0, 3, 3), mode="reflect"), kernel[:, None, :, None], groups=n)
    x = x.transpose(0, 1)

    # photometric: gamma, contrast, brightness, sensor noise
    view = lambda t: t.view(n, 1, 1, 1)
    x = x.clamp(1e-4, 1.0) ** view(torch.exp(u(-0.4, 0.4)))
    x = (x - 0.5) * view(u(0.75, 1.3)) + 0.5 + view(u(-0.08, 0.08))
    x = x + torch.randn(x.shape, generator=gen, device=device) * view(u(0.0, 0.03))
    x = x.clamp(0.0, 1.0)

    # black margins (scanner borders, letterboxing, cropped film edges the core did not remove):
    # each chosen sample gets 1-4 sides blacked out, each 2-15% of the side
    if margins > 0:
        chosen = rand(n) < margins
        width = (0.02 + 0.13 * rand(n, 4)) * size            # [n, 4]: left, right, top, bottom
        sides = rand(n, 4) < 0.5
        one_side = torch.randint(0, 4, (n,), generator=gen, device=device)
        sides[torch.arange(n, device=device), one_side] = True  # at least one side
        width = torch.where(sides & chosen[:, None], width.round(), torch.zeros(n, 4, device=device))
        idx = torch.arange(size, dtype=torch.float32, device=device)
        cols = (idx[None] < width[:, 0:1]) | (idx[None] >= size - width[:, 1:2])  # [n, S]
        rows = (idx[None] < width[:, 2:3]) | (idx[None] >= size - width[:, 3:4])
        x = x.masked_fill((rows[:, :, None] | cols[:, None, :])[:, None], 0.0)

    # JPEG re-compression of the 8-bit plane (phone photos and viewer exports of the users' images)
    if jpeg > 0:
        chosen = rand(n) < jpeg
        quality = torch.randint(40, 96, (n,), generator=gen, device=device)
        if chosen.any():
            x = x.clone()
            for i in chosen.nonzero().flatten().tolist():
                plane = (x[i, 0] * 255.0).round().to(torch.uint8).cpu().numpy()
                buffer = io.BytesIO()
                Image.fromarray(plane).save(buffer, format="JPEG", quality=int(quality[i]))
                decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("L"), dtype=np.float32)
                x[i, 0] = torch.from_numpy(decoded / 255.0).to(x.device)

    # negatives the core does not turn back (its polarity rule misses about one in seventy): the percentile
    # window of a negative is the negative of the window, so 1 - x is exactly the crop the model then sees
    if negatives > 0:
        chosen = (rand(n) < negatives).view(n, 1, 1, 1)
        x = torch.where(chosen, 1.0 - x, x)

    # a picture turned in a viewer before export: the whole crop rotated about its centre, the corners it
    # uncovers black (the geometry above continues the film instead, so the model never saw such corners)
    if black_corners > 0:
        chosen = (rand(n) < black_corners).view(n, 1, 1, 1)
        angle, still = u(-0.14, 0.14), torch.zeros(n, device=device)
        turn = torch.stack([torch.stack([angle.cos(), -angle.sin(), still], 1),
                            torch.stack([angle.sin(), angle.cos(), still], 1)], 1)
        grid = F.affine_grid(turn, list(x.shape), align_corners=False)
        turned = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        x = torch.where(chosen, turned, x)
    return x


def to_model_input(planes, spec):
    p = spec.preprocess
    channels = [(planes - p.mean[c]) / p.std[c] for c in range(3)]
    return torch.cat(channels, dim=1)


# ----------------------------------------------------------------------------------------------

LOG_FILE = None
IS_MAIN = True  # under torchrun only rank 0 logs


def log(message):
    if not IS_MAIN:
        return
    line = f"{time.strftime('%H:%M:%S')} {message}"
    print(line, flush=True)
    if LOG_FILE:
        with open(LOG_FILE, "a") as f:
            f.write(line + "\n")


def class_weights(knees, train_mask):
    oa = knees.oa[train_mask]
    oa = oa[~np.isnan(oa)]
    pos_weight = float((oa == 0).sum() / max(1, (oa == 1).sum()))
    kl = knees.kl[train_mask]
    counts = np.bincount(kl[kl >= 0], minlength=5).astype(np.float64)
    # square-root inverse frequency: rare KL4 is boosted without letting a few images dominate
    kl_weight = np.sqrt(counts.sum() / (5 * np.maximum(counts, 1)))
    return torch.tensor(pos_weight), torch.tensor(kl_weight, dtype=torch.float32)


def neighbour_smoothed_targets(kl, smoothing, grades=5):
    """One-hot KL targets with `smoothing` of the mass moved to the adjacent grade(s), split evenly."""
    target = F.one_hot(kl, grades).float()
    if smoothing <= 0:
        return target
    below = F.one_hot((kl - 1).clamp(min=0), grades).float() * (kl > 0)[:, None]
    above = F.one_hot((kl + 1).clamp(max=grades - 1), grades).float() * (kl < grades - 1)[:, None]
    neighbours = below + above
    return target * (1 - smoothing) + smoothing * neighbours / neighbours.sum(1, keepdim=True)


def distillation_loss(out, oa_probability, kl_probabilities, kl_loss_weight):
    """Cross-entropy of the outputs against a teacher's probabilities (P(OA), and the five KL grades)."""
    loss = F.binary_cross_entropy_with_logits(out["oa_logit"], oa_probability)
    return loss + kl_loss_weight * -(kl_probabilities * F.log_softmax(out["kl_logits"], dim=1)).sum(1).mean()


def losses(out, oa, kl, pos_weight, kl_weight, kl_loss_weight, kl_smoothing=0.0):
    known_oa = ~torch.isnan(oa)
    loss = out["oa_logit"].sum() * 0.0
    if known_oa.any():
        loss = loss + F.binary_cross_entropy_with_logits(out["oa_logit"][known_oa], oa[known_oa], pos_weight=pos_weight)
    known_kl = kl >= 0
    if known_kl.any():
        if kl_smoothing > 0:
            # class-weighted mean like F.cross_entropy(weight=...): sum_i w[y_i] CE_i / sum_i w[y_i]
            target = neighbour_smoothed_targets(kl[known_kl], kl_smoothing)
            per_sample = -(target * F.log_softmax(out["kl_logits"][known_kl], dim=1)).sum(1)
            w = kl_weight[kl[known_kl]]
            loss = loss + kl_loss_weight * (w * per_sample).sum() / w.sum()
        else:
            loss = loss + kl_loss_weight * F.cross_entropy(out["kl_logits"][known_kl], kl[known_kl], weight=kl_weight)
    return loss


@torch.no_grad()
def predict(model, planes, spec, batch_size=64, mirror_average=False):
    """The network's outputs for planes [n,S,S]; with mirror_average, as the exported graph of
    `tools/oac export --mirror-average` gives them (inception.mirror_averaged)."""
    model.eval()
    forward = (lambda x: mirror_averaged(model, x)) if mirror_average else model
    device = next(model.parameters()).device
    outputs = {"oa_logit": [], "kl_logits": [], "features": []}
    for start in range(0, len(planes), batch_size):
        x = torch.from_numpy(planes[start:start + batch_size].astype(np.float32))[:, None]
        out = forward(to_model_input(x, spec).to(device).contiguous(memory_format=memory_format(model)))
        for k in outputs:
            outputs[k].append(out[k].cpu())
    return {k: torch.cat(v).numpy() for k, v in outputs.items()}


def validation_score(model, knees, spec):
    mask = knees.split == "val"
    out = predict(model, knees.planes[mask], spec)
    return scores_of(out["oa_logit"], out["kl_logits"], knees.oa[mask], knees.kl[mask])


def scores_of(oa_logit, kl_logits, oa, kl):
    """Validation AUC (OA), QWK and accuracy of the argmax KL grade, and the score that selects (AUC + QWK)."""
    known = ~np.isnan(oa)
    oa_auc = auc(oa[known], oa_logit[known])
    graded = kl >= 0
    kl_pred = kl_logits.argmax(1)
    kappa = quadratic_weighted_kappa(kl[graded], kl_pred[graded], 5) if graded.any() else 0.0
    kl_acc = float((kl_pred[graded] == kl[graded]).mean()) if graded.any() else 0.0
    return {"auc": float(oa_auc), "qwk": float(kappa), "kl_acc": kl_acc, "score": float(oa_auc + kappa)}


def mirror_averaged_probabilities(model, planes, spec):
    """P(OA) and the KL grade probabilities of `model` on planes [n,S,S], each the mean of the knee as it is and
    mirrored left to right (the flip averaging that scored best on validation in models/head-study.md)."""
    views = [predict(model, planes, spec), predict(model, np.ascontiguousarray(planes[:, :, ::-1]), spec)]
    oa = np.mean([sigmoid(view["oa_logit"]) for view in views], axis=0)
    kl = np.mean([softmax(view["kl_logits"]) for view in views], axis=0)
    return oa.astype(np.float32), kl.astype(np.float32)


def teacher_targets(config, knees, train_idx, spec, run_dir, ranks):
    """The distillation targets for every knee (NaN outside train_idx), computed once by rank 0 and kept in the
    run folder, so a resumed run and the other ranks read the same ones."""
    cache = run_dir / "teacher-targets.pt"
    if ranks.main and not cache.exists():
        teacher, described = model_from(config.distil_from, config)
        if config.channels_last:
            teacher = teacher.to(memory_format=torch.channels_last)
        log(f"distillation: mirror-averaged predictions of {described} on {len(train_idx)} training knees")
        oa = np.full(len(knees.split), np.nan, np.float32)
        kl = np.full((len(knees.split), 5), np.nan, np.float32)
        oa[train_idx], kl[train_idx] = mirror_averaged_probabilities(teacher, knees.planes[train_idx], spec)
        torch.save({"source": described, "oa": torch.from_numpy(oa), "kl": torch.from_numpy(kl)},
                   str(cache) + ".tmp")
        os.replace(str(cache) + ".tmp", cache)
    ranks.barrier()
    targets = torch.load(cache, map_location="cpu")
    return targets["oa"].to(ranks.device), targets["kl"].to(ranks.device)


def memory_format(model):
    weight = next(p for p in model.parameters() if p.dim() == 4)  # the first convolution's
    return torch.channels_last if weight.is_contiguous(memory_format=torch.channels_last) and \
        not weight.is_contiguous() else torch.contiguous_format


def set_train_mode(model, freeze_bn_stats):
    """model.train(), with every BatchNorm kept in inference mode when freeze_bn_stats (frozen layers'
    BatchNorms stay in inference mode anyway, see InceptionV3Backbone.train)."""
    model.train()
    if freeze_bn_stats:
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eval()


def committed_file(spec):
    """The file `<commit>:<path>` names, written once from git into build/init/, so a run can start from a model
    the repository has since replaced (the shipped model's reference export is overwritten by each release)."""
    commit, _, path = spec.partition(":")
    commit = git("rev-parse", "--verify", commit + "^{commit}").strip()
    copy = REPO_ROOT / "build" / "init" / commit / path
    if not copy.exists():
        copy.parent.mkdir(parents=True, exist_ok=True)
        data = file_at_commit(commit, path)
        copy.with_name(copy.name + ".tmp").write_bytes(data)
        os.replace(copy.with_name(copy.name + ".tmp"), copy)
    return copy


def load_init_weights(path):
    """An OAInceptionV3 state dict from a training checkpoint (.pt) or an exported ONNX model (.onnx)."""
    if path.suffix == ".onnx":
        from model.import_onnx_weights import onnx_state_dict
        state, info = onnx_state_dict(path)
        return state, f"{path} (ONNX, sha256 {info['sha256'][:16]}, imported by tools/model/import_onnx_weights.py)"
    return torch.load(path, map_location="cpu")["model"], str(path)


def model_from(source, config):
    """An OAInceptionV3 with the weights of `source` (a path in the repository, or "<commit>:<path>"), and a
    description of where they came from."""
    model = OAInceptionV3(dropout=config.dropout)
    state, described = load_init_weights(committed_file(source) if ":" in source else REPO_ROOT / source)
    model.load_state_dict(state)
    return model, described


def build_model(config):
    freeze = None if config.freeze_through == "none" else config.freeze_through
    if config.init_from:
        # the init weights replace every tensor, so the nsfwjs file is not needed; freezing still applies
        model, described = model_from(config.init_from, config)
        if freeze is not None:
            model.backbone.freeze_through(freeze)
        log(f"weights from {described}")
    elif config.init == "nsfwjs":
        model = pretrained_oa_model(config.dropout, PRETRAINED_PATH, freeze_through=freeze)
    elif config.init == "random":
        model = OAInceptionV3(dropout=config.dropout)
    else:
        sys.exit(f"train: unknown --init {config.init!r}; use nsfwjs or random")
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def fit_ood(model, knees, spec, config):
    """The OOD gate of tools/model/export_onnx.py (OodGate): Mahalanobis distance in the top principal subspace of
    training-knee features, plus the feature energy outside that subspace."""
    rng = np.random.default_rng(config.seed)
    train = np.flatnonzero(knees.split == "train")
    pick = rng.choice(train, size=min(config.ood_fit_images, len(train)), replace=False)
    features = predict(model, knees.planes[np.sort(pick)], spec)["features"].astype(np.float64)
    mean = features.mean(0)
    centred = features - mean
    eigval, eigvec = np.linalg.eigh(np.cov(centred, rowvar=False))
    top = np.argsort(eigval)[::-1][:config.ood_components]
    kept = eigval[top] + 1e-6
    # Noise and other non-radiographs barely move the top components; they show up outside the subspace.
    # That energy is scaled so its mean over the fitting knees equals k, the subspace term's mean.
    outside = (centred ** 2).sum(1) - ((centred @ eigvec[:, top]) ** 2).sum(1)
    residual_scale = len(top) / outside.mean()
    return {"mean": torch.tensor(mean, dtype=torch.float32),
            "projection": torch.tensor(eigvec[:, top] / np.sqrt(kept), dtype=torch.float32),
            "component_weights": torch.tensor(1.0 - residual_scale * kept, dtype=torch.float32),
            "residual_scale": float(residual_scale),
            "fit_images": int(len(pick))}


class Ranks:
    """One process, or one of `world` under torchrun (DistributedDataParallel): gloo on CPU, nccl on GPUs.

    Every rank draws the same batch and the same augmentations and trains on its shard of the batch
    (DDP averages the gradients), so the data a step sees does not depend on the number of ranks.
    Rank 0 alone logs, validates, and writes checkpoints and results; the others follow its decisions."""

    def __init__(self, device_choice):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        use_cuda = device_choice == "cuda" or (device_choice == "auto" and torch.cuda.is_available())
        self.device = torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")
        if use_cuda:
            torch.cuda.set_device(self.device)
        if self.world > 1:
            torch.distributed.init_process_group("nccl" if use_cuda else "gloo", timeout=datetime.timedelta(hours=2))
            self.rank, self.world = torch.distributed.get_rank(), torch.distributed.get_world_size()

    @property
    def main(self):
        return self.rank == 0

    def barrier(self):
        if self.world > 1:
            torch.distributed.barrier()

    def from_main(self, value):
        """rank 0's value of a picklable object, on every rank"""
        if self.world == 1:
            return value
        box = [value]
        torch.distributed.broadcast_object_list(box, src=0, device=self.device if self.device.type == "cuda" else None)
        return box[0]

    def shard(self, count):
        """this rank's slice of a batch of `count` samples (contiguous, sizes differing by at most one)"""
        bounds = np.linspace(0, count, self.world + 1).round().astype(int)
        return slice(bounds[self.rank], bounds[self.rank + 1])

    def mean(self, value):
        if self.world == 1:
            return float(value)
        t = torch.tensor([float(value)], device=self.device)
        torch.distributed.all_reduce(t)
        return float(t) / self.world

    def max_parameter_difference(self, model):
        """max |rank r's - rank 0's| over every parameter (0.0 when the ranks agree exactly); BatchNorm statistics
        trained in batch mode are each rank's own (DDP copies rank 0's into every forward; rank 0's are saved)"""
        if self.world == 1:
            return 0.0
        tensors = [p.detach() for p in model.parameters()]
        flat = torch.cat([t.reshape(-1) for t in tensors]).float()
        reference = flat.clone()
        torch.distributed.broadcast(reference, 0)
        difference = (flat - reference).abs().max().reshape(1)
        torch.distributed.all_reduce(difference, op=torch.distributed.ReduceOp.MAX)
        return float(difference)

    def finish(self):
        """Leave the process group and, under DDP, end this rank's process at once. Torch 1.13 can deadlock when
        the interpreter's teardown destroys DDP's Reducer: the destructor holds the GIL while it waits for a gloo
        worker thread that needs the GIL to free a tensor (seen as a rank that never exits). Everything the run
        writes is closed by now, so skipping the teardown loses nothing."""
        if self.world > 1:
            torch.distributed.destroy_process_group()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)


def work_folder(options):
    """--work, where train/<run>/ and cache/ go"""
    return Path(options.work).resolve() if options.work else REPO_ROOT / "build"


def launch_ranks(nproc, argv):
    """Run this script as `nproc` DDP ranks on this machine, the environment torchrun would give them, without
    torchrun's elastic agent (Debian's torch 1.13 agent fails under Python 3.11 unless given --redirects 1 --tee 1).
    One rank failing stops the others; SIGTERM/SIGINT are passed on, so a killed run stops every rank."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    processes = []
    for rank in range(nproc):
        env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": str(nproc),
               "RANK": str(rank), "LOCAL_RANK": str(rank), "LOCAL_WORLD_SIZE": str(nproc)}
        processes.append(subprocess.Popen([sys.executable, str(Path(__file__).resolve()), *argv], env=env))

    def stop(signum, _frame):
        for process in processes:
            if process.poll() is None:
                process.send_signal(signum)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    codes = {}
    while len(codes) < nproc:
        for rank, process in enumerate(processes):
            if rank not in codes and process.poll() is not None:
                codes[rank] = process.returncode
                if process.returncode != 0:
                    stop(signal.SIGTERM, None)
        time.sleep(0.2)
    return next((code for code in codes.values() if code != 0), 0)


def main(argv=None):
    global LOG_FILE, IS_MAIN
    config, datasets, fresh, config_file, options = parse_args(argv)
    # The ranks get the same arguments, --nproc too: WORLD_SIZE in their environment keeps them from launching more.
    if options.nproc > 1 and "WORLD_SIZE" not in os.environ:
        sys.exit(launch_ranks(options.nproc, sys.argv[1:] if argv is None else argv))
    ranks = Ranks(options.device)
    IS_MAIN = ranks.main
    work = work_folder(options)
    run_dir = work / "train" / config.run
    if ranks.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        LOG_FILE = run_dir / "train.log"
    if ranks.device.type == "cpu":
        # config.threads is the whole run's budget, shared by the ranks
        torch.set_num_threads(max(1, config.threads // ranks.world))
    else:
        torch.backends.cudnn.benchmark = True  # every batch has the same shape
    torch.manual_seed(config.seed)
    started = time.time()

    if options.pack:
        knees, spec, pack_described = knees_from_pack(Path(options.pack), config)
        log(f"preprocessing: {pack_described}")
    # rank 0 first: it may build the pinned core and prepare the tensor cache; the others then read both
    for turn in (() if options.pack else (0,) if ranks.world == 1 else (0, 1)):
        if (turn == 0) == ranks.main:
            knees, spec = prepared_knees(config, datasets, work / "cache")
        if ranks.world > 1 and turn == 0:
            ranks.barrier()
    train_idx = np.flatnonzero(knees.split == "train")
    if config.train_subset:
        train_idx = np.sort(np.random.default_rng(config.seed).choice(train_idx, config.train_subset, replace=False))
    if config.val_subset:
        val_idx = np.flatnonzero(knees.split == "val")
        dropped = np.setdiff1d(val_idx, np.random.default_rng(config.seed).choice(val_idx, config.val_subset, replace=False))
        knees.split[dropped] = ""
    log(f"config {json.dumps(asdict(config))}" + (f" (from {config_file} and flags)" if config_file else ""))
    threads = torch.get_num_threads() if ranks.device.type == "cpu" else "-"
    core = "knee pack" if options.pack else f"core {Path(oac_core.__file__).name} sha256 {core_build_id()[:16]}"
    log(f"{core}; torch {torch.__version__}; {ranks.world} rank(s) on {ranks.device.type}, {threads} threads each")
    log(f"knees: train {len(train_idx)}, val {(knees.split == 'val').sum()}")

    net = build_model(config).to(ranks.device)  # a resumed run then replaces these weights with its own last.pt
    is_head = lambda name: name.startswith(("oa.", "kl."))
    heads = [p for n, p in net.named_parameters() if p.requires_grad and is_head(n)]
    backbone = [p for n, p in net.named_parameters() if p.requires_grad and not is_head(n)]
    optimizer = torch.optim.AdamW([{"params": backbone, "lr": config.lr_backbone},
                                   {"params": heads, "lr": config.lr_heads}], weight_decay=config.weight_decay)
    steps_per_epoch = len(train_idx) // config.batch_size
    total_steps = steps_per_epoch * config.epochs
    schedule = lambda step: min(1.0, (step + 1) / config.warmup_steps) * 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    pos_weight, kl_weight = class_weights(knees, np.isin(np.arange(len(knees.split)), train_idx))
    pos_weight, kl_weight = pos_weight.to(ranks.device), kl_weight.to(ranks.device)

    if config.distil_weight > 0:
        teacher_oa, teacher_kl = teacher_targets(config, knees, train_idx, spec, run_dir, ranks)

    state = {"epoch": 0, "step_in_epoch": 0, "global_step": 0, "best_score": -1.0, "bad_epochs": 0, "history": []}
    last = run_dir / "last.pt"
    if ranks.from_main(last.exists() and not fresh):  # every rank loads the same file
        checkpoint = torch.load(last, map_location="cpu")
        net.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        state = checkpoint["state"]
        log(f"resumed at epoch {state['epoch']} step {state['step_in_epoch']}")
    model = net
    if ranks.world > 1:
        model = nn.parallel.DistributedDataParallel(net, device_ids=[ranks.device.index] if ranks.device.type == "cuda" else None)

    def save(path, extra=None):
        if not ranks.main:
            return
        payload = {"model": net.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                   "state": state, "config": asdict(config), **(extra or {})}
        torch.save(payload, str(path) + ".tmp")
        os.replace(str(path) + ".tmp", path)

    def evaluate_and_select():
        nonlocal state
        if ranks.main:
            scores = validation_score(net, knees, spec)
            scores.update(epoch=state["epoch"], step=state["global_step"], minutes=round((time.time() - started) / 60, 1))
            state["history"].append(scores)
            log(f"validation {json.dumps(scores)}")
            if scores["score"] > state["best_score"] or not (run_dir / "best.pt").exists():
                state["best_score"], state["bad_epochs"] = scores["score"], 0
                torch.save({"model": net.state_dict(), "config": asdict(config), "validation": scores}, run_dir / "best.pt")
            else:
                state["bad_epochs"] += 1
            (run_dir / "history.json").write_text(json.dumps(state["history"], indent=1))
        state = ranks.from_main(state)
        set_train_mode(net, config.freeze_bn_stats)

    def check_ranks_agree(when):
        if ranks.world > 1:
            difference = ranks.max_parameter_difference(net)
            log(f"{when}: weights on the {ranks.world} ranks " +
                ("identical" if difference == 0 else f"DIFFER by up to {difference:.3g}"))

    def out_of_time():
        return ranks.from_main(bool(config.max_minutes and (time.time() - started) / 60 > config.max_minutes))

    # on a GPU the knees live there (K x 224 x 224 float16 is well under a gigabyte) and are augmented there,
    # so the host's cores never limit the step rate; on the CPU this is a view of the same array
    stored_planes = torch.from_numpy(knees.planes).to(ranks.device)
    autocast = lambda: torch.autocast(ranks.device.type, dtype=torch.bfloat16,
                                      enabled=config.mixed_precision and ranks.device.type == "cuda")
    while state["epoch"] < config.epochs and state["bad_epochs"] < config.patience and not out_of_time():
        # the epoch's order depends only on (seed, epoch), so a resumed epoch continues the same order
        order = np.random.default_rng(config.seed + state["epoch"]).permutation(train_idx)
        set_train_mode(net, config.freeze_bn_stats)
        tick = time.time()
        while state["step_in_epoch"] < steps_per_epoch:
            batch = order[state["step_in_epoch"] * config.batch_size:(state["step_in_epoch"] + 1) * config.batch_size]
            planes = stored_planes[torch.from_numpy(batch).to(ranks.device)].float()[:, None]
            # augmentation draws depend only on (seed, step): a resumed run repeats them exactly
            gen = torch.Generator(device=ranks.device).manual_seed(config.seed * 1_000_003 + state["global_step"])
            # dropout, likewise (and per rank, so shards do not share masks)
            torch.manual_seed(config.seed * 1_000_033 + state["global_step"] + 7919 * ranks.rank)
            mine = ranks.shard(len(batch))
            augmented = augment(planes, gen, config.aug_jpeg, config.aug_margins, config.aug_negatives,
                                config.aug_black_corners)
            x = to_model_input(augmented[mine], spec)
            with autocast():
                out = model(x.contiguous(memory_format=memory_format(net)))
            out = {name: value.float() for name, value in out.items()}  # the losses in fp32 whatever the forward ran in
            loss = losses(out, torch.from_numpy(knees.oa[batch][mine]).to(ranks.device),
                          torch.from_numpy(knees.kl[batch][mine]).to(ranks.device),
                          pos_weight, kl_weight, config.kl_loss_weight, config.kl_neighbour_smoothing)
            if config.distil_weight > 0:
                taught = torch.from_numpy(batch[mine]).to(ranks.device)
                loss = (1 - config.distil_weight) * loss + config.distil_weight * distillation_loss(
                    out, teacher_oa[taught], teacher_kl[taught], config.kl_loss_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            state["step_in_epoch"] += 1
            state["global_step"] += 1
            if state["global_step"] % 10 == 0:
                mean_loss = ranks.mean(loss.item())
                rate = 10 * config.batch_size / (time.time() - tick)
                tick = time.time()
                log(f"epoch {state['epoch']} step {state['step_in_epoch']}/{steps_per_epoch} loss {mean_loss:.4f} "
                    f"{rate:.1f} img/s lr {scheduler.get_last_lr()[0]:.2e}")
            if config.eval_every_steps and state["global_step"] % config.eval_every_steps == 0:
                evaluate_and_select()
            if state["global_step"] % config.checkpoint_every_steps == 0:
                save(last)
            if out_of_time():
                break
        if state["step_in_epoch"] >= steps_per_epoch:
            state["epoch"] += 1
            state["step_in_epoch"] = 0
            check_ranks_agree(f"epoch {state['epoch']}")
            evaluate_and_select()
        save(last)

    if options.dump_rank_weights:  # for tests: every rank's final weights
        Path(options.dump_rank_weights).mkdir(parents=True, exist_ok=True)
        torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()},
                   Path(options.dump_rank_weights) / f"rank{ranks.rank}.pt")
    check_ranks_agree("end of training")
    if ranks.from_main(not (run_dir / "best.pt").exists()):
        evaluate_and_select()
    if ranks.main:
        best = torch.load(run_dir / "best.pt", map_location="cpu")
        net.load_state_dict(best["model"])
        best["ood"] = fit_ood(net, knees, spec, config)
        torch.save(best, run_dir / "best.pt")
        log(f"done: best validation {json.dumps(best['validation'])}; OOD fitted on {best['ood']['fit_images']} knees")
        (run_dir / "summary.json").write_text(json.dumps({"config": asdict(config), "best": best["validation"],
                                                          "history": state["history"]}, indent=1))
    ranks.barrier()
    ranks.finish()


if __name__ == "__main__":
    main()
