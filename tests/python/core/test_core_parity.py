"""The native library, the WebAssembly module (under Node) and the Python module produce
bit-identical tensors for real images of every kind in the datasets."""

import hashlib
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from core_build import NATIVE_BUILD, WASM_BUILD, import_core
from lib.paths import MODEL_CARD, REPO_ROOT, datasets_dir

# (path under Osteoarthritis_Dataset, size, PIL mode): one of each format the datasets hold.
IMAGES = [
    ("Valid/Normal/9001695L.png", (224, 224), "L"),                     # OAI crop, 8-bit grey
    ("Valid/Osteoarthritis/ModerateG3 (1).png", (300, 162), "RGB"),     # second collection, RGB
    ("Valid/Osteoarthritis/ModerateG3 (128).png", (300, 162), "I"),     # second collection, 16-bit grey
    ("Valid/Osteoarthritis/ModerateG3 (176).png", (640, 161), "RGB"),   # bilateral, RGB
    ("Valid/Osteoarthritis/ModerateG3 (203).png", (640, 161), "I"),     # bilateral, 16-bit grey
    ("test/Osteoarthritis/9093622_1.png", (299, 299), "L"),             # 299 x 299 crop
]


@pytest.fixture(scope="module")
def image_paths():
    paths = [datasets_dir() / "Osteoarthritis_Dataset" / name for name, _, _ in IMAGES]
    missing = [str(path) for path in paths if not path.exists()]
    if missing:
        pytest.skip(f"dataset images absent (set OAC_DATASETS): {missing[0]}")
    for path, (_, size, mode) in zip(paths, IMAGES):
        with Image.open(path) as image:
            assert (image.size, image.mode) == (size, mode), f"{path} is not the kind of image this test needs"
    return paths


def python_tensors(paths):
    oac_core = import_core()
    spec = oac_core.parse_model_card(MODEL_CARD.read_text())
    out = []
    for path in paths:
        knees = oac_core.prepare(path.read_bytes(), spec)
        assert all(knee["tensor"].dtype == np.float32 for knee in knees)
        out.append(b"".join(knee["tensor"].tobytes() for knee in knees))
    return out


def dumped_tensors(command, output_dir, count):
    subprocess.run(command, check=True, timeout=300)
    return [(output_dir / f"{index}.f32").read_bytes() for index in range(count)]


def digests(tensors):
    return [hashlib.sha256(data).hexdigest() for data in tensors]


def test_python_tensors_have_the_expected_knees(image_paths):
    tensors = python_tensors(image_paths)
    size = import_core().parse_model_card(MODEL_CARD.read_text()).preprocess.input_size
    plane = 3 * size * size * 4  # float32 bytes per knee
    knees = [len(data) // plane for data in tensors]
    assert knees == [1, 1, 1, 2, 2, 1]
    assert all(len(data) % plane == 0 for data in tensors)


def test_native_matches_python_bit_for_bit(image_paths, tmp_path):
    tool = NATIVE_BUILD / "tests" / "oac_prepare_dump"
    if not tool.exists():
        pytest.skip(f"{tool} not built")
    native = dumped_tensors([str(tool), str(MODEL_CARD), str(tmp_path), *map(str, image_paths)], tmp_path, len(image_paths))
    assert digests(native) == digests(python_tensors(image_paths))


def test_wasm_matches_python_bit_for_bit(image_paths, tmp_path):
    if WASM_BUILD is None:
        pytest.skip("the WebAssembly build is off in this configuration")
    if not (WASM_BUILD / "oac_core.mjs").exists():
        pytest.skip(f"{WASM_BUILD}/oac_core.mjs not built")
    node = shutil.which("node")
    assert node, "node is needed to run the WebAssembly build"
    script = REPO_ROOT / "tests" / "support" / "wasm_prepare_dump.mjs"
    command = [node, str(script), str(WASM_BUILD), str(MODEL_CARD), str(tmp_path), *map(str, image_paths)]
    wasm = dumped_tensors(command, tmp_path, len(image_paths))
    assert digests(wasm) == digests(python_tensors(image_paths))
    oac_core = import_core()
    probe = oac_core.self_test_tensor(oac_core.parse_model_card(MODEL_CARD.read_text()))
    assert (tmp_path / "self-test.f32").read_bytes() == probe.tobytes(), "the self-test probe differs between the builds"
