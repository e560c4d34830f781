"""oac_core.resize against PIL's antialiased bilinear resize of mode "F" images."""

import numpy as np
import pytest
from PIL import Image

from core_build import import_core
from lib.paths import MODEL_CARD, datasets_dir

# Both sides accumulate in double and round each pass to float32, so they agree to float
# rounding; 1e-5 absolute on values of order 1 leaves room only for that.
TOLERANCE = 1e-5

SHAPES = [  # (height, width) -> (height, width)
    ((161, 161), (224, 224)),   # bilateral half, enlarged
    ((162, 162), (224, 224)),   # 300 x 162 crop
    ((299, 299), (224, 224)),   # shrunk by 1.33
    ((224, 224), (224, 224)),   # identity
    ((1000, 1000), (224, 224)), # shrunk by 4.5: wide antialiasing support
    ((640, 161), (50, 100)),    # different factors per axis
    ((7, 3), (20, 1)),
    ((1, 1), (5, 5)),
]


def pil_resize(array, width, height):
    return np.asarray(Image.fromarray(array, mode="F").resize((width, height), Image.BILINEAR))


@pytest.mark.parametrize("source, target", SHAPES)
def test_resize_matches_pil(source, target):
    oac_core = import_core()
    array = np.random.default_rng(sum(source) + sum(target)).uniform(-1, 2, size=source).astype(np.float32)
    ours = oac_core.resize(array, target[1], target[0])
    assert ours.shape == target and ours.dtype == np.float32
    assert np.abs(ours - pil_resize(array, target[1], target[0])).max() <= TOLERANCE


def test_resize_of_real_crops_matches_pil():
    oac_core = import_core()
    folder = datasets_dir() / "Osteoarthritis_Dataset" / "Valid" / "Osteoarthritis"
    paths = sorted(folder.glob("*.png"))[:8]
    if not paths:
        pytest.skip("dataset images absent (set OAC_DATASETS)")
    spec = oac_core.parse_model_card(MODEL_CARD.read_text())
    for path in paths:
        for knee in oac_core.prepare(path.read_bytes(), spec):
            crop = knee["crop"]
            assert np.abs(oac_core.resize(crop, 224, 224) - pil_resize(crop, 224, 224)).max() <= TOLERANCE


def test_resize_rejects_bad_sizes():
    oac_core = import_core()
    with pytest.raises(ValueError, match="must be positive"):
        oac_core.resize(np.zeros((4, 4), np.float32), 0, 3)
    with pytest.raises(ValueError, match="2-D array"):
        oac_core.resize(np.zeros((4, 4, 1), np.float32), 2, 2)
