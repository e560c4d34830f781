"""The radiograph bounds (tools/data/radiograph_check.py) on measures whose answer is known, and the core's
measures on pictures whose kind is known."""
import json

import numpy as np

import oac_core
from data.radiograph_check import bounds, refused
from lib.card import load_card
from lib.paths import MODEL_CARD


def test_bounds_are_the_margin_times_the_training_highest_within_the_card_ranges():
    training = np.array([[0.0, 0.05], [0.02, 0.16], [0.01, 0.1]])
    assert bounds(training) == (0.04, 0.32)
    # a grey training set still allows a faint tint; no bound leaves the range the card accepts
    assert bounds(np.array([[0.0, 0.9], [0.0, 1.5]])) == (0.01, 2.0)


def test_a_picture_is_refused_when_either_measure_exceeds_its_bound():
    found = np.array([[0.0, 0.1], [0.2, 0.1], [0.0, 0.5], [0.05, 0.3]])
    assert refused(found, 0.08, 0.32) == 2
    assert refused(found, 1.0, 2.0) == 0


def test_noise_is_rough_and_a_smooth_picture_is_not():
    spec = oac_core.parse_model_card(json.dumps(load_card(MODEL_CARD)))
    rng = np.random.default_rng(7)
    noise = {"width": 200, "height": 150, "channels": 1, "bit_depth": 8,
             "pixels": rng.integers(0, 256, (150, 200, 1)).astype(np.uint16)}
    y, x = np.mgrid[0:150, 0:200]
    disc = (40 + 180 / (1 + np.exp((np.hypot(x - 100, y - 75) - 50) / 6))).astype(np.uint16)[..., None]
    smooth = dict(noise, pixels=disc)
    colour_noise, rough_noise = oac_core.measure_picture(noise, spec)
    colour_smooth, rough_smooth = oac_core.measure_picture(smooth, spec)
    assert colour_noise == colour_smooth == 0
    assert rough_noise > 0.9 > spec.preprocess.radiograph.max_roughness > rough_smooth
