"""Keras InceptionV3 in PyTorch, layer for layer, and the knee-OA model built on it.

The backbone reproduces `keras.applications.InceptionV3` (Keras 2.2.4, the version nsfwjs's model was
saved with) exactly: the same layers with the same auto-generated names (`conv2d_N`,
`batch_normalization_N`, `activation_N`, `max_pooling2d_N`, `average_pooling2d_N`, `mixedN`,
`mixed9_0`, `concatenate_1`, ...), the same branch and concatenation order, and the same order of
`model.layers`, so weights load by Keras name and freezing is written as "through Keras layer X".

Pretrained weights come from nsfwjs (MIT, Infinite Red / GantMan, https://github.com/infinitered/nsfwjs),
whose InceptionV3 is the Keras ImageNet InceptionV3 (Szegedy et al., "Rethinking the Inception
Architecture for Computer Vision", CVPR 2016) with layers after `activation_55` fine-tuned;
`tools/model/convert_nsfwjs.py` converts them.

Input: NCHW float32 RGB normalised to [-1, 1] (Keras InceptionV3 preprocessing `x / 127.5 - 1`, i.e.
mean 0.5 and std 0.5 on [0, 1]).
"""
from __future__ import annotations

import collections
import dataclasses
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from lib.paths import REPO_ROOT

KERAS_BN_EPSILON = 1e-3
KERAS_BN_MOMENTUM = 0.99
FEATURE_CHANNELS = 2048
KL_GRADES = 5

# nsfwjs's model.json marks Keras layers 1..167 (conv2d_1 ... activation_55) trainable=false;
# tools/model/convert_nsfwjs.py checks this against the JSON every time it converts.
NSFWJS_LAST_FROZEN_LAYER = "activation_55"

PRETRAINED_PATH = REPO_ROOT / "build" / "pretrained" / "inception_v3_nsfwjs.pt"


@dataclasses.dataclass(frozen=True)
class KerasLayer:
    name: str
    kind: str  # Keras's snake-case class name: conv2d, batch_normalization, activation, ...
    inputs: tuple[str, ...]
    channels: int  # output channels
    kernel: tuple[int, int] = (1, 1)
    stride: int = 1
    padding: str = "same"


class _KerasGraphBuilder:
    """Mirrors keras/applications/inception_v3.py so that Keras's automatic layer names come out the same."""

    def __init__(self) -> None:
        self.layers: dict[str, KerasLayer] = {"input_1": KerasLayer("input_1", "input", (), 3)}
        self._name_counters: collections.Counter[str] = collections.Counter()

    def _add(self, kind: str, inputs: list[str], channels: int, name: str | None = None, **config) -> str:
        if name is None:
            self._name_counters[kind] += 1
            name = f"{kind}_{self._name_counters[kind]}"
        self.layers[name] = KerasLayer(name, kind, tuple(inputs), channels, **config)
        return name

    def conv2d_bn(self, x: str, filters: int, kernel_h: int, kernel_w: int, stride: int = 1, padding: str = "same") -> str:
        conv = self._add("conv2d", [x], filters, kernel=(kernel_h, kernel_w), stride=stride, padding=padding)
        bn = self._add("batch_normalization", [conv], filters)
        return self._add("activation", [bn], filters)

    def max_pool(self, x: str) -> str:
        return self._add("max_pooling2d", [x], self.layers[x].channels, kernel=(3, 3), stride=2, padding="valid")

    def avg_pool_same(self, x: str) -> str:
        return self._add("average_pooling2d", [x], self.layers[x].channels, kernel=(3, 3), stride=1, padding="same")

    def concatenate(self, branches: list[str], name: str | None = None) -> str:
        return self._add("concatenate", branches, sum(self.layers[b].channels for b in branches), name=name)


def inception_v3_graph() -> dict[str, KerasLayer]:
    """The layers of keras.applications.InceptionV3(include_top=False), in creation (topological) order."""
    g = _KerasGraphBuilder()
    x = g.conv2d_bn("input_1", 32, 3, 3, stride=2, padding="valid")
    x = g.conv2d_bn(x, 32, 3, 3, padding="valid")
    x = g.conv2d_bn(x, 64, 3, 3)
    x = g.max_pool(x)
    x = g.conv2d_bn(x, 80, 1, 1, padding="valid")
    x = g.conv2d_bn(x, 192, 3, 3, padding="valid")
    x = g.max_pool(x)

    # mixed0, mixed1, mixed2: 35x35
    for block, pool_filters in enumerate((32, 64, 64)):
        branch1x1 = g.conv2d_bn(x, 64, 1, 1)
        branch5x5 = g.conv2d_bn(g.conv2d_bn(x, 48, 1, 1), 64, 5, 5)
        branch3x3dbl = g.conv2d_bn(g.conv2d_bn(g.conv2d_bn(x, 64, 1, 1), 96, 3, 3), 96, 3, 3)
        branch_pool = g.conv2d_bn(g.avg_pool_same(x), pool_filters, 1, 1)
        x = g.concatenate([branch1x1, branch5x5, branch3x3dbl, branch_pool], name=f"mixed{block}")

    # mixed3: 35x35 -> 17x17
    branch3x3 = g.conv2d_bn(x, 384, 3, 3, stride=2, padding="valid")
    branch3x3dbl = g.conv2d_bn(g.conv2d_bn(g.conv2d_bn(x, 64, 1, 1), 96, 3, 3), 96, 3, 3, stride=2, padding="valid")
    x = g.concatenate([branch3x3, branch3x3dbl, g.max_pool(x)], name="mixed3")

    # mixed4 ... mixed7: 17x17, factorised 7x7 convolutions
    for block, width in zip(range(4, 8), (128, 160, 160, 192)):
        branch1x1 = g.conv2d_bn(x, 192, 1, 1)
        branch7x7 = g.conv2d_bn(g.conv2d_bn(g.conv2d_bn(x, width, 1, 1), width, 1, 7), 192, 7, 1)
        branch7x7dbl = g.conv2d_bn(x, width, 1, 1)
        for filters, (kernel_h, kernel_w) in ((width, (7, 1)), (width, (1, 7)), (width, (7, 1)), (192, (1, 7))):
            branch7x7dbl = g.conv2d_bn(branch7x7dbl, filters, kernel_h, kernel_w)
        branch_pool = g.conv2d_bn(g.avg_pool_same(x), 192, 1, 1)
        x = g.concatenate([branch1x1, branch7x7, branch7x7dbl, branch_pool], name=f"mixed{block}")

    # mixed8: 17x17 -> 8x8
    branch3x3 = g.conv2d_bn(g.conv2d_bn(x, 192, 1, 1), 320, 3, 3, stride=2, padding="valid")
    branch7x7x3 = g.conv2d_bn(x, 192, 1, 1)
    for filters, (kernel_h, kernel_w) in ((192, (1, 7)), (192, (7, 1))):
        branch7x7x3 = g.conv2d_bn(branch7x7x3, filters, kernel_h, kernel_w)
    branch7x7x3 = g.conv2d_bn(branch7x7x3, 192, 3, 3, stride=2, padding="valid")
    x = g.concatenate([branch3x3, branch7x7x3, g.max_pool(x)], name="mixed8")

    # mixed9, mixed10: 8x8, expanded filter banks
    for i in range(2):
        branch1x1 = g.conv2d_bn(x, 320, 1, 1)
        branch3x3 = g.conv2d_bn(x, 384, 1, 1)
        branch3x3 = g.concatenate([g.conv2d_bn(branch3x3, 384, 1, 3), g.conv2d_bn(branch3x3, 384, 3, 1)], name=f"mixed9_{i}")
        branch3x3dbl = g.conv2d_bn(g.conv2d_bn(x, 448, 1, 1), 384, 3, 3)
        branch3x3dbl = g.concatenate([g.conv2d_bn(branch3x3dbl, 384, 1, 3), g.conv2d_bn(branch3x3dbl, 384, 3, 1)])
        branch_pool = g.conv2d_bn(g.avg_pool_same(x), 192, 1, 1)
        x = g.concatenate([branch1x1, branch3x3, branch3x3dbl, branch_pool], name=f"mixed{9 + i}")
    return g.layers


def keras_layer_order(layers: dict[str, KerasLayer], output: str) -> list[str]:
    """The order of Keras's `model.layers` (Keras 2.2.4 `Network._init_graph_network`).

    Keras sorts layers by decreasing depth (longest path to the output), ties broken by the pre-order
    of a depth-first walk from the output that visits each layer's inputs in order.
    """
    preorder: dict[str, int] = {}
    postorder: list[str] = []

    def visit(name: str) -> None:
        if name in preorder:
            return
        preorder[name] = len(preorder)
        for parent in layers[name].inputs:
            visit(parent)
        postorder.append(name)

    visit(output)
    depth = {output: 0}
    for name in reversed(postorder):  # outputs before inputs: longest paths settle in one sweep
        for parent in layers[name].inputs:
            depth[parent] = max(depth.get(parent, 0), depth[name] + 1)
    return sorted(preorder, key=lambda name: (-depth[name], preorder[name]))


class BatchNormNoScale(nn.BatchNorm2d):
    """Keras BatchNormalization(scale=False): gamma is fixed at 1, only beta (`bias` here) is learned."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels, eps=KERAS_BN_EPSILON, momentum=1.0 - KERAS_BN_MOMENTUM, affine=False)
        self.bias = nn.Parameter(torch.zeros(channels))


def _same_padding(kernel: tuple[int, int], stride: int) -> tuple[int, int]:
    # Keras 'same' pads asymmetrically when (kernel - stride) is odd; InceptionV3 only uses it with
    # stride 1 and odd kernels, where the padding is symmetric and PyTorch's padding= is exact.
    if stride != 1 or kernel[0] % 2 == 0 or kernel[1] % 2 == 0:
        raise ValueError(f"'same' padding with kernel {kernel} and stride {stride} is not symmetric")
    return kernel[0] // 2, kernel[1] // 2


class InceptionV3Backbone(nn.Module):
    """Keras InceptionV3 without its top: image [N,3,H,W] in [-1,1] -> mixed10 feature map [N,2048,h,w].

    `self.layers[<Keras name>]` holds every layer with weights (conv2d_N, batch_normalization_N), so
    state-dict keys are `layers.conv2d_N.weight`, `layers.batch_normalization_N.{bias,running_mean,running_var}`.
    `keras_layers` lists all Keras layer names in Keras's `model.layers` order (input_1 is index 0).
    """

    output_layer = "mixed10"

    def __init__(self) -> None:
        super().__init__()
        self.graph = inception_v3_graph()
        self.keras_layers = keras_layer_order(self.graph, self.output_layer)
        self.layers = nn.ModuleDict()
        for layer in self.graph.values():
            if layer.kind == "conv2d":
                in_channels = self.graph[layer.inputs[0]].channels
                padding = _same_padding(layer.kernel, layer.stride) if layer.padding == "same" else 0
                self.layers[layer.name] = nn.Conv2d(in_channels, layer.channels, layer.kernel, layer.stride, padding, bias=False)
            elif layer.kind == "batch_normalization":
                self.layers[layer.name] = BatchNormNoScale(layer.channels)
        # Each intermediate tensor is dropped after its last consumer runs, to keep inference memory low.
        self._last_use: dict[str, str] = {}
        for layer in self.graph.values():
            for parent in layer.inputs:
                self._last_use[parent] = layer.name
        self._frozen_norms: list[BatchNormNoScale] = []

    def _run_layer(self, layer: KerasLayer, inputs: list[torch.Tensor]) -> torch.Tensor:
        # (not `_apply`: that name is nn.Module's hook behind .to(), .float() and .cuda())
        if layer.kind in ("conv2d", "batch_normalization"):
            return self.layers[layer.name](inputs[0])
        if layer.kind == "activation":
            return F.relu(inputs[0])
        if layer.kind == "max_pooling2d":
            return F.max_pool2d(inputs[0], 3, stride=2)
        if layer.kind == "average_pooling2d":
            # Keras (TensorFlow) 'same' average pooling divides by the number of real pixels in the window.
            return F.avg_pool2d(inputs[0], 3, stride=1, padding=1, count_include_pad=False)
        if layer.kind == "concatenate":
            return torch.cat(inputs, dim=1)
        raise ValueError(f"unknown Keras layer kind {layer.kind!r} ({layer.name})")

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"expected an image batch [N,3,H,W], got shape {tuple(image.shape)}")
        return self.run_between(image, "input_1", self.output_layer)

    def run_between(self, tensor: torch.Tensor, after: str, until: str) -> torch.Tensor:
        """The layers after Keras layer `after` through `until`, given `after`'s output: run_between(image,
        "input_1", "mixed7") is the trunk below a cut, run_between(that, "mixed7", "mixed10") the rest, and the two
        compose to forward(image). `after` must be a cut: no layer past it may read one before it."""
        names = list(self.graph)
        start, stop = names.index(after) + 1, names.index(until) + 1
        if stop <= start:
            raise ValueError(f"{until!r} does not come after {after!r}")
        outputs = {after: tensor}
        for layer in (self.graph[name] for name in names[start:stop]):
            missing = [parent for parent in layer.inputs if parent not in outputs]
            if missing:
                raise ValueError(f"{after!r} is not a cut of InceptionV3: {layer.name} also reads {missing}")
            outputs[layer.name] = self._run_layer(layer, [outputs[parent] for parent in layer.inputs])
            for parent in layer.inputs:
                if self._last_use[parent] == layer.name:
                    del outputs[parent]
        return outputs[until]

    def keras_index(self, layer: str | int) -> int:
        """Index of a Keras layer in `model.layers` order, given its name or index."""
        if isinstance(layer, int):
            if not 0 <= layer < len(self.keras_layers):
                raise ValueError(f"Keras layer index {layer} is outside 0..{len(self.keras_layers) - 1}")
            return layer
        try:
            return self.keras_layers.index(layer)
        except ValueError:
            raise ValueError(f"no Keras layer named {layer!r} in InceptionV3 (e.g. 'conv2d_1', 'mixed5')") from None

    def freeze_through(self, last_frozen: str | int) -> list[str]:
        """Freeze Keras layers 0..last_frozen (name or index, inclusive), as Keras's trainable=False does.

        Frozen convolutions stop receiving gradients; frozen batch norms also stay in inference mode
        (running statistics used and never updated) even under `.train()`, because updating statistics
        of layers whose weights are fixed would shift every feature above them.
        Returns the names of the frozen layers that hold weights. Calling it again replaces the previous freeze.
        """
        frozen = set(self.keras_layers[: self.keras_index(last_frozen) + 1])
        self._frozen_norms = []
        for name, module in self.layers.items():
            is_frozen = name in frozen
            for parameter in module.parameters():
                parameter.requires_grad_(not is_frozen)
            if is_frozen and isinstance(module, BatchNormNoScale):
                self._frozen_norms.append(module)
        self.train(self.training)
        return [name for name in self.layers if name in frozen]

    def train(self, mode: bool = True) -> InceptionV3Backbone:
        super().train(mode)
        for norm in self._frozen_norms:
            norm.eval()
        return self


class OAInceptionV3(nn.Module):
    """InceptionV3 backbone -> global average pooling -> dropout -> OA head (1 logit) and KL head (5 logits).

    forward(image) returns {"oa_logit" [N], "kl_logits" [N,5], "features" [N,2048], "cam" [N,h,w]}.
    `cam` is the OA head applied at every position of the last feature map (sum_c w_c F_c + b); in eval
    mode its spatial mean equals `oa_logit` (dropout only acts on the pooled features in training).
    """

    def __init__(self, dropout: float = 0.5) -> None:
        super().__init__()
        self.backbone = InceptionV3Backbone()
        self.dropout = nn.Dropout(dropout)
        self.oa = nn.Linear(FEATURE_CHANNELS, 1)
        self.kl = nn.Linear(FEATURE_CHANNELS, KL_GRADES)

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.outputs_from(self.backbone(image))

    def outputs_from(self, feature_map: torch.Tensor) -> dict[str, torch.Tensor]:
        """forward's outputs given the backbone's last feature map [N,2048,h,w]."""
        features = feature_map.mean(dim=(2, 3))
        pooled = self.dropout(features)
        # The OA head as a 1x1 convolution: one ONNX Conv that every runtime has (unlike Einsum).
        cam = F.conv2d(feature_map, self.oa.weight[:, :, None, None], self.oa.bias).squeeze(1)
        return {
            "oa_logit": self.oa(pooled).squeeze(1),
            "kl_logits": self.kl(pooled),
            "features": features,
            "cam": cam,
        }


def mirror_averaged(model: OAInceptionV3, image: torch.Tensor) -> dict[str, torch.Tensor]:
    """`model`'s outputs averaged over each knee and its left-right mirror image, run as one batch of 2N.

    Averaging the logits of the two views raised validation KL accuracy by about 0.03 (models/head-study.md).
    The CAM is the mean of the two maps with the mirrored one turned back, so it stays the map of the averaged
    oa_logit. `features` (and so the OOD score) come from the knee as given, the view the OOD gate was fitted on.
    """
    out = model(torch.cat([image, torch.flip(image, dims=[3])]))
    # Reshaping to [2, N, ...] keeps N symbolic in an ONNX trace (slicing at image.shape[0] would not).
    views = {name: value.reshape(2, -1, *value.shape[1:]) for name, value in out.items()}
    return {
        "oa_logit": views["oa_logit"].mean(0),
        "kl_logits": views["kl_logits"].mean(0),
        "features": views["features"][0],
        "cam": (views["cam"][0] + torch.flip(views["cam"][1], dims=[2])) / 2,
    }


def load_pretrained_backbone(backbone: InceptionV3Backbone, path: Path | str = PRETRAINED_PATH) -> None:
    """Load the converted nsfwjs weights (from `tools/oac convert`) into a backbone."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; run `tools/oac convert` (tools/model/convert_nsfwjs.py) to create it")
    checkpoint = torch.load(path, map_location="cpu")
    backbone.load_state_dict(checkpoint["backbone"])


def pretrained_oa_model(dropout: float = 0.5, path: Path | str = PRETRAINED_PATH,
                        freeze_through: str | int | None = NSFWJS_LAST_FROZEN_LAYER) -> OAInceptionV3:
    """OAInceptionV3 with nsfwjs's backbone weights, frozen like nsfwjs's own fine-tuning by default
    (pass freeze_through=None to train everything); the heads are freshly initialised."""
    model = OAInceptionV3(dropout=dropout)
    load_pretrained_backbone(model.backbone, path)
    if freeze_through is not None:
        model.backbone.freeze_through(freeze_through)
    return model
