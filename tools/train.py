#!/usr/bin/python3
"""Train the knee-osteoarthritis InceptionV3 on CPU, from nsfwjs's Keras InceptionV3 weights.

One readable script, its configuration in one place (CONFIG below; command-line flags override it).
Every pixel comes from the C++ core's Python module (`oac_core.prepare`), so training sees exactly the
tensors the browser and the CLI compute. Augmentations run on those tensors and are chosen to break
the shortcuts the audit found between image source and label: contrast, gamma, blur, noise,
resolution, crop, rotation and flip.

Protocols:
  clean  train/val of models/data/split.csv (patient- and duplicate-grouped), the shipped model;
  seed   the original notebook's folders only: Osteoarthritis_Dataset/train to train, /Valid to select.

The run directory holds last.pt (resumable at any checkpoint), best.pt (best validation score),
train.log and history.json. Rerunning the same command resumes.

usage: tools/oac train [--protocol clean|seed] [--input-size 224] [--run NAME] [--max-minutes M] ...
"""
import argparse
import csv
import hashlib
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import oac_core
from inception import OAInceptionV3, pretrained_oa_model
from metrics import auc, quadratic_weighted_kappa

ROOT = Path(__file__).resolve().parent.parent


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
    init_from: str = ""                # a best.pt whose weights start this run (continued training)
    split: str = "models/data/split.csv"  # manifest; rows whose split is neither train nor val are unused
    freeze_through: str = "mixed5"     # nsfwjs kept everything up to mixed5 from ImageNet; "none" trains all
    kl_loss_weight: float = 1.0
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


CARD = ROOT / "models" / "oa-inceptionv3.json"
PRETRAINED = ROOT / "build" / "pretrained" / "inception_v3_nsfwjs.pt"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in fields(Config):
        parser.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=f.default)
    parser.add_argument("--datasets", default=os.environ.get("OAC_DATASETS", str(ROOT.parent / "shared" / "datasets")))
    parser.add_argument("--fresh", action="store_true", help="ignore an existing last.pt and start over")
    args = parser.parse_args()
    config = Config(**{f.name: getattr(args, f.name) for f in fields(Config)})
    if not config.run:
        config.run = f"{config.protocol}-{config.input_size}"
    return config, Path(args.datasets), args.fresh


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


def load_knees(config, datasets, spec):
    split = ROOT / config.split
    rows = list(csv.DictReader(open(split, newline="")))
    key = hashlib.sha256((json.dumps(asdict(spec_as_dict(spec)), sort_keys=True) + split.read_text()).encode()).hexdigest()[:16]
    cache = ROOT / "build" / "cache" / f"knees-{config.input_size}-{key}.npz"
    if cache.exists():
        data = np.load(cache, allow_pickle=False)
        planes, row_index = data["planes"], data["row"]
    else:
        planes, row_index = [], []
        mean, std = spec.preprocess.mean[0], spec.preprocess.std[0]
        for i, row in enumerate(rows):
            for knee in oac_core.prepare((datasets / row["path"]).read_bytes(), spec):
                planes.append((knee["tensor"][0] * std + mean).astype(np.float16))
                row_index.append(i)
            if i % 500 == 0:
                log(f"prepared {i}/{len(rows)} images")
        planes, row_index = np.stack(planes), np.array(row_index)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, planes=planes, row=row_index)
    labels = [protocol_labels(rows[i], config.protocol) for i in row_index]
    return Knees(
        planes=planes,
        oa=np.array([l[1] for l in labels], dtype=np.float32),
        kl=np.array([l[2] for l in labels], dtype=np.int64),
        split=np.array([l[0] or "" for l in labels]),
        source=np.array([rows[i]["source"] for i in row_index]),
        row=row_index,
    )


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

def augment(x, gen):
    n, _, size, _ = x.shape
    u = lambda lo, hi: lo + (hi - lo) * torch.rand(n, generator=gen)

    # geometry: zoom (crop), aspect, shift, rotation, horizontal flip (left and right knees mirror)
    zoom, aspect, angle = u(0.78, 1.0), u(0.9, 1.1), u(-0.14, 0.14)
    flip = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    sx, sy = zoom * aspect.sqrt() * flip, zoom / aspect.sqrt()
    theta = torch.stack([
        torch.stack([sx * angle.cos(), -sy * angle.sin(), u(-0.08, 0.08)], 1),
        torch.stack([sx * angle.sin(), sy * angle.cos(), u(-0.08, 0.08)], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    # resolution: the second collection's knees are upsampled from ~160 px, the OAI crops are native;
    # degrading half of every batch to a random lower resolution hides that difference.
    low = torch.rand(n, generator=gen) < 0.5
    if low.any():
        side = int(size * float(u(0.4, 0.9)[0]))
        degraded = F.interpolate(F.interpolate(x[low], size=(side, side), mode="area"),
                                 size=(size, size), mode="bilinear", align_corners=False)
        x = x.clone()
        x[low] = degraded

    # blur with a per-sample Gaussian (sigma 0 means identity)
    sigma = torch.where(torch.rand(n, generator=gen) < 0.3, u(0.4, 1.3), torch.zeros(n))
    taps = torch.arange(-3, 4, dtype=torch.float32)
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
    x = x + torch.randn(x.shape, generator=gen) * view(u(0.0, 0.03))
    return x.clamp(0.0, 1.0)


def to_model_input(planes, spec):
    p = spec.preprocess
    channels = [(planes - p.mean[c]) / p.std[c] for c in range(3)]
    return torch.cat(channels, dim=1)


# ----------------------------------------------------------------------------------------------

LOG_FILE = None


def log(message):
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


def losses(out, oa, kl, pos_weight, kl_weight, kl_loss_weight):
    known_oa = ~torch.isnan(oa)
    loss = out["oa_logit"].sum() * 0.0
    if known_oa.any():
        loss = loss + F.binary_cross_entropy_with_logits(out["oa_logit"][known_oa], oa[known_oa], pos_weight=pos_weight)
    known_kl = kl >= 0
    if known_kl.any():
        loss = loss + kl_loss_weight * F.cross_entropy(out["kl_logits"][known_kl], kl[known_kl], weight=kl_weight)
    return loss


@torch.no_grad()
def predict(model, planes, spec, batch_size=64):
    model.eval()
    outputs = {"oa_logit": [], "kl_logits": [], "features": []}
    for start in range(0, len(planes), batch_size):
        x = torch.from_numpy(planes[start:start + batch_size].astype(np.float32))[:, None]
        out = model(to_model_input(x, spec))
        for k in outputs:
            outputs[k].append(out[k])
    return {k: torch.cat(v).numpy() for k, v in outputs.items()}


def validation_score(model, knees, spec):
    mask = knees.split == "val"
    out = predict(model, knees.planes[mask], spec)
    oa, kl = knees.oa[mask], knees.kl[mask]
    known = ~np.isnan(oa)
    oa_auc = auc(oa[known], out["oa_logit"][known])
    graded = kl >= 0
    kl_pred = out["kl_logits"].argmax(1)
    kappa = quadratic_weighted_kappa(kl[graded], kl_pred[graded], 5) if graded.any() else 0.0
    kl_acc = float((kl_pred[graded] == kl[graded]).mean()) if graded.any() else 0.0
    return {"auc": float(oa_auc), "qwk": float(kappa), "kl_acc": kl_acc, "score": float(oa_auc + kappa)}


def fit_ood(model, knees, spec, config):
    """The OOD gate of tools/export_onnx.py (OodGate): Mahalanobis distance in the top principal subspace of
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


def main():
    global LOG_FILE
    config, datasets, fresh = parse_args()
    run_dir = ROOT / "build" / "train" / config.run
    run_dir.mkdir(parents=True, exist_ok=True)
    LOG_FILE = run_dir / "train.log"
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    started = time.time()

    spec = oac_core.parse_model_card(CARD.read_text())
    spec.preprocess.input_size = config.input_size
    knees = load_knees(config, datasets, spec)
    train_idx = np.flatnonzero(knees.split == "train")
    if config.train_subset:
        train_idx = np.sort(np.random.default_rng(config.seed).choice(train_idx, config.train_subset, replace=False))
    if config.val_subset:
        val_idx = np.flatnonzero(knees.split == "val")
        dropped = np.setdiff1d(val_idx, np.random.default_rng(config.seed).choice(val_idx, config.val_subset, replace=False))
        knees.split[dropped] = ""
    log(f"config {json.dumps(asdict(config))}")
    log(f"knees: train {len(train_idx)}, val {(knees.split == 'val').sum()}")

    if config.init == "nsfwjs":
        freeze = None if config.freeze_through == "none" else config.freeze_through
        model = pretrained_oa_model(config.dropout, PRETRAINED, freeze_through=freeze)
    elif config.init == "random":
        model = OAInceptionV3(dropout=config.dropout)
    else:
        sys.exit(f"train: unknown --init {config.init!r}; use nsfwjs or random")
    if config.init_from:  # a resumed run then replaces these weights with its own last.pt
        model.load_state_dict(torch.load(ROOT / config.init_from)["model"])
        log(f"weights from {config.init_from}")
    is_head = lambda name: name.startswith(("oa.", "kl."))
    heads = [p for n, p in model.named_parameters() if p.requires_grad and is_head(n)]
    backbone = [p for n, p in model.named_parameters() if p.requires_grad and not is_head(n)]
    optimizer = torch.optim.AdamW([{"params": backbone, "lr": config.lr_backbone},
                                   {"params": heads, "lr": config.lr_heads}], weight_decay=config.weight_decay)
    steps_per_epoch = len(train_idx) // config.batch_size
    total_steps = steps_per_epoch * config.epochs
    schedule = lambda step: min(1.0, (step + 1) / config.warmup_steps) * 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    pos_weight, kl_weight = class_weights(knees, np.isin(np.arange(len(knees.split)), train_idx))

    state = {"epoch": 0, "step_in_epoch": 0, "global_step": 0, "best_score": -1.0, "bad_epochs": 0, "history": []}
    last = run_dir / "last.pt"
    if last.exists() and not fresh:
        checkpoint = torch.load(last)
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        state = checkpoint["state"]
        log(f"resumed at epoch {state['epoch']} step {state['step_in_epoch']}")

    def save(path, extra=None):
        payload = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                   "state": state, "config": asdict(config), **(extra or {})}
        torch.save(payload, str(path) + ".tmp")
        os.replace(str(path) + ".tmp", path)

    def evaluate_and_select():
        scores = validation_score(model, knees, spec)
        scores.update(epoch=state["epoch"], step=state["global_step"], minutes=round((time.time() - started) / 60, 1))
        state["history"].append(scores)
        log(f"validation {json.dumps(scores)}")
        if scores["score"] > state["best_score"]:
            state["best_score"], state["bad_epochs"] = scores["score"], 0
            torch.save({"model": model.state_dict(), "config": asdict(config), "validation": scores}, run_dir / "best.pt")
        else:
            state["bad_epochs"] += 1
        (run_dir / "history.json").write_text(json.dumps(state["history"], indent=1))

    out_of_time = lambda: config.max_minutes and (time.time() - started) / 60 > config.max_minutes
    while state["epoch"] < config.epochs and state["bad_epochs"] < config.patience and not out_of_time():
        # the epoch's order depends only on (seed, epoch), so a resumed epoch continues the same order
        order = np.random.default_rng(config.seed + state["epoch"]).permutation(train_idx)
        model.train()  # frozen batch norms stay in inference mode (see InceptionV3Backbone.train)
        tick = time.time()
        while state["step_in_epoch"] < steps_per_epoch:
            batch = order[state["step_in_epoch"] * config.batch_size:(state["step_in_epoch"] + 1) * config.batch_size]
            planes = torch.from_numpy(knees.planes[batch].astype(np.float32))[:, None]
            # augmentation draws depend only on (seed, step): a resumed run repeats them exactly
            gen = torch.Generator().manual_seed(config.seed * 1_000_003 + state["global_step"])
            x = to_model_input(augment(planes, gen), spec)
            out = model(x)
            loss = losses(out, torch.from_numpy(knees.oa[batch]), torch.from_numpy(knees.kl[batch]),
                          pos_weight, kl_weight, config.kl_loss_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            state["step_in_epoch"] += 1
            state["global_step"] += 1
            if state["global_step"] % 10 == 0:
                rate = 10 * config.batch_size / (time.time() - tick)
                tick = time.time()
                log(f"epoch {state['epoch']} step {state['step_in_epoch']}/{steps_per_epoch} loss {loss.item():.4f} "
                    f"{rate:.1f} img/s lr {scheduler.get_last_lr()[0]:.2e}")
            if config.eval_every_steps and state["global_step"] % config.eval_every_steps == 0:
                evaluate_and_select()
                model.train()
            if state["global_step"] % config.checkpoint_every_steps == 0:
                save(last)
            if out_of_time():
                break
        if state["step_in_epoch"] >= steps_per_epoch:
            state["epoch"] += 1
            state["step_in_epoch"] = 0
            evaluate_and_select()
        save(last)

    if not (run_dir / "best.pt").exists():
        evaluate_and_select()
    best = torch.load(run_dir / "best.pt")
    model.load_state_dict(best["model"])
    best["ood"] = fit_ood(model, knees, spec, config)
    torch.save(best, run_dir / "best.pt")
    log(f"done: best validation {json.dumps(best['validation'])}; OOD fitted on {best['ood']['fit_images']} knees")
    (run_dir / "summary.json").write_text(json.dumps({"config": asdict(config), "best": best["validation"],
                                                      "history": state["history"]}, indent=1))


if __name__ == "__main__":
    main()
