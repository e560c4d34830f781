#!/usr/bin/python3
"""Cheap epochs on two cores: InceptionV3's lower trunk frozen and its output cached, the upper blocks and the
heads trained on the cache; and the learning-curve study (training-set fraction x epochs) that runs on it.

Why: a full training epoch of InceptionV3 on the ~5700 training knees takes 17-27 minutes on the two shared cores,
so a study of many epochs at several data fractions does not fit a day. The trunk below `cut` is frozen (nsfwjs's
weights, BatchNorm in inference mode), so its output for a given input never changes: it is computed once per knee
and view and kept as float16 under `work`. An epoch then runs only the layers above the cut.

Everything a knee is made of comes from train.py: the C++ core's tensors of the pinned `core` (train.load_core,
train.load_knees), its augmentation (train.augment), its losses and class weights, its validation scores. Views
cached per knee, as the recipe's `views` asks: the knee as the core prepares it; its mirror image (with
mirror_validation, for the validation knees too, to score them as the shipped model runs, the mean of the two);
draws of train.augment (training knees only). An epoch shows each training knee once, in one of the recipe's views picked at random. The
cache also keeps, per knee and view, the pooled features of the untrained network above the cut, for a regime that
trains the heads alone.

The trunk starts from nsfwjs's weights, not v4's: v4's trunk has learned from every training knee, so a run on
25% of the knees would still profit from the other 75% through it, and the data-fraction curve would flatten.
Validation only: the test rows of the split are never prepared (train.load_knees reads train and val rows only).

Commands (configuration: StudyConfig below, flags override it):
  cache    build the trunk cache, or resume it (it is written in chunks)
  train    one run on the cache (--run, --train-fraction, --epochs); rerunning resumes at its last epoch
  speed    knees per second of one training step: train.py's (the whole network, augmented on the fly) vs this
           script's on the cache, measured back to back (runs/speed.json)
  report   models/learning-curves.md from the runs' history.json, speed.json and the cache's build log
  study    all of it in order: cache, speed, the runs of STUDY_RUNS, report (resumable: rerun the same command)

usage: tools/oac learning-curves study [--work /var/tmp/oac/study]        (the study; each run's epochs: STUDY_RUNS)
       tools/oac learning-curves train --run NAME --train-fraction 0.5 --epochs 20 [--heads-only true] ...
"""
import argparse
import dataclasses
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

from lib.paths import REPO_ROOT, datasets_dir
from model import train
from model.inception import PRETRAINED_PATH, pretrained_oa_model


@dataclass
class StudyConfig:
    split: str = "models/data/eval-split-v1.csv"   # its val rows select; test rows are never read
    core: str = "86290268ba8c3a0813861bcd32070ef63c92bb29"  # v4's pinned core: the tensors v4 trained on
    input_size: int = 224
    cut: str = "mixed9"             # last frozen Keras layer: its output (5x5x2048 at 224 px) is cached
    heads_only: bool = False        # train only the heads, on the pooled features of the frozen network (also cached)
    views: str = "original"         # the views an epoch picks from (comma-separated): original, mirror, draw1, draw2, ...
                                    # (drawN: the Nth cached draw of train.augment)
    mirror_validation: bool = False  # also cache the validation knees' mirror images, to score as the shipped model
                                    # runs (mean of the two); off by default: a second trunk pass over them
    aug_jpeg: float = 0.3           # the draws' JPEG and margin shares, v4's (tools/model/runs/v4.json)
    aug_margins: float = 0.15
    run: str = "full"
    train_fraction: float = 1.0     # nested seeded subsets of the training knees: 25% within 50% within 100%
    epochs: int = 12
    batch_size: int = 32
    lr_blocks: float = 3e-4         # train.py's defaults for a start from nsfwjs (lr_backbone, lr_heads)
    lr_heads: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    dropout: float = 0.4
    kl_loss_weight: float = 1.0
    kl_neighbour_smoothing: float = 0.1  # v4's
    freeze_bn_stats: bool = False   # the trained blocks' BatchNorms learn their statistics (train.py's default)
    balanced_sampling: bool = False  # lever: an epoch draws its knees with probability 1/(count of their KL grade)
    mixup: float = 0.0              # lever: Beta(a, a) mixing of pairs of cached inputs and of their losses; 0: off
    seed: int = 1234
    threads: int = 2
    chunk: int = 32                 # knees per trunk forward while caching (a resumed cache restarts a chunk)
    work: str = "/var/tmp/oac/study"  # cache, runs and logs: outside the work tree


# The study, in the order it runs: two regimes (the heads alone on the frozen network's features; the top block and
# the heads), each at three training-set fractions trained for the same number of epochs; then recipe levers, each
# changing one setting against the run of the same regime, fraction and epochs with today's recipe.
# (name, heads_only, fraction, epochs, settings changed). The heads regime costs seconds an epoch, the top one
# minutes: its epochs are few so that its runs fit a session.
STUDY_RUNS = (
    ("heads-025", True, 0.25, 20, {}), ("heads-050", True, 0.5, 20, {}), ("heads-100", True, 1.0, 20, {}),
    ("heads-100-balanced", True, 1.0, 20, {"balanced_sampling": True}),
    ("heads-100-mixup", True, 1.0, 20, {"mixup": 0.4}),
    ("top-025", False, 0.25, 3, {}), ("top-050", False, 0.5, 3, {}), ("top-100", False, 1.0, 3, {}),
    # more epochs as a lever: the 3-epoch runs were still improving at their last epoch
    ("top-100-12ep", False, 1.0, 3, {"epochs": 12}), ("top-025-12ep", False, 0.25, 3, {"epochs": 12}),
)

LAST_LAYER = "mixed10"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("cache", "train", "speed", "report", "study"))
    for f in fields(StudyConfig):
        kind = train.parse_bool if isinstance(f.default, bool) else type(f.default)
        parser.add_argument("--" + f.name.replace("_", "-"), type=kind, default=None, help=f"default {f.default!r}")
    parser.add_argument("--datasets", type=Path, default=datasets_dir())
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "models" / "learning-curves.md")
    parser.add_argument("--runs", default="", help="study: only the runs whose names start with this (e.g. heads, top), "
                        "so that two processes can share the study")
    args = parser.parse_args(argv)
    values = {f.name: getattr(args, f.name) for f in fields(StudyConfig) if getattr(args, f.name) is not None}
    return StudyConfig(**values), args


# ----------------------------------------------------------------------------------------------
# Knees (train.py's, from the pinned core) and the frozen trunk

def load_study_knees(config, datasets):
    """The knees train.py would train on under `config`'s split and core, and the core's spec."""
    train_config = train.Config(protocol="clean", input_size=config.input_size, split=config.split, core=config.core)
    card_text, described = train.load_core(train_config)
    spec = train.oac_core.parse_model_card(card_text)
    spec.preprocess.input_size = config.input_size
    train.log(f"preprocessing: {described}")
    return train.load_knees(train_config, datasets, spec, card_text, Path(config.work) / "cache"), spec


def study_model(config, pretrained=PRETRAINED_PATH):
    """nsfwjs's InceptionV3 with fresh heads, frozen through `cut`: the trunk that is cached and the blocks that train."""
    return pretrained_oa_model(config.dropout, pretrained, freeze_through=config.cut).to(memory_format=torch.channels_last)


@torch.no_grad()
def trunk_output(model, planes, spec, cut):
    """The frozen trunk's output (float32) for grey planes [n,1,S,S] in [0,1], in inference mode."""
    was_training = model.training
    model.eval()
    x = train.to_model_input(planes, spec).contiguous(memory_format=torch.channels_last)
    out = model.backbone.run_between(x, "input_1", cut)
    model.train(was_training)
    return out


@torch.no_grad()
def frozen_features(model, trunk, cut):
    """The pooled 2048 features of the untrained network above `cut` (inference mode): the heads-only regime's input."""
    was_training = model.training
    model.eval()
    out = model.backbone.run_between(trunk.contiguous(memory_format=torch.channels_last), cut, LAST_LAYER)
    model.train(was_training)
    return out.mean(dim=(2, 3))


def upper_outputs(model, cached, cut, heads_only=False):
    """The model's outputs (oa_logit, kl_logits, features, cam) from what the cache holds: the trunk's output at
    `cut`, or (heads_only) the pooled features, seen by outputs_from as a 1x1 feature map."""
    if heads_only:
        return model.outputs_from(cached.float()[:, :, None, None])
    x = cached.float().contiguous(memory_format=torch.channels_last)
    return model.outputs_from(model.backbone.run_between(x, cut, LAST_LAYER))


# ----------------------------------------------------------------------------------------------
# The trunk cache: per view, float16 .npy files in train.load_knees's row order: <view>.npy [knees, C, h, w] the
# trunk's output, <view>-pooled.npy [knees, 2048] the frozen network's pooled features above it

class TrunkCache:
    def __init__(self, folder):
        self.folder = Path(folder)
        self.meta = json.loads((self.folder / "meta.json").read_text())
        begun = [name for name in self.meta["views"] if (self.folder / f"{name}-pooled.npy").exists()]
        self.views = {name: np.load(self.folder / f"{name}.npy", mmap_mode="r") for name in begun}
        # the pooled features are small (4 KiB a knee): read into memory, the maps stay on disk (page cache)
        self.pooled = {name: np.load(self.folder / f"{name}-pooled.npy") for name in begun}

    def covers(self, view, rows):
        """whether every one of `rows` is cached in `view` (a view is built in the order of its row list)"""
        done = self.meta["views"][view][:self.progress().get(view, 0)] if view in self.meta["views"] else []
        return bool(np.isin(rows, done).all())

    def progress(self):
        path = self.folder / "progress.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def features(self, view, knees_index, pooled=False):
        """float32 tensor of `view` for the given knee rows: [n, C, h, w] the trunk's output, or [n, 2048] pooled"""
        order = np.argsort(knees_index)  # memmap reads in ascending order, then back to the asked order
        rows = (self.pooled if pooled else self.views)[view][np.asarray(knees_index)[order]]
        out = np.empty_like(rows)
        out[order] = rows
        return torch.from_numpy(out.astype(np.float32))


def cache_views(config, knees):
    """view name -> the knee rows the recipe needs cached, in the order they are built: every knee as it is; the
    validation knees mirrored (mirror_validation: to score as the shipped model runs), then the training knees too
    when the recipe trains on mirrors; the training knees' draws of train.augment that the recipe names"""
    train_rows, val_rows = np.flatnonzero(knees.split == "train"), np.flatnonzero(knees.split == "val")
    recipe = config.views.split(",")
    unknown = [v for v in recipe if v not in ("original", "mirror") and not (v.startswith("draw") and v[4:].isdigit())]
    if unknown:
        sys.exit(f"learning-curves: unknown views {unknown}: use original, mirror, draw1, draw2, ...")
    views = {"original": np.arange(len(knees.split))}
    if "mirror" in recipe or config.mirror_validation:
        views["mirror"] = np.concatenate([val_rows, train_rows]) if "mirror" in recipe else val_rows
    draws = max([int(v[4:]) for v in recipe if v.startswith("draw")], default=0)
    views.update({f"draw{d}": train_rows for d in range(1, draws + 1)})
    return views


def cache_folder(config, knees, pretrained=PRETRAINED_PATH):
    """The cache is keyed by what its contents depend on: the knees' tensors, the trunk's weights, the cut, the size."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(knees.planes).tobytes())
    digest.update(np.ascontiguousarray(knees.row).tobytes())
    digest.update(Path(pretrained).read_bytes())
    digest.update(json.dumps([config.cut, config.input_size]).encode())
    return Path(config.work) / f"trunk-{config.cut}-{digest.hexdigest()[:16]}"


def view_planes(view, planes, view_index, chunk_start, config):
    """The input planes [n,1,S,S] of `view` for a chunk; a draw's randomness depends only on (seed, view, chunk)."""
    x = torch.from_numpy(planes.astype(np.float32))[:, None]
    if view == "original":
        return x
    if view == "mirror":
        return torch.flip(x, dims=[3])
    gen = torch.Generator().manual_seed(config.seed * 1_000_003 + view_index * 100_003 + chunk_start)
    return train.augment(x, gen, jpeg=config.aug_jpeg, margins=config.aug_margins)


def build_cache(config, knees, spec, pretrained=PRETRAINED_PATH):
    """Compute (or finish) the trunk cache; returns its folder. Progress is saved after every chunk."""
    folder = cache_folder(config, knees, pretrained)
    folder.mkdir(parents=True, exist_ok=True)
    views = cache_views(config, knees)
    model = study_model(config, pretrained)
    probe = trunk_output(model, view_planes("original", knees.planes[:1], 0, 0, config), spec, config.cut)
    shape = (len(knees.split), *probe.shape[1:])
    meta_path = folder / "meta.json"
    if not meta_path.exists():
        meta = {"cut": config.cut, "shape": list(shape), "views": {v: rows.tolist() for v, rows in views.items()},
                "config": asdict(config), "build_seconds": {}}
        meta_path.write_text(json.dumps(meta))
    meta = json.loads(meta_path.read_text())
    progress_path = folder / "progress.json"
    progress = json.loads(progress_path.read_text()) if progress_path.exists() else {}
    for view_index, (view, rows) in enumerate(views.items()):
        begun = meta["views"].get(view, [])[:progress.get(view, 0)]
        if rows.tolist()[:len(begun)] == begun:  # a view may grow (the training mirrors after the validation ones)
            meta["views"][view] = rows.tolist()
        rows = np.array(meta["views"][view])
        for name, view_shape in ((f"{view}.npy", shape), (f"{view}-pooled.npy", (shape[0], model.oa.in_features))):
            if not (folder / name).exists():
                np.lib.format.open_memmap(folder / name, mode="w+", dtype=np.float16, shape=view_shape).flush()
        array = np.load(folder / f"{view}.npy", mmap_mode="r+")
        pooled = np.load(folder / f"{view}-pooled.npy", mmap_mode="r+")
        done = progress.get(view, 0)
        if done >= len(rows):
            continue
        train.log(f"cache {folder.name}: view {view}, {done}/{len(rows)} knees done")
        for start in range(done, len(rows), config.chunk):
            tick = time.time()
            batch = rows[start:start + config.chunk]
            x = view_planes(view, knees.planes[batch], view_index, start, config)
            trunk = trunk_output(model, x, spec, config.cut)
            array[batch] = trunk.numpy().astype(np.float16)
            # pooled from the float16 map, so the heads see what a run on the cached map starts from
            pooled[batch] = frozen_features(model, torch.from_numpy(array[batch].astype(np.float32)), config.cut).numpy()
            array.flush()
            pooled.flush()
            progress[view] = start + len(batch)
            meta["build_seconds"][view] = meta["build_seconds"].get(view, 0.0) + time.time() - tick
            meta_path.write_text(json.dumps(meta))
            write_atomically(progress_path, json.dumps(progress))
            if (start // config.chunk) % 20 == 0:
                rate = len(batch) / (time.time() - tick)
                train.log(f"cache view {view}: {progress[view]}/{len(rows)} knees ({rate:.1f} knees/s)")
        del array, pooled
    train.log(f"cache {folder} complete: views {list(views)}")
    return folder


def write_atomically(path, text):
    Path(str(path) + ".tmp").write_text(text)
    os.replace(str(path) + ".tmp", path)


# ----------------------------------------------------------------------------------------------
# Training on the cache

def training_rows(knees, fraction, seed):
    """A seeded `fraction` of the training knees; the fractions are nested (one permutation, its first share)."""
    rows = np.flatnonzero(knees.split == "train")
    order = np.random.default_rng(seed).permutation(rows)
    return np.sort(order[:max(1, round(fraction * len(rows)))])


def grade_balanced(kl):
    """Sampling probabilities that give each KL grade the same share (a knee without a grade: the mean weight)."""
    counts = np.bincount(kl[kl >= 0], minlength=5).astype(np.float64)
    weight = np.where(kl >= 0, 1.0 / np.maximum(counts[np.clip(kl, 0, 4)], 1), np.nan)
    weight = np.where(np.isnan(weight), np.nanmean(weight) if np.isfinite(weight).any() else 1.0, weight)
    return weight / weight.sum()


@torch.no_grad()
def validation_scores(model, cache, knees, cut, heads_only=False, batch_size=128):
    """train.py's validation scores of the knee as it is, and of the mean of its and its mirror image's logits
    (as the shipped model runs, inception.mirror_averaged)."""
    model.eval()
    rows = np.flatnonzero(knees.split == "val")
    logits = {}
    for view in ("original", "mirror") if cache.covers("mirror", rows) else ("original",):
        parts = [upper_outputs(model, cache.features(view, rows[s:s + batch_size], heads_only), cut, heads_only)
                 for s in range(0, len(rows), batch_size)]
        logits[view] = (torch.cat([p["oa_logit"] for p in parts]).numpy(), torch.cat([p["kl_logits"] for p in parts]).numpy())
    oa, kl = knees.oa[rows], knees.kl[rows]
    scores = {"as_is": train.scores_of(*logits["original"], oa, kl)}
    if "mirror" in logits:
        averaged = [(a + b) / 2 for a, b in zip(logits["original"], logits["mirror"])]
        scores["mirror_averaged"] = train.scores_of(*averaged, oa, kl)
    return scores


def train_run(config, knees, cache_dir, pretrained=PRETRAINED_PATH):
    """Train the blocks above the cut and the heads on the cache; returns the run's history (one entry per epoch)."""
    run_dir = Path(config.work) / "runs" / config.run
    run_dir.mkdir(parents=True, exist_ok=True)
    train.LOG_FILE = run_dir / "train.log"
    cache = TrunkCache(cache_dir)
    views = config.views.split(",")
    torch.manual_seed(config.seed)
    rows = training_rows(knees, config.train_fraction, config.seed)
    incomplete = [v for v in views if not cache.covers(v, rows)]
    if incomplete:
        sys.exit(f"learning-curves: the cache {cache_dir} lacks views {incomplete} of the training knees: "
                 "run (or finish) the cache command first")
    model = study_model(config, pretrained)
    if config.heads_only:
        model.backbone.freeze_through(LAST_LAYER)
    blocks = [p for p in model.backbone.parameters() if p.requires_grad]
    heads = list(model.oa.parameters()) + list(model.kl.parameters())
    groups = [{"params": heads, "lr": config.lr_heads}] + ([{"params": blocks, "lr": config.lr_blocks}] if blocks else [])
    optimizer = torch.optim.AdamW(groups, weight_decay=config.weight_decay)
    steps_per_epoch = max(1, len(rows) // config.batch_size)
    total = steps_per_epoch * config.epochs
    # train.py's schedule: linear warm-up, then one cosine over the whole run
    schedule = lambda step: min(1.0, (step + 1) / config.warmup_steps) * 0.5 * (1 + math.cos(math.pi * min(step, total) / total))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    pos_weight, kl_weight = train.class_weights(knees, np.isin(np.arange(len(knees.split)), rows))
    state = {"epoch": 0, "history": []}
    last = run_dir / "last.pt"
    if last.exists():
        checkpoint = torch.load(last, map_location="cpu")
        if checkpoint["config"] != asdict(config):
            sys.exit(f"learning-curves: {last} was trained with another configuration; remove {run_dir} to start over")
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        state = checkpoint["state"]
        train.log(f"resumed {config.run} after epoch {state['epoch']}")
    train.log(f"run {config.run}: {len(rows)} training knees ({config.train_fraction:.0%}), views {views}, "
              f"config {json.dumps(asdict(config))}")
    while state["epoch"] < config.epochs:
        # the epoch's order, views, mixing and dropout depend only on (seed, epoch): a resumed run repeats them
        epoch_rng = np.random.default_rng([config.seed, state["epoch"]])
        torch.manual_seed(config.seed * 1_000_033 + state["epoch"])
        order = epoch_rng.choice(rows, len(rows), p=grade_balanced(knees.kl[rows])) if config.balanced_sampling \
            else epoch_rng.permutation(rows)
        view_of = epoch_rng.integers(0, len(views), len(order))
        train.set_train_mode(model, config.freeze_bn_stats)
        tick, seen, losses = time.time(), 0, []
        for step in range(steps_per_epoch):
            picked = slice(step * config.batch_size, (step + 1) * config.batch_size)
            batch, batch_views = order[picked], view_of[picked]
            features = torch.empty((len(batch), *(cache.pooled["original"].shape[1:] if config.heads_only
                                                   else cache.meta["shape"][1:])))
            for v, view in enumerate(views):
                mine = np.flatnonzero(batch_views == v)
                if len(mine):
                    features[mine] = cache.features(view, batch[mine], config.heads_only)
            labelled = lambda b: (torch.from_numpy(knees.oa[b]), torch.from_numpy(knees.kl[b]), pos_weight, kl_weight,
                                  config.kl_loss_weight, config.kl_neighbour_smoothing)
            if config.mixup > 0:
                # mixup (Zhang et al. 2018) on what the cache holds: one weight a batch, its pairs a permutation
                share = float(epoch_rng.beta(config.mixup, config.mixup))
                partner = epoch_rng.permutation(len(batch))
                out = upper_outputs(model, share * features + (1 - share) * features[partner], config.cut,
                                    config.heads_only)
                loss = share * train.losses(out, *labelled(batch)) + (1 - share) * train.losses(out, *labelled(batch[partner]))
            else:
                out = upper_outputs(model, features, config.cut, config.heads_only)
                loss = train.losses(out, *labelled(batch))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            seen += len(batch)
            losses.append(loss.item())
        seconds = time.time() - tick
        state["epoch"] += 1
        scores = validation_scores(model, cache, knees, config.cut, config.heads_only)
        entry = {"epoch": state["epoch"], "train_knees": len(rows), "train_loss": float(np.mean(losses)),
                 "train_seconds": round(seconds, 1), "knees_per_second": round(seen / seconds, 2), **scores}
        state["history"].append(entry)
        train.log(f"epoch {state['epoch']}/{config.epochs} {json.dumps(entry)}")
        payload = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                   "state": state, "config": asdict(config)}
        torch.save(payload, str(last) + ".tmp")
        os.replace(str(last) + ".tmp", last)
        write_atomically(run_dir / "history.json", json.dumps({"config": asdict(config), "history": state["history"]}, indent=1))
    return state["history"]


# ----------------------------------------------------------------------------------------------
# Speed: train.py's step against the cached step, back to back on the same machine

def time_steps(step, batch_size, repeats):
    tick = time.time()
    for _ in range(repeats):
        step()
    return round(batch_size * repeats / (time.time() - tick), 2)


def measure_speed(config, knees, spec, cache_dir, batch_size=16, repeats=2, rounds=3, pretrained=PRETRAINED_PATH):
    """Knees per second of one training step at the same batch size: (a) train.py's v4 recipe (every layer trained,
    augmented on the fly), (b) this recipe without the cache (the frozen trunk run every step), (c) on the cache,
    (d) the heads alone on the cached pooled features."""
    rows = np.flatnonzero(knees.split == "train")[:batch_size]
    planes = torch.from_numpy(knees.planes[rows].astype(np.float32))[:, None]
    oa, kl = torch.from_numpy(knees.oa[rows]), torch.from_numpy(knees.kl[rows])
    pos_weight, kl_weight = torch.tensor(1.0), torch.ones(5)
    cache = TrunkCache(cache_dir)

    def stepper(model, inputs):
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-6)

        def step():
            model.train()
            loss = train.losses(inputs(model), oa, kl, pos_weight, kl_weight, 1.0, 0.1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return step

    def augmented_input(model):
        gen = torch.Generator().manual_seed(0)
        x = train.augment(planes, gen, jpeg=config.aug_jpeg, margins=config.aug_margins)
        return model(train.to_model_input(x, spec).contiguous(memory_format=torch.channels_last))

    whole = pretrained_oa_model(config.dropout, pretrained, freeze_through=None).to(memory_format=torch.channels_last)
    frozen = study_model(config, pretrained)
    heads = study_model(config, pretrained)
    heads.backbone.freeze_through(LAST_LAYER)
    steps = {
        "whole_network_augmented": stepper(whole, augmented_input),
        "frozen_trunk_recomputed": stepper(frozen, lambda m: upper_outputs(
            m, trunk_output(m, planes, spec, config.cut), config.cut)),
        "cached_trunk": stepper(frozen, lambda m: upper_outputs(m, cache.features("original", rows), config.cut)),
        "cached_heads": stepper(heads, lambda m: upper_outputs(
            m, cache.features("original", rows, pooled=True), config.cut, heads_only=True)),
    }
    results = {"batch_size": batch_size, "repeats": repeats, "rounds": rounds, "threads": torch.get_num_threads(),
               "load_average_before": os.getloadavg()[0]}
    for step in steps.values():
        step()  # warm-up (allocations, oneDNN kernels)
    # the settings take turns, round after round, so that a change in the shared cores' load falls on all of them;
    # each setting's figure is the median of its rounds
    by_round = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            by_round[name].append(time_steps(step, batch_size, repeats))
    results.update({name: float(np.median(rates)) for name, rates in by_round.items()})
    results.update(by_round={name: rates for name, rates in by_round.items()}, load_average_after=os.getloadavg()[0])
    return results


# ----------------------------------------------------------------------------------------------
# The report

def fmt(value):
    return "-" if value is None else f"{value:.3f}"


NOT_SCORED = {"auc": None, "qwk": None, "kl_acc": None}  # mirror averaging before the validation mirrors were cached


REGIMES = (("heads", "the OA and KL heads alone, on the pooled features of the frozen network (frozen through mixed10)"),
           ("top", "the block above the cut and the heads, on the cached trunk output"))


def report(config, knees, cache_dir, out):
    runs_dir = Path(config.work) / "runs"
    histories = {}
    for name, *_ in STUDY_RUNS:
        path = runs_dir / name / "history.json"
        if path.exists():
            histories[name] = json.loads(path.read_text())
    speed_path = runs_dir / "speed.json"
    speed = json.loads(speed_path.read_text()) if speed_path.exists() else None
    meta = json.loads((Path(cache_dir) / "meta.json").read_text())
    progress = json.loads((Path(cache_dir) / "progress.json").read_text())
    command = f"tools/oac learning-curves study --work {config.work}"
    lines = [
        "# Learning curves: epochs against data, on a cached trunk", "",
        f"Generated by `{command}` (`tools/model/cached_trunk.py`; resumable: rerun the same command; "
        f"`tools/oac learning-curves report` rewrites this page from what has run) from the runs' `history.json` under "
        f"`{config.work}/runs/`. Every figure is on the validation knees of `{config.split}`; its test rows are never "
        "read. Do not edit by hand: rerun.", "",
        "## Recipe (fixed across the runs of a regime)", "",
        f"- Knees: the C++ core's tensors at {config.input_size} px, core of `{config.core[:12]}` (v4's), as "
        "`tools/oac train` prepares them.",
        f"- Network: InceptionV3 from nsfwjs's weights (not knee-trained), frozen through `{config.cut}` (BatchNorm in "
        "inference mode), fresh OA and KL heads. nsfwjs's, not v4's trunk: v4's has learned from every training knee "
        "and would lend the small fractions what the rest of the data taught it.",
        "- Regimes: " + "; ".join(f"*{name}*: {what}" for name, what in REGIMES) + ".",
        f"- The trunk's output is cached as float16 per knee and view; the runs train on the views `{config.views}` "
        "(an epoch shows each training knee once, in one of them picked at random)"
        + ("; the validation knees' mirror images are cached to score as the shipped model runs (*mirror avg*)."
           if config.mirror_validation else "; *mirror avg* columns are empty: the validation mirrors were not cached "
           "(`--mirror-validation true` adds them)."),
        f"- AdamW, learning rates {config.lr_blocks:g} (block) and {config.lr_heads:g} (heads), weight decay "
        f"{config.weight_decay:g}, {config.warmup_steps} warm-up steps, one cosine over the run's epochs, "
        f"batch {config.batch_size}, dropout {config.dropout}, KL neighbour smoothing {config.kl_neighbour_smoothing}, "
        f"seed {config.seed}; `train.losses` with the subset's class weights.",
        "- Fractions are nested seeded subsets of the training knees (25% within 50% within 100%).",
        "- *as is*: the knee alone; *mirror avg*: the mean of its and its mirror image's logits, as the shipped model "
        "runs. AUC is OA (KL >= 2) against the rest; KL figures take the argmax grade; selection score AUC + QWK.", "",
        "## Speed: knees per second of one training step", "",
    ]
    if speed:
        lines += [
            f"From `{speed_path}` (`tools/oac learning-curves speed`): batch {speed['batch_size']}, {speed['threads']} "
            f"threads, after one warm-up step each; the settings take turns, {speed.get('rounds', 1)} round(s) of "
            f"{speed['repeats']} timed steps, median of the rounds; load average {speed['load_average_before']:.1f} "
            f"before and {speed['load_average_after']:.1f} after (two cores shared with others: compare within the "
            "table, measured back to back, not across days).", "",
            "| training step | knees/s |", "| --- | --- |",
            f"| whole network, augmented on the fly (`tools/oac train`, v4's recipe) | {speed['whole_network_augmented']} |",
            f"| frozen through `{config.cut}`, trunk recomputed every step | {speed['frozen_trunk_recomputed']} |",
            f"| frozen through `{config.cut}`, trunk from the cache (regime *top*) | {speed['cached_trunk']} |",
            f"| heads alone on the cached pooled features (regime *heads*) | {speed['cached_heads']} |", "",
        ]
    else:
        lines += ["Not measured yet (`tools/oac learning-curves speed`).", ""]
    build = meta.get("build_seconds", {})
    lines += ["The cache's one-off cost (from its `meta.json`; the trunk forward and the pooled features together):", "",
              "| view | knees done | seconds | knees/s |", "| --- | --- | --- | --- |"]
    for view, rows in meta["views"].items():
        seconds, done = build.get(view, 0.0), progress.get(view, 0)
        lines.append(f"| {view} | {done} of {len(rows)} | {seconds:.0f} | {done / seconds if seconds else 0:.1f} |")
    per_knee = np.prod(meta["shape"][1:]) * 2
    lines += ["", f"Each cached view of a knee is {meta['shape'][1:]} float16 ({per_knee / 1024:.0f} KiB) plus its "
              "2048 pooled features.", ""]

    best = {}
    for regime, what in REGIMES:
        lines += [f"## Regime *{regime}*: {what}", ""]
        for name, heads_only, fraction, epochs, changes in STUDY_RUNS:
            if not name.startswith(regime + "-"):
                continue
            if name not in histories:
                lines += [f"### {name}: not run", ""]
                continue
            history = histories[name]["history"]
            planned = histories[name]["config"]["epochs"]
            lines += [f"### {name}: {history[0]['train_knees']} training knees ({fraction:.0%}), {len(history)} of "
                      f"{planned} epochs" + (f"; lever `{json.dumps(changes)}`" if changes else ""), "",
                      "| epoch | train loss | AUC | QWK | KL acc | AUC mirror avg | QWK mirror avg | KL acc mirror avg | knees/s |",
                      "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
            shown = history if len(history) <= 15 else [e for e in history if e["epoch"] % (len(history) // 10) == 0
                                                        or e["epoch"] in (1, len(history))]
            for e in shown:
                a, m = e["as_is"], e.get("mirror_averaged", NOT_SCORED)
                lines.append(f"| {e['epoch']} | {e['train_loss']:.4f} | {fmt(a['auc'])} | {fmt(a['qwk'])} | {fmt(a['kl_acc'])} | "
                             f"{fmt(m['auc'])} | {fmt(m['qwk'])} | {fmt(m['kl_acc'])} | {e['knees_per_second']} |")
            lines.append("")
            if not changes:  # the fractions' comparison is of today's recipe; a lever has its own section
                best[name] = (max(history, key=lambda e: e["as_is"]["score"]), history, planned)
        rows = [name for name, *_, changes in STUDY_RUNS if name.startswith(regime + "-") and name in best and not changes]
        if rows:
            lines += [f"Best epoch of each fraction, regime *{regime}* (selected by AUC + QWK as is):", "",
                      "| run | knees | epochs run | best epoch | AUC | QWK | KL acc | AUC mirror avg | QWK mirror avg | KL acc mirror avg |",
                      "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
            for name in rows:
                b, history, _ = best[name]
                a, m = b["as_is"], b.get("mirror_averaged", NOT_SCORED)
                lines.append(f"| {name} | {b['train_knees']} | {len(history)} | {b['epoch']} | {fmt(a['auc'])} | {fmt(a['qwk'])} | "
                             f"{fmt(a['kl_acc'])} | {fmt(m['auc'])} | {fmt(m['qwk'])} | {fmt(m['kl_acc'])} |")
            lines += ["", f"What the curves of regime *{regime}* say (computed from the tables above):", ""]
            lines += verdicts(regime, best) + [""]
    lines += cross_regime_lines(best) + lever_lines(histories)
    validation = int((knees.split == "val").sum())
    lines += [
        "## Limits", "",
        "- The regimes are not the product's: v4 trains every layer from v3's knee-trained weights; here the layers "
        f"through `{config.cut}` keep nsfwjs's weights, so the figures sit below v4's (`models/head-study.md`) and "
        "answer for the layers that train, on features that never saw a knee.",
        "- An epoch curve is one run's validation after each epoch of one cosine schedule over the planned epochs, not "
        "separate runs of each length; the top regime's runs are short (see the epochs planned).",
        "- The fractions train for the same number of epochs, so a larger fraction also takes proportionally more "
        "optimiser steps; where the best epoch is the last, the data comparison mixes data with training length.",
        f"- One seed, {validation} validation knees: the standard error of a KL accuracy near 0.6 is about "
        f"{math.sqrt(0.6 * 0.4 / max(1, validation)):.3f} (binomial), so differences of that size are noise; the test split is "
        "not read.", "",
    ]
    out.write_text("\n".join(lines) + "\n")
    train.log(f"wrote {out}")


def cross_regime_lines(best):
    """What training mixed10 as well buys against more data for the heads alone (best epochs, as is)."""
    heads = best.get("heads-100")
    tops = [name for name in ("top-025", "top-050", "top-100") if name in best]
    if not heads or not tops:
        return []
    lines = ["## Across the regimes: a trained block against more data (best epochs, as is)", ""]
    h = heads[0]
    for name in tops:
        t = best[name][0]
        lines.append(f"- {name} ({t['train_knees']} knees, mixed10 and the heads trained, {len(best[name][1])} epoch(s)) "
                     f"against heads-100 ({h['train_knees']} knees, the heads alone): AUC {t['as_is']['auc'] - h['as_is']['auc']:+.3f}, "
                     f"QWK {t['as_is']['qwk'] - h['as_is']['qwk']:+.3f}, KL accuracy {t['as_is']['kl_acc'] - h['as_is']['kl_acc']:+.3f}.")
    return lines + [""]


def lever_lines(histories):
    """Each lever's best epoch against its base run's (same regime, fraction and epochs; today's recipe)."""
    levers = [(name, heads_only, fraction, changes) for name, heads_only, fraction, _, changes in STUDY_RUNS if changes]
    lines = ["## Recipe levers (each changes one setting; best epochs by AUC + QWK as is)", "",
             "| run | changes | against | best epoch | AUC | QWK | KL acc | KL acc mirror avg | ΔAUC | ΔQWK | ΔKL acc |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, heads_only, fraction, changes in levers:
        base = next(n for n, h, f, _, c in STUDY_RUNS if h == heads_only and f == fraction and not c)
        if name not in histories or base not in histories:
            lines.append(f"| {name} | `{json.dumps(changes)}` | {base} | not run | | | | | | | |")
            continue
        b = max(histories[name]["history"], key=lambda e: e["as_is"]["score"])
        o = max(histories[base]["history"], key=lambda e: e["as_is"]["score"])
        a, m = b["as_is"], b.get("mirror_averaged", NOT_SCORED)
        ran = f"{b['epoch']} (of {len(histories[name]['history'])} run, {histories[name]['config']['epochs']} planned)"
        lines.append(f"| {name} | `{json.dumps(changes)}` | {base} | {ran} | {fmt(a['auc'])} | {fmt(a['qwk'])} | "
                     f"{fmt(a['kl_acc'])} | {fmt(m['kl_acc'])} | {a['auc'] - o['as_is']['auc']:+.3f} | "
                     f"{a['qwk'] - o['as_is']['qwk']:+.3f} | {a['kl_acc'] - o['as_is']['kl_acc']:+.3f} |")
    return lines + [""]


def verdicts(regime, best):
    """Plain statements derived from the figures, so the conclusion is rerun with them."""
    said = []
    full = best.get(f"{regime}-100")
    if full:
        b, history, planned = full
        half = len(history) // 2
        early, late = max(e["as_is"]["score"] for e in history[:max(1, half)]), max(e["as_is"]["score"] for e in history)
        said.append(f"- Epochs, all training knees: best epoch {b['epoch']} of {len(history)} run ({planned} planned); "
                    f"the best AUC + QWK of the whole run is {late - early:+.3f} against the best of its first "
                    f"{max(1, half)} epoch(s)." + (" The best epoch is the last one run: the curve had not turned."
                                                   if b["epoch"] == len(history) else " The best epoch came before the last: the curve had flattened or turned."))
    for small, large in (("025", "050"), ("050", "100"), ("025", "100")):
        s, l = best.get(f"{regime}-{small}"), best.get(f"{regime}-{large}")
        if s and l:
            s, l = s[0], l[0]
            said.append(f"- Data, {s['train_knees']} -> {l['train_knees']} training knees (best epochs): AUC "
                        f"{l['as_is']['auc'] - s['as_is']['auc']:+.3f}, QWK {l['as_is']['qwk'] - s['as_is']['qwk']:+.3f}, "
                        f"KL accuracy {l['as_is']['kl_acc'] - s['as_is']['kl_acc']:+.3f} (as is).")
    return said or ["- No run of this regime has finished an epoch yet."]


# ----------------------------------------------------------------------------------------------

def main(argv=None):
    config, args = parse_args(argv)
    torch.set_num_threads(config.threads)
    Path(config.work).mkdir(parents=True, exist_ok=True)
    train.LOG_FILE = Path(config.work) / "study.log"
    knees, spec = load_study_knees(config, args.datasets)
    train.log(f"knees: train {(knees.split == 'train').sum()}, val {(knees.split == 'val').sum()}")
    cache_dir = build_cache(config, knees, spec) if args.command in ("cache", "study") else cache_folder(config, knees)
    speed_path = Path(config.work) / "runs" / "speed.json"
    if args.command == "speed" or (args.command == "study" and not speed_path.exists()):
        speed = measure_speed(config, knees, spec, cache_dir)
        speed_path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(speed_path, json.dumps(speed, indent=1))
        train.log(f"speed {json.dumps(speed)}")
    if args.command == "train":
        train_run(config, knees, cache_dir)
    if args.command == "study":
        for name, heads_only, fraction, epochs, changes in STUDY_RUNS:
            if not name.startswith(args.runs):
                continue
            train_run(dataclasses.replace(config, **{"run": name, "heads_only": heads_only, "train_fraction": fraction,
                                                     "epochs": epochs, **changes}), knees, cache_dir)
            train.LOG_FILE = Path(config.work) / "study.log"
            report(config, knees, cache_dir, args.out)
    if args.command == "report":
        report(config, knees, cache_dir, args.out)


if __name__ == "__main__":
    main()
