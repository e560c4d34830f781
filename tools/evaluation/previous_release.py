#!/usr/bin/python3
"""An earlier release, as a commit holds it, made runnable by today's core and CLI: its network (the int8
model file), calibration, threshold and OOD gate, with today's preprocessing, so that evaluate.py --paired
compares the two models on identical inputs.

The preprocessing is the product's rather than the model's: every release so far takes the same 224-px
tensor (input size, mean, std and window are checked to be equal), while localisation, the polarity rule and
the radiograph check have since improved. Fields an older card predates get what that release did: no OA bias
(temperature alone), the argmax KL grade, and no KL prediction sets (the current card's set rule is filled in
only so that the core reads the card; evaluate.py does not compare sets).

usage: previous_release.py --commit COMMIT --out FOLDER [--card CURRENT_CARD]
  writes FOLDER/model.onnx and FOLDER/card.json
"""
import argparse
import json
import sys
from pathlib import Path

from lib.card import load_card, save_card
from lib.git import GitError, file_at_commit
from lib.paths import MODEL_CARD

SAME_TENSOR = ("input_size", "layout", "mean", "std", "window_percentiles")


def runnable_card(earlier: dict, current: dict) -> dict:
    """The earlier card with today's preprocessing, and the fields it predates filled as that release behaved."""
    changed = [key for key in SAME_TENSOR if earlier["preprocess"].get(key) != current["preprocess"][key]]
    if changed:
        sys.exit(f"previous_release: the earlier model takes another tensor ({', '.join(changed)} differ): "
                 "today's core cannot run it like for like")
    card = dict(earlier, preprocess=current["preprocess"], model_file="model.onnx")
    card["calibration"] = {"oa_bias": 0.0, **earlier["calibration"]}
    card.setdefault("kl_grade", {"rule": "argmax"})
    card.setdefault("kl_set", current["kl_set"])
    return card


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commit", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--card", type=Path, default=MODEL_CARD, help="today's card, for its preprocessing")
    args = parser.parse_args(argv)
    try:
        earlier = json.loads(file_at_commit(args.commit, "models/oa-inceptionv3.json"))
        model = file_at_commit(args.commit, f"models/{earlier['model_file']}")
    except GitError as error:
        sys.exit(f"previous_release: {error}")
    except json.JSONDecodeError as error:
        sys.exit(f"previous_release: the card at {args.commit} is not valid JSON ({error})")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "model.onnx").write_bytes(model)
    save_card(args.out / "card.json", runnable_card(earlier, load_card(args.card)))
    print(f"previous_release: {earlier.get('name')} {earlier.get('version')} of {args.commit} in {args.out}")


if __name__ == "__main__":
    main()
