"""The oac_core Python module: the surface training, audit and evaluation code relies on."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from core_build import import_core
from lib.paths import MODEL_CARD


@pytest.fixture(scope="module")
def oac_core():
    return import_core()


@pytest.fixture
def spec(oac_core):
    return oac_core.parse_model_card(MODEL_CARD.read_text())


def png_bytes(array, mode=None):
    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, "PNG")
    return buffer.getvalue()


def knee_like(width, height):
    """A bright diamond on a textured dark background: contrast and no uniform borders."""
    y, x = np.mgrid[0:height, 0:width]
    distance = np.abs(x - width / 2) + np.abs(y - height / 2)
    return (40 + np.clip(120 - distance, 0, None) + (x * 7 + y * 3) % 5).astype(np.uint8)


def test_parse_model_card_reads_the_card(spec):
    card = json.loads(MODEL_CARD.read_text())
    pre = card["preprocess"]
    assert spec.preprocess.input_size == pre["input_size"]
    assert spec.preprocess.layout == pre["layout"]
    assert spec.preprocess.mean == pre["mean"]
    assert spec.preprocess.std == pre["std"]
    assert spec.preprocess.window_percentiles == pre["window_percentiles"]
    assert spec.preprocess.border_tolerance == pre["border_tolerance"]
    assert spec.preprocess.border_max_fraction == pre["border_max_fraction"]
    assert spec.preprocess.bilateral_min_aspect == pre["bilateral_min_aspect"]
    assert spec.preprocess.fit == pre["fit"]
    assert spec.preprocess.radiograph.max_colour == pre["radiograph"]["max_colour"]
    assert spec.preprocess.radiograph.max_roughness == pre["radiograph"]["max_roughness"]
    assert spec.calibration.oa_temperature == card["calibration"]["oa_temperature"]
    assert spec.calibration.kl_temperature == card["calibration"]["kl_temperature"]
    assert spec.threshold == card["threshold"]
    assert spec.kl_set.coverage == card["kl_set"]["coverage"]
    assert spec.kl_set.threshold == card["kl_set"]["threshold"]
    assert spec.ood.threshold == card["ood"]["threshold"]


def test_parse_model_card_errors_are_value_errors(oac_core):
    with pytest.raises(ValueError, match=r'^The model card has no "preprocess.input_size" field\.$'):
        oac_core.parse_model_card("{}")
    with pytest.raises(ValueError, match="not valid JSON"):
        oac_core.parse_model_card("{")


def test_spec_fields_are_settable(oac_core, spec):
    spec.preprocess.input_size = 299
    spec.preprocess.mean = [0.25, 0.5, 0.75]
    knees = oac_core.prepare(png_bytes(knee_like(120, 100)), spec)
    assert knees[0]["tensor"].shape == (3, 299, 299)
    assert spec.preprocess.mean == [0.25, 0.5, 0.75]


def test_decode_returns_samples_at_their_bit_depth(oac_core):
    rgb = np.dstack([knee_like(30, 20)] * 3)
    decoded = oac_core.decode(png_bytes(rgb))
    assert (decoded["width"], decoded["height"], decoded["channels"], decoded["bit_depth"]) == (30, 20, 3, 8)
    assert decoded["pixels"].dtype == np.uint16 and decoded["pixels"].shape == (20, 30, 3)
    np.testing.assert_array_equal(decoded["pixels"], rgb)

    deep = (knee_like(30, 20).astype(np.uint16) * 257)
    decoded = oac_core.decode(png_bytes(deep, "I;16"))
    assert (decoded["channels"], decoded["bit_depth"]) == (1, 16)
    np.testing.assert_array_equal(decoded["pixels"][:, :, 0], deep)


def test_bytes_like_inputs_are_accepted(oac_core, spec):
    data = png_bytes(knee_like(64, 64))
    expected = oac_core.prepare(data, spec)[0]["tensor"]
    for variant in (bytearray(data), memoryview(data), np.frombuffer(data, np.uint8)):
        np.testing.assert_array_equal(oac_core.prepare(variant, spec)[0]["tensor"], expected)


def test_steps_compose_to_prepare(oac_core, spec):
    data = png_bytes(knee_like(400, 100))  # aspect 4: two knees
    prepared = oac_core.prepare(data, spec)
    knees = oac_core.canonicalise(oac_core.decode(data), spec)
    assert [knee["side"] for knee in prepared] == [knee["side"] for knee in knees] == ["left", "right"]
    for ready, knee in zip(prepared, knees):
        assert ready["crop"].dtype == np.float32
        np.testing.assert_array_equal(ready["crop"], knee["crop"])
        np.testing.assert_array_equal(ready["tensor"], oac_core.to_tensor(knee["crop"], spec))


def test_bad_files_raise_value_errors_with_the_core_message(oac_core, spec):
    good = png_bytes(knee_like(64, 64))
    with pytest.raises(ValueError, match=r"^The file is empty\.$"):
        oac_core.prepare(b"", spec)
    with pytest.raises(ValueError, match=r"^The file is not a PNG, JPEG or BMP image\.$"):
        oac_core.decode(b"GIF89a")
    with pytest.raises(ValueError, match=r"^The PNG file is truncated"):
        oac_core.prepare(good[: len(good) // 2], spec)
    with pytest.raises(ValueError, match=r"^The file is too large \(\d+ bytes; the limit is 10 bytes\)\.$"):
        oac_core.decode(good, max_bytes=10)
    with pytest.raises(ValueError, match=r"more than the limit of 0\.0 megapixels"):
        oac_core.prepare(good, spec, max_pixels=100)
    with pytest.raises(ValueError, match=r"^The image is blank"):
        oac_core.prepare(png_bytes(np.full((8, 8), 9, np.uint8)), spec)
    size = spec.preprocess.input_size
    assert oac_core.prepare(good, spec)[0]["tensor"].shape == (3, size, size)


def test_interpret(oac_core, spec):
    spec.threshold = 0.5
    spec.calibration.oa_temperature = 2.0
    spec.calibration.oa_bias = 0.0
    spec.ood.threshold = 2.0
    result = oac_core.interpret(0.0, np.array([0, 0, 3, 0, 0], np.float32), 2.0, spec)
    assert result["p_oa"] == 0.5 and result["oa"] is True
    assert oac_core.interpret(2.0, np.zeros(5, np.float32), 0.0, spec)["p_oa"] == pytest.approx(1 / (1 + np.exp(-1)))
    assert result["kl_grade"] == 2
    assert sum(result["kl_probs"]) == pytest.approx(1.0)
    spec.calibration.kl_temperature = 1.0
    spec.kl_set.threshold = 0.8   # probabilities 0.3, 0.05, 0.55, 0.05, 0.05: 0.55 + 0.3 exceeds 0.8
    logits = np.log(np.array([0.3, 0.05, 0.55, 0.05, 0.05], np.float32))
    assert oac_core.interpret(0.0, logits, 0.0, spec)["kl_set"] == [0, 2]
    spec.kl_set.threshold = 1.0
    assert oac_core.interpret(0.0, logits, 0.0, spec)["kl_set"] == [0, 1, 2, 3, 4]
    assert result["in_distribution"] is True
    assert oac_core.interpret(0.0, np.zeros(5, np.float32), 2.5, spec)["in_distribution"] is False
    with pytest.raises(ValueError, match="exactly 5"):
        oac_core.interpret(0.0, [0, 0, 0], 0.0, spec)


def test_render_cam(oac_core):
    crop = np.full((10, 12), 0.5, np.float32)
    rgba = oac_core.render_cam(crop, np.arange(6, dtype=np.float32).reshape(2, 3), 0.5)
    assert rgba.shape == (10, 12, 4) and rgba.dtype == np.uint8
    assert (rgba[:, :, 3] == 255).all()
    with pytest.raises(ValueError, match="2-D"):
        oac_core.render_cam(crop, np.zeros(6, np.float32), 0.5)
    with pytest.raises(ValueError, match="class-activation map is empty"):
        oac_core.render_cam(crop, np.zeros((0, 3), np.float32), 0.5)


def test_polarity_measures_change_sign_on_the_negative(oac_core, spec):
    """The polarity rule's measures: a knee-like crop and its negative measure exactly opposite, which
    tools/data/polarity_rule.py relies on to measure every negative without making it."""
    crop = oac_core.prepare(png_bytes(knee_like(224, 224)), spec)[0]["crop"]
    upright, turned = oac_core.polarity_measures(crop, spec), oac_core.polarity_measures(1.0 - crop, spec)
    assert -1.0 <= upright["profile"] <= 1.0 and -1.0 <= upright["frame"] <= 1.0
    assert -0.5 <= upright["brightness"] <= 0.5
    for name in ("profile", "frame", "brightness", "skew", "upright_score"):
        assert upright[name] != 0
        assert turned[name] == pytest.approx(-upright[name], abs=1e-4)