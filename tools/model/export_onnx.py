"""Export a trained OAInceptionV3 checkpoint (or an untrained placeholder) to the product's ONNX model.

Graph contract (wasm/README.md): input `image` float32 [N,3,S,S] (dynamic N); outputs `oa_logit` [N],
`kl_logits` [N,5], `features` [N,2048], `cam` [N,h,w], `ood_score` [N] (OodGate: the Mahalanobis distance of
the features in a PCA subspace of training knees, combined with their energy outside that subspace).

BatchNorms are folded into the convolutions. With `--weights int8` (default) every backbone convolution
weight is stored in one byte per value and rebuilt as fp32 when the model loads, feeding an ordinary fp32
Conv (activations stay fp32; ~22 MB instead of ~87 MB):
  - weights with at most 256 distinct values (nsfwjs ships uint8-quantised weights, so every layer that
    training left frozen) are stored exactly: uint8 indices into a value table, times the folded BatchNorm
    gain (Cast, Gather, Mul);
  - the others as symmetric int8 per output channel (scale = max|w_o| / 127) through DequantizeLinear
    (opset 13).
The heads, the CAM and the OOD projection are small and stay fp32.

With `--mirror-average` the graph runs each knee together with its left-right mirror image and averages their
logits and CAMs (inception.mirror_averaged); the contract is unchanged, the compute doubles.

Checkpoint format (tools/model/train.py):
  {"model": OAInceptionV3 state dict, "config": {"input_size": S, "dropout": p, ...},
   "ood": {"mean": float32[2048], "projection": float32[2048,k], "component_weights": float32[k],
           "residual_scale": float}}  (checkpoints without the last two get the plain Mahalanobis distance)

usage:
  export_onnx.py CHECKPOINT --out MODEL.onnx [--card CARD.json] [--weights int8|fp32] [--mirror-average]
                [--compare-fp32 IMAGES]
  export_onnx.py --untrained [--input-size S] [--out MODEL.onnx] [--card CARD.json] ...
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import hashlib
import json
import os
import subprocess
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper
from torch import nn

from lib.numeric import sigmoid, softmax
from lib.card import insert_after, load_card, save_card
from lib.paths import REPO_ROOT
from model.inception import FEATURE_CHANNELS, OAInceptionV3, mirror_averaged
from model.parity_inputs import knee_batch

ONNX_RUNNER = REPO_ROOT / "tools" / "lib" / "onnx_run.mjs"
OPSET = 13
INPUT_NAME = "image"
OUTPUT_NAMES = ("oa_logit", "kl_logits", "features", "cam", "ood_score")
UNTRAINED_NAME = "oa-inceptionv3-untrained"
UNTRAINED_OUT = REPO_ROOT / "build" / "models" / f"{UNTRAINED_NAME}.onnx"
UNTRAINED_OOD_DIMENSIONS = 16
CARD_FILE_FIELDS = ("model_file", "sha256", "bytes")
MIRROR_AVERAGE_MARK = "mirror_average"  # metadata key: "true" when the graph averages each knee with its mirror image


@dataclasses.dataclass
class OodGate:
    """ood_score = sqrt(sum_i w_i z_i^2 + s ||d||^2) with d = features - mean and z = d @ projection.

    The projection whitens the top-k principal components of training-knee features, so with w = 1 and
    s = 0 this is their Mahalanobis distance. tools/model/train.py sets s to weigh the energy outside the subspace,
    ||d||^2 - ||V^T d||^2, and w_i = 1 - s * lambda_i, because ||V^T d||^2 = sum_i lambda_i z_i^2: the
    subspace distance plus the residual without storing V.
    """
    mean: torch.Tensor               # [2048]
    projection: torch.Tensor         # [2048, k]
    component_weights: torch.Tensor  # [k]
    residual_scale: float

    @staticmethod
    def mahalanobis(mean: torch.Tensor, projection: torch.Tensor) -> "OodGate":
        return OodGate(mean, projection, torch.ones(projection.shape[1]), 0.0)

    def score(self, features: torch.Tensor) -> torch.Tensor:
        centred = features - self.mean
        whitened = centred @ self.projection
        squared = (whitened * whitened) @ self.component_weights + self.residual_scale * (centred * centred).sum(1)
        return torch.sqrt(torch.clamp(squared, min=0.0))


class DeployedModel(nn.Module):
    """OAInceptionV3 plus the OOD score, returning the contract's outputs as a tuple in OUTPUT_NAMES order;
    with mirror_average, each knee's outputs are averaged with its mirror image's (inception.mirror_averaged)."""

    def __init__(self, model: OAInceptionV3, ood: OodGate, mirror_average: bool = False) -> None:
        super().__init__()
        self.model = model
        self.ood = ood  # its tensors become the graph's constants when traced
        self.mirror_average = mirror_average

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = mirror_averaged(self.model, image) if self.mirror_average else self.model(image)
        out["ood_score"] = self.ood.score(out["features"])
        return tuple(out[name] for name in OUTPUT_NAMES)


def load_checkpoint(path: Path) -> tuple[OAInceptionV3, OodGate, int]:
    """(model, OOD gate, input size) from a training checkpoint."""
    checkpoint = torch.load(path, map_location="cpu")
    missing = [key for key in ("model", "config", "ood") if key not in checkpoint]
    if missing:
        raise ValueError(f"{path} is not a training checkpoint: it lacks {missing} (expected keys model, config, ood)")
    config = checkpoint["config"]
    if "input_size" not in config:
        raise ValueError(f"{path}: config has no input_size")
    model = OAInceptionV3(dropout=config.get("dropout", 0.0))
    model.load_state_dict(checkpoint["model"])
    mean = torch.as_tensor(np.asarray(checkpoint["ood"]["mean"]), dtype=torch.float32)
    projection = torch.as_tensor(np.asarray(checkpoint["ood"]["projection"]), dtype=torch.float32)
    if mean.shape != (FEATURE_CHANNELS,) or projection.dim() != 2 or projection.shape[0] != FEATURE_CHANNELS:
        raise ValueError(f"{path}: ood mean must be [{FEATURE_CHANNELS}] and projection [{FEATURE_CHANNELS},k], "
                         f"got {tuple(mean.shape)} and {tuple(projection.shape)}")
    gate = OodGate.mahalanobis(mean, projection)
    if "residual_scale" in checkpoint["ood"]:
        gate.component_weights = torch.as_tensor(np.asarray(checkpoint["ood"]["component_weights"]), dtype=torch.float32)
        gate.residual_scale = float(checkpoint["ood"]["residual_scale"])
    return model, gate, int(config["input_size"])


def untrained_placeholder(seed: int = 0) -> tuple[OAInceptionV3, OodGate]:
    """A randomly initialised model with a random OOD gate, for wiring and parity tests only."""
    torch.manual_seed(seed)
    model = OAInceptionV3()
    for module in model.backbone.layers.values():
        if isinstance(module, nn.Conv2d):
            # He initialisation keeps activations O(1) through the 94 convolutions in eval mode (PyTorch's
            # default shrinks them several-fold per layer), so parity checks compare real numbers, not zeros.
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    projection = torch.randn(FEATURE_CHANNELS, UNTRAINED_OOD_DIMENSIONS) / FEATURE_CHANNELS ** 0.5
    # Both terms of the score in use, so the parity tests exercise the whole graph.
    gate = OodGate(torch.zeros(FEATURE_CHANNELS), projection, torch.full((UNTRAINED_OOD_DIMENSIONS,), 0.5),
                   1.0 / FEATURE_CHANNELS)
    return model, gate


def batch_norm_gain(norm: nn.BatchNorm2d) -> torch.Tensor:
    """Per-channel factor 1/sqrt(var + eps) that folding multiplies into the preceding convolution (float32)."""
    return torch.rsqrt(norm.running_var + norm.eps).detach()


def fold_batch_norms(model: OAInceptionV3) -> OAInceptionV3:
    """An eval-mode copy whose convolutions carry their BatchNorm: weight * g, bias beta - mean * g.

    Folding is done in float32 so that a weight rebuilt in the graph as (stored weight) * g is bit-identical.
    """
    folded = copy.deepcopy(model).eval()
    layers = folded.backbone.layers
    for layer in folded.backbone.graph.values():
        if layer.kind != "batch_normalization":
            continue
        conv, norm = layers[layer.inputs[0]], layers[layer.name]
        gain = batch_norm_gain(norm)
        fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, bias=True)
        with torch.no_grad():
            fused.weight.copy_(conv.weight * gain[:, None, None, None])
            fused.bias.copy_(norm.bias - norm.running_mean * gain)
        layers[layer.inputs[0]] = fused
        layers[layer.name] = nn.Identity()
    return folded


@dataclasses.dataclass
class Int8Weight:
    """Folded weight ~ q * scale[o]: symmetric int8 per output channel, expanded by DequantizeLinear."""
    q: torch.Tensor
    scale: torch.Tensor


@dataclasses.dataclass
class TableWeight:
    """Folded weight == table[indices] * gain[o] exactly: for weights with at most 256 distinct values, as
    nsfwjs's (uint8-quantised per tensor) are for every layer that training left frozen."""
    indices: torch.Tensor
    table: torch.Tensor
    gain: torch.Tensor


def quantize_per_output_channel(weight: torch.Tensor, levels: int = 127) -> Int8Weight:
    """Symmetric int8 per output channel: weight ~ q * scale[o], q in [-levels, levels] (zero point 0)."""
    flat = weight.detach().reshape(weight.shape[0], -1)
    scale = flat.abs().amax(dim=1) / float(levels)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    q = torch.round(flat / scale[:, None]).clamp(-levels, levels).to(torch.int8)
    return Int8Weight(q.reshape(weight.shape), scale)


def compact_weight(weight: torch.Tensor, gain: torch.Tensor) -> Int8Weight | TableWeight:
    """One byte per value for a convolution whose unfolded weight is `weight` and BatchNorm gain `gain`."""
    table, indices = torch.unique(weight.detach(), return_inverse=True)
    if len(table) <= 256:
        return TableWeight(indices.to(torch.uint8), table, gain)
    return quantize_per_output_channel(weight.detach() * gain[:, None, None, None])


def expand(stored: Int8Weight | TableWeight) -> torch.Tensor:
    """The float32 weight the ONNX graph rebuilds from `stored` (same float32 operations, so the same bits)."""
    if isinstance(stored, TableWeight):
        return stored.table[stored.indices.long()] * stored.gain[:, None, None, None]
    return stored.q.float() * stored.scale[:, None, None, None]


def prepare_for_export(model: OAInceptionV3, ood: OodGate, weights: str,
                       mirror_average: bool = False) -> tuple[DeployedModel, dict[str, Int8Weight | TableWeight]]:
    """The module the ONNX graph computes, and the one-byte storage of its backbone convolution weights.

    With int8 weights the module's convolutions already hold the expanded weights, so running it in
    PyTorch gives what ONNX Runtime gives, up to float summation order.
    """
    if weights not in ("int8", "fp32"):
        raise ValueError(f"weights must be int8 or fp32, not {weights!r}")
    deployed = DeployedModel(fold_batch_norms(model), ood, mirror_average).eval()
    stored = {}
    if weights == "fp32":
        return deployed, stored
    for layer in model.backbone.graph.values():
        if layer.kind != "batch_normalization":
            continue
        conv_name = layer.inputs[0]
        compact = compact_weight(model.backbone.layers[conv_name].weight, batch_norm_gain(model.backbone.layers[layer.name]))
        with torch.no_grad():
            deployed.model.backbone.layers[conv_name].weight.copy_(expand(compact))
        stored[f"model.backbone.layers.{conv_name}.weight"] = compact
    return deployed, stored


def store_compact_weights(model_proto: onnx.ModelProto, stored: dict[str, Int8Weight | TableWeight]) -> None:
    """Replace each Conv weight initializer W named in `stored` by its one-byte form and the nodes that rebuild W:
    DequantizeLinear(q, scale, 0, axis=0) for Int8Weight, Mul(Gather(table, Cast(indices)), gain) for TableWeight."""
    graph = model_proto.graph
    initializers = {initializer.name: initializer for initializer in graph.initializer}
    remaining = dict(stored)
    expand_nodes = []
    for node in graph.node:
        name = node.input[1] if node.op_type == "Conv" else None
        if name not in remaining:
            continue
        compact = remaining.pop(name)
        graph.initializer.remove(initializers[name])
        if isinstance(compact, Int8Weight):
            graph.initializer.extend([
                numpy_helper.from_array(compact.q.numpy(), f"{name}.int8"),
                numpy_helper.from_array(compact.scale.numpy(), f"{name}.scale"),
                numpy_helper.from_array(np.zeros(len(compact.scale), np.int8), f"{name}.zero_point"),
            ])
            expand_nodes.append(helper.make_node("DequantizeLinear", [f"{name}.int8", f"{name}.scale", f"{name}.zero_point"],
                                                 [name], name=f"{name}.dequantize", axis=0))
        else:
            graph.initializer.extend([
                numpy_helper.from_array(compact.indices.numpy(), f"{name}.indices"),
                numpy_helper.from_array(compact.table.numpy(), f"{name}.table"),
                numpy_helper.from_array(compact.gain.numpy().reshape(-1, 1, 1, 1), f"{name}.gain"),
            ])
            expand_nodes += [
                helper.make_node("Cast", [f"{name}.indices"], [f"{name}.indices_int32"], name=f"{name}.cast", to=onnx.TensorProto.INT32),
                helper.make_node("Gather", [f"{name}.table", f"{name}.indices_int32"], [f"{name}.unfolded"], name=f"{name}.gather", axis=0),
                helper.make_node("Mul", [f"{name}.unfolded", f"{name}.gain"], [name], name=f"{name}.fold"),
            ]
    if remaining:
        raise ValueError(f"{len(remaining)} compacted weights are not Conv weights in the exported graph, e.g. {next(iter(remaining))}")
    nodes = expand_nodes + list(graph.node)  # initializer-only nodes first keeps the graph topologically sorted
    del graph.node[:]
    graph.node.extend(nodes)


def export(model: OAInceptionV3, ood: OodGate, input_size: int, out: Path, weights: str = "int8",
           name: str = "oa-inceptionv3", untrained: bool = False, mirror_average: bool = False) -> Path:
    deployed, stored = prepare_for_export(model, ood, weights, mirror_average)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        traced = Path(scratch) / "traced.onnx"
        with warnings.catch_warnings():  # the input-shape check in forward() is constant for a trace, as intended
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            torch.onnx.export(deployed, torch.zeros(1, 3, input_size, input_size), str(traced), opset_version=OPSET,
                              input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
                              dynamic_axes={n: {0: "N"} for n in (INPUT_NAME, *OUTPUT_NAMES)})
        model_proto = onnx.load(str(traced))
        with torch.no_grad():
            sample_outputs = deployed(torch.zeros(1, 3, input_size, input_size))
    # The trace leaves reshaped outputs (mirror averaging) with symbolic sizes; every size but N is fixed.
    for output, value in zip(model_proto.graph.output, sample_outputs):
        for dim, size in zip(output.type.tensor_type.shape.dim[1:], value.shape[1:]):
            dim.dim_value = size
    store_compact_weights(model_proto, stored)
    model_proto.graph.name = name
    model_proto.doc_string = ("UNTRAINED PLACEHOLDER: random weights, predictions are meaningless. " if untrained else "") + \
        "Knee osteoarthritis classifier: Keras InceptionV3 (Szegedy et al. 2016) with OA and KL heads; provenance and credits are in the model card."
    metadata = {"name": name, "untrained": str(untrained).lower(), "input_size": str(input_size), "weights": weights,
                MIRROR_AVERAGE_MARK: str(mirror_average).lower()}
    for key, value in metadata.items():
        model_proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model_proto)
    onnx.save(model_proto, str(out))
    return out


def update_card(card: Path, model_file: Path) -> None:
    """Set the card's model_file (relative to the card), sha256 and bytes; every other field stays as it is."""
    fields = load_card(card)
    missing = [name for name in CARD_FILE_FIELDS if name not in fields]
    if missing:
        raise ValueError(f"{card}: no {', '.join(missing)} field to fill in; edit the card by hand")
    data = model_file.read_bytes()
    fields.update(model_file=Path(os.path.relpath(model_file, card.parent)).as_posix(),
                  sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    save_card(card, fields)


def test_time_description(mirror_average: bool) -> str:
    """The card's `test_time`: what one inference of the graph computes for each knee."""
    if mirror_average:
        return ("each knee and its left-right mirror image in one batch: oa_logit, kl_logits and the CAM (turned back) "
                "are their means; features and ood_score are the knee's as given (export_onnx.py --mirror-average)")
    return "the knee as given, once"


def training_record(checkpoint_file: Path) -> dict:
    """The card's `training`: the run's whole configuration, the command that reproduces it, the validation
    scores it was selected on and its per-epoch history, all read from the run (never typed in)."""
    checkpoint = torch.load(checkpoint_file, map_location="cpu")
    config = checkpoint["config"]
    run_config = REPO_ROOT / "tools" / "model" / "runs" / f"{config['run']}.json"
    history_file = checkpoint_file.parent / "history.json"
    history = json.loads(history_file.read_text()) if history_file.exists() else []
    return {
        "command": (f"tools/oac train --config {run_config.relative_to(REPO_ROOT).as_posix()}" if run_config.exists()
                    else "tools/oac train " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in config.items())),
        "config": config,
        "selected_on": {k: round(v, 4) if isinstance(v, float) else v for k, v in checkpoint["validation"].items()},
        "validation_history": [f"epoch {h['epoch']}: AUC {h['auc']:.3f}, QWK {h['qwk']:.3f}, KL accuracy "
                               f"{h['kl_acc']:.3f}" for h in history],
        "selection": "the epoch with the best validation AUC (OA, KL >= 2 vs the rest) + QWK (argmax KL grade)",
        "hardware": "2 CPU cores, shared",
    }


def run_onnx(backend: str, model_file: Path, inputs: np.ndarray) -> dict[str, np.ndarray]:
    """Outputs of onnxruntime-node (backend "node") or onnxruntime-web's WASM backend ("web") on `inputs`."""
    with tempfile.TemporaryDirectory() as scratch:
        np.save(Path(scratch) / "inputs.npy", np.ascontiguousarray(inputs, dtype=np.float32))
        subprocess.run(["node", str(ONNX_RUNNER), backend, str(model_file), str(Path(scratch) / "inputs.npy"), scratch], check=True)
        return {name: np.load(Path(scratch) / f"{name}.npy") for name in OUTPUT_NAMES}


def compare_int8_with_fp32(model: OAInceptionV3, ood: OodGate, input_size: int, int8_file: Path,
                           images: int, mirror_average: bool) -> dict[str, float]:
    """How far the int8 export is from an fp32 export, both run by onnxruntime-node on real knees."""
    inputs = knee_batch(input_size, images)
    with tempfile.TemporaryDirectory() as scratch:
        fp32_file = export(model, ood, input_size, Path(scratch) / "fp32.onnx", weights="fp32",
                           mirror_average=mirror_average)
        reference = run_onnx("node", fp32_file, inputs)
    int8 = run_onnx("node", int8_file, inputs)
    features_error = np.linalg.norm(int8["features"] - reference["features"], axis=1) / np.linalg.norm(reference["features"], axis=1)
    return {
        "images": len(inputs),
        "max_abs_oa_logit": float(np.abs(int8["oa_logit"] - reference["oa_logit"]).max()),
        "max_abs_p_oa": float(np.abs(sigmoid(int8["oa_logit"]) - sigmoid(reference["oa_logit"])).max()),
        "max_abs_kl_prob": float(np.abs(softmax(int8["kl_logits"]) - softmax(reference["kl_logits"])).max()),
        "max_relative_l2_features": float(features_error.max()),
        "max_relative_ood_score": float((np.abs(int8["ood_score"] - reference["ood_score"]) / reference["ood_score"]).max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("checkpoint", nargs="?", type=Path, help="training checkpoint (.pt)")
    source.add_argument("--untrained", action="store_true", help=f"export a randomly initialised placeholder (default --out {UNTRAINED_OUT.relative_to(REPO_ROOT)})")
    parser.add_argument("--out", type=Path, help="output .onnx")
    parser.add_argument("--card", type=Path, help="model card whose model_file, sha256 and bytes are updated")
    parser.add_argument("--weights", choices=("int8", "fp32"), default="int8", help="convolution weight storage (default int8)")
    parser.add_argument("--mirror-average", action="store_true",
                        help="average each knee's outputs with its mirror image's inside the graph (twice the compute)")
    parser.add_argument("--input-size", type=int, help="image side for --untrained (default: the card's, else 224)")
    parser.add_argument("--compare-fp32", type=int, metavar="IMAGES", default=0,
                        help="also measure the int8 export against an fp32 export on this many real knee images ($OAC_DATASETS)")
    args = parser.parse_args()

    card = json.loads(args.card.read_text()) if args.card else None
    card_size = card["preprocess"]["input_size"] if card else None
    if args.untrained:
        model, ood = untrained_placeholder()
        input_size = args.input_size or card_size or 224
        out, name = args.out or UNTRAINED_OUT, UNTRAINED_NAME
    else:
        if args.input_size:
            parser.error("--input-size is only for --untrained; a checkpoint's size comes from its config")
        if not args.out:
            parser.error("--out is required when exporting a checkpoint")
        model, ood, input_size = load_checkpoint(args.checkpoint)
        out, name = args.out, card["name"] if card else args.out.stem
    if card_size is not None and card_size != input_size:
        raise SystemExit(f"export_onnx: the model takes {input_size}x{input_size} images but {args.card} says "
                         f"preprocess.input_size = {card_size}; fix one of them")
    if args.compare_fp32 and args.weights != "int8":
        parser.error("--compare-fp32 compares an int8 export with fp32; drop --weights fp32")

    torch.set_num_threads(min(2, torch.get_num_threads()))
    export(model, ood, input_size, out, args.weights, name, untrained=args.untrained, mirror_average=args.mirror_average)
    size = out.stat().st_size
    print(f"exported {name} ({args.weights} weights, {input_size}x{input_size}) -> {out}: {size} bytes ({size / 2**20:.1f} MiB)")
    if args.card:
        update_card(args.card, out)
        save_card(args.card, insert_after(load_card(args.card), "outputs", "test_time",
                                          test_time_description(args.mirror_average)))
        print(f"updated {', '.join(CARD_FILE_FIELDS)} and test_time in {args.card}")
        if not args.untrained:
            save_card(args.card, {**load_card(args.card), "training": training_record(args.checkpoint)})
            print(f"wrote the run's configuration and validation history into {args.card}'s training")
    if args.compare_fp32:
        comparison = compare_int8_with_fp32(model, ood, input_size, out, args.compare_fp32, args.mirror_average)
        print("int8 vs fp32 (onnxruntime-node):", json.dumps(comparison))


if __name__ == "__main__":
    main()
