"""tools/model/inception.py: Keras InceptionV3 shapes and sizes, the OA model's outputs, freezing by Keras layer."""
import pytest
import torch

from model.inception import (NSFWJS_LAST_FROZEN_LAYER, BatchNormNoScale, InceptionV3Backbone,
                       OAInceptionV3, _same_padding)

# keras.applications.InceptionV3(include_top=False).count_params(): weights, betas and BN moving statistics.
KERAS_INCEPTION_V3_NO_TOP_PARAMS = 21_802_784
SMALLEST_INPUT = 75  # Keras's minimum for InceptionV3; keeps these tests fast


@pytest.fixture(scope="module", autouse=True)
def few_threads():
    torch.set_num_threads(min(2, torch.get_num_threads()))


def test_parameter_count_matches_keras():
    backbone = InceptionV3Backbone()
    statistics = sum(m.running_mean.numel() + m.running_var.numel() for m in backbone.modules() if isinstance(m, BatchNormNoScale))
    assert sum(p.numel() for p in backbone.parameters()) + statistics == KERAS_INCEPTION_V3_NO_TOP_PARAMS


def test_keras_layer_names_and_order():
    backbone = InceptionV3Backbone()
    assert len(backbone.keras_layers) == 311
    assert backbone.keras_layers[:4] == ["input_1", "conv2d_1", "batch_normalization_1", "activation_1"]
    assert backbone.keras_layers[-1] == "mixed10"
    assert backbone.keras_index(NSFWJS_LAST_FROZEN_LAYER) == 167
    assert {f"conv2d_{n}" for n in range(1, 95)} | {f"batch_normalization_{n}" for n in range(1, 95)} == set(backbone.layers)


@pytest.mark.parametrize("size, cam_side", [(299, 8), (224, 5)])
def test_outputs_and_cam(size, cam_side):
    model = OAInceptionV3(dropout=0.5).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, size, size) * 2 - 1)
    assert out["oa_logit"].shape == (2,)
    assert out["kl_logits"].shape == (2, 5)
    assert out["features"].shape == (2, 2048)
    assert out["cam"].shape == (2, cam_side, cam_side)
    torch.testing.assert_close(out["cam"].mean(dim=(1, 2)), out["oa_logit"], rtol=0, atol=1e-5)


def test_freeze_through_name_or_index():
    model = OAInceptionV3()
    by_name = model.backbone.freeze_through(NSFWJS_LAST_FROZEN_LAYER)
    assert by_name == model.backbone.freeze_through(167)
    assert "conv2d_55" in by_name and "batch_normalization_55" in by_name
    # mixed6's other branches come later in Keras's order than its 7x7dbl branch's first unit
    assert "conv2d_52" not in by_name and "conv2d_56" not in by_name
    layers = model.backbone.layers
    assert not layers["conv2d_1"].weight.requires_grad and layers["conv2d_56"].weight.requires_grad
    assert model.oa.weight.requires_grad

    model.train()
    frozen_mean = layers["batch_normalization_1"].running_mean.clone()
    model(torch.rand(2, 3, SMALLEST_INPUT, SMALLEST_INPUT))
    assert not layers["batch_normalization_1"].training and layers["batch_normalization_56"].training
    assert torch.equal(layers["batch_normalization_1"].running_mean, frozen_mean)

    assert model.backbone.freeze_through(0) == []
    assert all(p.requires_grad for p in model.parameters())
    model.train()
    assert layers["batch_normalization_1"].training


def test_clear_errors():
    backbone = InceptionV3Backbone()
    with pytest.raises(ValueError, match="no Keras layer named 'mixed11'"):
        backbone.freeze_through("mixed11")
    with pytest.raises(ValueError, match="outside"):
        backbone.freeze_through(311)
    with pytest.raises(ValueError, match=r"expected an image batch \[N,3,H,W\]"):
        backbone(torch.zeros(1, 1, SMALLEST_INPUT, SMALLEST_INPUT))
    with pytest.raises(ValueError, match="not symmetric"):
        _same_padding((3, 3), 2)
