"""Convert nsfwjs's InceptionV3 (TensorFlow.js layers model bundled in the npm package) to PyTorch.

nsfwjs (MIT, Infinite Red / GantMan, https://github.com/infinitered/nsfwjs) is the Keras ImageNet
InceptionV3 (Szegedy et al. 2016) with its layers after `activation_55` fine-tuned and a 5-class head
(Drawing, Hentai, Neutral, Porn, Sexy). Its weights are stored uint8-quantised per tensor
(value = min + scale * q); they are dequantised exactly as TensorFlow.js does.

Writes build/pretrained/inception_v3_nsfwjs.pt:
  {"backbone": InceptionV3Backbone state dict, "nsfwjs_head": NsfwjsHead state dict,
   "frozen_through": last Keras layer nsfwjs kept frozen, "frozen_layer_count": int, "source": str}
The head is kept only for the parity test against TensorFlow.js (tests/python/model/test_converter_parity.py).

usage: convert_nsfwjs.py [--out PATH]
"""
from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lib.paths import REPO_ROOT
from model.inception import (FEATURE_CHANNELS, NSFWJS_LAST_FROZEN_LAYER, PRETRAINED_PATH, InceptionV3Backbone,
                             inception_v3_graph, keras_layer_order)

REFERENCE_SCRIPT = Path(__file__).with_name("nsfwjs_reference.mjs")
EXTRACTED_DIR = REPO_ROOT / "build" / "pretrained" / "nsfwjs"
NSFWJS_CLASSES = ("Drawing", "Hentai", "Neutral", "Porn", "Sexy")


class NsfwjsHead(nn.Module):
    """nsfwjs's top: global pooling -> dense_1 (256, relu) -> dense_2 (128, relu) -> dense_3 (5, softmax)."""

    def __init__(self) -> None:
        super().__init__()
        self.dense_1 = nn.Linear(FEATURE_CHANNELS, 256)
        self.dense_2 = nn.Linear(256, 128)
        self.dense_3 = nn.Linear(128, len(NSFWJS_CLASSES))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        hidden = torch.relu(self.dense_2(torch.relu(self.dense_1(features))))
        return torch.softmax(self.dense_3(hidden), dim=1)


class NsfwjsClassifier(nn.Module):
    """The whole nsfwjs model: image [N,3,299,299] -> (pooled features [N,2048], class probabilities [N,5])."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = InceptionV3Backbone()
        self.head = NsfwjsHead()

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.backbone(image).mean(dim=(2, 3))
        return features, self.head(features)


def load_nsfwjs_classifier(path: Path | str = PRETRAINED_PATH) -> NsfwjsClassifier:
    checkpoint = torch.load(path, map_location="cpu")
    classifier = NsfwjsClassifier()
    classifier.backbone.load_state_dict(checkpoint["backbone"])
    classifier.head.load_state_dict(checkpoint["nsfwjs_head"])
    return classifier.eval()


def extract_bundle(out_dir: Path = EXTRACTED_DIR) -> tuple[dict, bytes]:
    """Unpack nsfwjs's JavaScript-wrapped model with Node; returns (model JSON, concatenated weight shards)."""
    subprocess.run(["node", str(REFERENCE_SCRIPT), "extract", str(out_dir)], check=True)
    return json.loads((out_dir / "model.json").read_text()), (out_dir / "weights.bin").read_bytes()


def dequantise(model_json: dict, weight_bytes: bytes) -> dict[str, np.ndarray]:
    """Keras weight name -> float32 array, computed like TensorFlow.js: float32(q * scale + min) in float64."""
    weights = {}
    offset = 0
    for spec in (w for group in model_json["weightsManifest"] for w in group["weights"]):
        quantization = spec.get("quantization")
        if spec["dtype"] != "float32" or quantization is None or quantization["dtype"] != "uint8":
            raise ValueError(f"{spec['name']}: expected float32 weights stored as uint8, got {spec}")
        count = int(np.prod(spec["shape"]))
        q = np.frombuffer(weight_bytes, np.uint8, count, offset)
        offset += count
        weights[spec["name"]] = (q.astype(np.float64) * quantization["scale"] + quantization["min"]).astype(np.float32).reshape(spec["shape"])
    if offset != len(weight_bytes):
        raise ValueError(f"weights manifest covers {offset} bytes but the shards hold {len(weight_bytes)}")
    return weights


def check_topology(model_json: dict) -> int:
    """Fail unless nsfwjs's Keras graph is the one inception.py builds; returns the frozen layer count."""
    keras_layers = model_json["modelTopology"]["model_config"]["config"]["layers"]
    graph = inception_v3_graph()
    ours = keras_layer_order(graph, InceptionV3Backbone.output_layer)
    theirs = [layer["name"] for layer in keras_layers]
    if theirs[: len(ours)] != ours:
        mismatch = next(i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b)
        raise ValueError(f"nsfwjs's layer order differs from inception.py's at index {mismatch}: {theirs[mismatch]} vs {ours[mismatch]}")
    for layer in keras_layers[: len(ours)]:
        inbound = tuple(parent[0] for node in layer["inbound_nodes"] for parent in node)
        ours_layer = graph[layer["name"]]
        config = layer["config"]
        differs = inbound != ours_layer.inputs
        if layer["class_name"] == "Conv2D":
            differs |= (config["filters"], tuple(config["kernel_size"]), tuple(config["strides"]), config["padding"], config["use_bias"]) != \
                (ours_layer.channels, ours_layer.kernel, (ours_layer.stride,) * 2, ours_layer.padding, False)
        elif layer["class_name"] == "BatchNormalization":
            differs |= (config["scale"], config["center"], config["epsilon"]) != (False, True, 1e-3)
        if differs:
            raise ValueError(f"nsfwjs's layer {layer['name']} differs from inception.py's: {layer}")

    frozen = [i for i, layer in enumerate(keras_layers) if layer["config"].get("trainable") is False]
    expected = list(range(1, ours.index(NSFWJS_LAST_FROZEN_LAYER) + 1))
    if frozen != expected:
        raise ValueError(f"nsfwjs freezes Keras layers {frozen[0]}..{frozen[-1]} ({len(frozen)} layers), "
                         f"not 1..{NSFWJS_LAST_FROZEN_LAYER} as inception.NSFWJS_LAST_FROZEN_LAYER says")
    return len(frozen)


def to_state_dicts(weights: dict[str, np.ndarray]) -> tuple[dict, dict]:
    """Map Keras weights onto (InceptionV3Backbone, NsfwjsHead) state dicts by layer name."""
    backbone, head = {}, {}
    for name, value in weights.items():
        layer, variable = name.split("/")
        tensor = torch.from_numpy(value.copy())
        if layer.startswith("conv2d_") and variable == "kernel":
            backbone[f"layers.{layer}.weight"] = tensor.permute(3, 2, 0, 1).contiguous()  # HWIO -> OIHW
        elif layer.startswith("batch_normalization_"):
            target = {"beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}[variable]
            backbone[f"layers.{layer}.{target}"] = tensor
        elif layer.startswith("dense_"):
            head[f"{layer}.{'weight' if variable == 'kernel' else 'bias'}"] = tensor.T.contiguous() if variable == "kernel" else tensor
        else:
            raise ValueError(f"unexpected weight {name} in nsfwjs's manifest")
    reference = InceptionV3Backbone().state_dict()
    for key in reference:
        if key.endswith("num_batches_tracked"):
            backbone[key] = torch.tensor(0)
    missing = sorted(set(reference) - set(backbone))
    if missing:
        raise ValueError(f"nsfwjs's manifest lacks {len(missing)} backbone weights, e.g. {missing[:3]}")
    return backbone, head


def convert(out_path: Path = PRETRAINED_PATH) -> Path:
    model_json, weight_bytes = extract_bundle()
    frozen_layer_count = check_topology(model_json)
    backbone, head = to_state_dicts(dequantise(model_json, weight_bytes))
    classifier = NsfwjsClassifier()
    classifier.backbone.load_state_dict(backbone)  # strict: shapes and names must all match
    classifier.head.load_state_dict(head)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({
        "backbone": classifier.backbone.state_dict(),
        "nsfwjs_head": classifier.head.state_dict(),
        "frozen_through": NSFWJS_LAST_FROZEN_LAYER,
        "frozen_layer_count": frozen_layer_count,
        "source": "nsfwjs inception_v3 (MIT, Infinite Red); Keras ImageNet InceptionV3 (Szegedy et al. 2016)",
    }, out_path)
    parameters = sum(p.numel() for p in classifier.backbone.parameters())
    print(f"converted the backbone ({parameters} parameters) and the nsfwjs head -> {out_path}")
    print(f"nsfwjs froze {frozen_layer_count} Keras layers: 1..{frozen_layer_count} (conv2d_1 .. {NSFWJS_LAST_FROZEN_LAYER})")
    return out_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=PRETRAINED_PATH, help=f"output .pt (default {PRETRAINED_PATH})")
    convert(parser.parse_args().out)


if __name__ == "__main__":
    main()
