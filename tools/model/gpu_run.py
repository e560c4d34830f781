"""Train on a lent GPU machine in one call: the knee pack that travels there, the run, and its weights back.

The device tool runs one command over a copy of the working tree (at most 64 MiB with the ignored paths it
carries; ../shared/datasets stays behind) and returns the files left in $OUT (at most 16 MiB each). So:

  pack     train.py's knees for a run config (the core it pins, its split), as JPEGs in build/gpu-pack/
           (tools/model/knee_pack.py); carried to the GPU machine with `carry: ["build/gpu-pack"]`
  compare  the reference model on the validation knees, from the pack and from the exact tensors: what the
           JPEG step changes (models/gpu-pack.md)
  train    train.py on the pack (--device as train.py's), then the selected weights as float16 parts of at most
           15 MiB, the weights' manifest, train.log and summary.json into --out ($OUT on the GPU machine)
  join     those parts back into a checkpoint that `tools/oac export` takes
  validate that checkpoint on the exact validation tensors beside the pack's scores it was selected on: what
           training on the pack cost the trained model

usage (tools/oac gpu-run ...):
  pack    [--config tools/model/runs/gpu-h100.json] [--out build/gpu-pack] [--quality 70] [--work build]
  compare [--config ...] [--pack build/gpu-pack] [--model models/reference/oa-inceptionv3-fp32.onnx]
          [--report models/gpu-pack.md] [--work build]
  train   --out DIR [--config ...] [--pack build/gpu-pack] [train.py flags, e.g. --device cpu --epochs 1]
  join    DIR --checkpoint build/train/gpu-h100/best.pt
  validate CHECKPOINT [--config ...] [--work build]
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from lib.paths import REPO_ROOT
from model import train
from model.export_onnx import load_checkpoint, run_onnx
from model.knee_pack import LABEL_FIELDS, PackError, read_pack, write_pack

GPU_CONFIG = REPO_ROOT / "tools" / "model" / "runs" / "gpu-h100.json"
PACK_DIR = REPO_ROOT / "build" / "gpu-pack"
REFERENCE_MODEL = REPO_ROOT / "models" / "reference" / "oa-inceptionv3-fp32.onnx"
REPORT = REPO_ROOT / "models" / "gpu-pack.md"
PART_BYTES = 15 * 2 ** 20  # under the device's 16 MiB a returned file
TRAVEL_LIMIT = 64 * 2 ** 20  # the working tree and the carried paths, together
WEIGHTS_MANIFEST = "weights.json"
RUN_LOGS = ("train.log", "summary.json")
ONNX_CHUNK = 128  # knees per onnxruntime call: the chunk's activations stay a few GB
BOOTSTRAP_DRAWS = 1000


def run_config(config_file, extra=()):
    config, datasets, *_ = train.parse_args(["--config", str(config_file), *extra])
    return config, datasets


def travelling_bytes():
    """Bytes of the working tree that a device call sends: the tracked and the untracked-but-not-ignored files
    present here (a sparse checkout leaves some tracked files out)"""
    listed = subprocess.run(["git", "-C", str(REPO_ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            check=True, capture_output=True).stdout.decode().split("\0")
    return sum(path.stat().st_size for path in (REPO_ROOT / name for name in set(listed) if name) if path.is_file())


def pack(args):
    config, datasets = run_config(args.config)
    knees, spec = train.prepared_knees(config, datasets, args.work / "cache")
    split_file = REPO_ROOT / config.split
    meta = {"made_by": f"tools/oac gpu-run pack --config {os.path.relpath(args.config.resolve(), REPO_ROOT)}",
            "protocol": config.protocol, "split": config.split,
            "split_sha256": hashlib.sha256(split_file.read_bytes()).hexdigest(), "core": config.core,
            "mean": list(spec.preprocess.mean), "std": list(spec.preprocess.std)}
    meta = write_pack(args.out, knees.planes, {name: getattr(knees, name) for name in LABEL_FIELDS}, meta, args.quality)
    print(f"gpu-run: {meta['knees']} knees, {meta['bytes'] / 2 ** 20:.1f} MiB of JPEG (quality {args.quality}) "
          f"-> {args.out}")
    tree = travelling_bytes()
    pack_bytes = sum(f.stat().st_size for f in Path(args.out).iterdir())
    verdict = "fits" if tree + pack_bytes <= TRAVEL_LIMIT else "is OVER the limit: leave tracked files out (tools/README.md)"
    print(f"gpu-run: a device call would send {tree / 2 ** 20:.1f} MiB of working tree + {pack_bytes / 2 ** 20:.1f} MiB "
          f"of pack = {(tree + pack_bytes) / 2 ** 20:.1f} MiB of the {TRAVEL_LIMIT // 2 ** 20} MiB allowed: {verdict}")


def reference_outputs(model_file, planes, spec):
    """OA logit and KL logits of the exported model in onnxruntime-node, as the CLI runs it"""
    oa_logit, kl_logits = [], []
    for start in range(0, len(planes), ONNX_CHUNK):
        chunk = torch.from_numpy(planes[start:start + ONNX_CHUNK].astype(np.float32))[:, None]
        out = run_onnx("node", model_file, train.to_model_input(chunk, spec).numpy())
        oa_logit.append(out["oa_logit"])
        kl_logits.append(out["kl_logits"])
    return np.concatenate(oa_logit), np.concatenate(kl_logits)


def paired_bootstrap(exact, packed, oa, kl, seed=0):
    """95% intervals of the pack's AUC and QWK minus the exact tensors', knees resampled alike for both"""
    rng = np.random.default_rng(seed)
    differences = {"auc": [], "qwk": []}
    for _ in range(BOOTSTRAP_DRAWS):
        draw = rng.integers(0, len(oa), len(oa))
        exact_scores, packed_scores = (train.scores_of(r["oa_logit"][draw], r["kl_logits"][draw], oa[draw], kl[draw])
                                       for r in (exact, packed))
        for name in differences:
            differences[name].append(packed_scores[name] - exact_scores[name])
    return {name: np.percentile(values, [2.5, 97.5]) for name, values in differences.items()}


def compare(args):
    config, datasets = run_config(args.config)
    knees, _ = train.prepared_knees(config, datasets, args.work / "cache")
    packed, pack_spec, _ = train.knees_from_pack(args.pack, config)
    if not np.array_equal(packed.row, knees.row):
        sys.exit(f"gpu-run: the pack {args.pack} holds other knees than {config.split} gives; write it again")
    val = knees.split == "val"
    sources = {"exact tensors": knees.planes[val], "knee pack": packed.planes[val]}
    results = {}
    for name, planes in sources.items():
        train.log(f"scoring {val.sum()} validation knees from the {name} with {args.model.name}")
        oa_logit, kl_logits = reference_outputs(args.model, planes, pack_spec)
        results[name] = {"oa_logit": oa_logit, "kl_logits": kl_logits,
                         **train.scores_of(oa_logit, kl_logits, knees.oa[val], knees.kl[val])}
    exact, packed_result = results["exact tensors"], results["knee pack"]
    probability = lambda r: 1.0 / (1.0 + np.exp(-r["oa_logit"].astype(np.float64)))
    difference = np.abs(probability(packed_result) - probability(exact))
    agreement = (exact["kl_logits"].argmax(1) == packed_result["kl_logits"].argmax(1)).mean()
    interval = paired_bootstrap(exact, packed_result, knees.oa[val], knees.kl[val])
    pixel_error = np.sqrt(np.mean((sources["knee pack"].astype(np.float64) - sources["exact tensors"]) ** 2))
    meta = json.loads((Path(args.pack) / "pack.json").read_text())
    lines = [
        "# The GPU training pack on validation",
        "",
        f"The knee pack (`tools/model/knee_pack.py`) stores train.py's {meta['knees']} train and validation knees of "
        f"`{config.split}` (core {str(meta['core'])[:12]}) as 8-bit grey JPEGs at quality {meta['jpeg_quality']}: "
        f"{meta['bytes'] / 2 ** 20:.1f} MiB, against {knees.planes.nbytes / 2 ** 20:.0f} MiB of float16 tensors. "
        f"{args.model.relative_to(REPO_ROOT)} (onnxruntime-node) scored the {val.sum()} validation knees from each:",
        "",
        "| knees from | AUC (OA) | QWK | KL accuracy |",
        "| --- | --- | --- | --- |",
        *[f"| {name} | {r['auc']:.4f} | {r['qwk']:.4f} | {r['kl_acc']:.4f} |" for name, r in results.items()],
        "",
        f"|ΔP(OA)| per knee: max {difference.max():.4f}, mean {difference.mean():.4f}, median "
        f"{np.median(difference):.4f}; the argmax KL grade agrees on {agreement:.3f} of the knees.",
        "",
        f"Pack minus exact, 95% paired bootstrap interval over the knees ({BOOTSTRAP_DRAWS} draws): AUC "
        f"[{interval['auc'][0]:+.4f}, {interval['auc'][1]:+.4f}], QWK [{interval['qwk'][0]:+.4f}, {interval['qwk'][1]:+.4f}].",
        "",
        f"The pack's pixels differ from the tensors' by {pixel_error:.4f} RMS (grey in [0, 1]). These figures are a "
        "model trained on the exact tensors reading JPEG knees. A run trained on the pack reads such knees in "
        f"training anyway: aug_jpeg re-compresses {config.aug_jpeg:.0%} of its crops at quality 40-95, and every crop "
        "gets Gaussian noise of a standard deviation drawn from 0-0.03. Its epoch is selected on the pack's "
        "validation knees; `tools/oac gpu-run validate` scores a returned run on the exact tensors.",
        "",
        "Rerun: `tools/oac gpu-run pack && tools/oac gpu-run compare` (the pack is written to build/gpu-pack/).",
    ]
    args.report.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def fp16_weights(checkpoint):
    """The checkpoint with every floating-point model tensor in float16 (the OOD gate stays as it is: small)"""
    model = {name: tensor.half() if tensor.is_floating_point() else tensor for name, tensor in checkpoint["model"].items()}
    return {**checkpoint, "model": model}


def write_weight_parts(checkpoint_file, out):
    """Split the checkpoint, in float16, into parts of at most PART_BYTES, with a manifest to join them by."""
    buffer = io.BytesIO()
    torch.save(fp16_weights(torch.load(checkpoint_file, map_location="cpu")), buffer)
    data = buffer.getvalue()
    parts = [f"weights.part{index:02d}" for index in range(math.ceil(len(data) / PART_BYTES))]
    for index, name in enumerate(parts):
        (out / name).write_bytes(data[index * PART_BYTES:(index + 1) * PART_BYTES])
    manifest = {"parts": parts, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                "checkpoint": checkpoint_file.name}
    (out / WEIGHTS_MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def read_weight_parts(folder):
    """The checkpoint that write_weight_parts split, its model tensors back in float32; or an error message."""
    folder = Path(folder)
    if not (folder / WEIGHTS_MANIFEST).is_file():
        return None, f"{folder} has no {WEIGHTS_MANIFEST}: not the output of `tools/oac gpu-run train`"
    manifest = json.loads((folder / WEIGHTS_MANIFEST).read_text())
    missing = [name for name in manifest["parts"] if not (folder / name).is_file()]
    if missing:
        return None, f"{folder}: parts {missing} missing"
    data = b"".join((folder / name).read_bytes() for name in manifest["parts"])
    if len(data) != manifest["bytes"] or hashlib.sha256(data).hexdigest() != manifest["sha256"]:
        return None, f"{folder}: the parts joined are not the weights the manifest describes (truncated or mixed)"
    checkpoint = torch.load(io.BytesIO(data), map_location="cpu")
    model = {name: tensor.float() if tensor.is_floating_point() else tensor for name, tensor in checkpoint["model"].items()}
    return {**checkpoint, "model": model}, None


def train_and_return(args, train_flags):
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train_args = ["--config", str(args.config), "--pack", str(args.pack), "--fresh", *train_flags]
    config, *_, options = train.parse_args(train_args)
    train.main(train_args)
    run_dir = train.work_folder(options) / "train" / config.run
    manifest = write_weight_parts(run_dir / "best.pt", out)
    for name in RUN_LOGS:
        shutil.copy(run_dir / name, out / name)
    print(f"gpu-run: {manifest['bytes'] / 2 ** 20:.1f} MiB of float16 weights in {len(manifest['parts'])} parts -> {out}")


def join(args):
    checkpoint, error = read_weight_parts(args.parts)
    missing_logs = [name for name in RUN_LOGS if not (args.parts / name).is_file()]
    if error or missing_logs:
        sys.exit(f"gpu-run: {error or f'{args.parts} lacks the run logs {missing_logs}'}")
    run_dir = args.checkpoint.parent
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, args.checkpoint)
    # beside the checkpoint as in a run folder: the exporter reads the history into the card
    for name in RUN_LOGS:
        shutil.copy(args.parts / name, run_dir / name)
    history = json.loads((args.parts / "summary.json").read_text())["history"]
    (run_dir / "history.json").write_text(json.dumps(history, indent=1))
    print(f"gpu-run: {args.parts} -> {args.checkpoint} (export: tools/oac export {args.checkpoint} --out MODEL.onnx)")


def validate(args):
    config, datasets = run_config(args.config)
    knees, spec = train.prepared_knees(config, datasets, args.work / "cache")
    model, _, _ = load_checkpoint(args.checkpoint)
    scores = {"knee pack (the run's own validation)": torch.load(args.checkpoint, map_location="cpu")["validation"],
              "exact tensors": train.validation_score(model, knees, spec)}
    print("| validation knees from | AUC (OA) | QWK | KL accuracy |\n| --- | --- | --- | --- |")
    for name, s in scores.items():
        print(f"| {name} | {s['auc']:.4f} | {s['qwk']:.4f} | {s['kl_acc']:.4f} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("pack", "compare", "train", "validate"):
        command = commands.add_parser(name)
        command.add_argument("--config", type=Path, default=GPU_CONFIG)
        if name != "train":  # train.py takes its own --work
            command.add_argument("--work", type=Path, default=REPO_ROOT / "build", help="train.py's --work (its cache)")
        if name == "pack":
            command.add_argument("--out", type=Path, default=PACK_DIR)
            command.add_argument("--quality", type=int, default=70)
        elif name != "validate":
            command.add_argument("--pack", type=Path, default=PACK_DIR)
    commands.choices["compare"].add_argument("--model", type=Path, default=REFERENCE_MODEL)
    commands.choices["compare"].add_argument("--report", type=Path, default=REPORT)
    commands.choices["train"].add_argument("--out", required=True, help="where the weights and logs go ($OUT)")
    commands.choices["validate"].add_argument("checkpoint", type=Path, help="what `gpu-run join` wrote")
    joining = commands.add_parser("join")
    joining.add_argument("parts", type=Path, help="the folder `gpu-run train --out` filled")
    joining.add_argument("--checkpoint", type=Path, required=True)
    args, rest = parser.parse_known_args(argv)
    if rest and args.command != "train":
        parser.error(f"unrecognised arguments: {' '.join(rest)}")
    try:
        if args.command == "train":
            train_and_return(args, rest)
        else:
            {"pack": pack, "compare": compare, "join": join, "validate": validate}[args.command](args)
    except PackError as error:
        sys.exit(f"gpu-run: {error}")


if __name__ == "__main__":
    main()
