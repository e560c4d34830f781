#!/usr/bin/python3
"""Print the image files of one part of the data, one absolute path a line, for `tools/oac classify --files-from`.

    tools/evaluation/split_files.py --split models/data/split.csv val|test [--datasets DIR]
    tools/evaluation/split_files.py --seed-test [--datasets DIR]

`val`/`test`: the clean split's rows (one file per image content). `--seed-test`: every file of
Osteoarthritis_Dataset/test/{Normal,Osteoarthritis}, duplicates included, for the seed protocol.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from evaluation import eval_io
from evaluation.eval_io import SEED_DATASET
from lib.paths import datasets_dir_if_present
from lib.split_manifest import InputError, load_split


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", nargs="?", choices=("train", "val", "test"), help="clean split part")
    parser.add_argument("--split", type=Path, help="split manifest (models/data/split.csv)")
    parser.add_argument("--seed-test", action="store_true", help=f"every file of {SEED_DATASET}/test instead")
    parser.add_argument("--datasets", type=Path, help="dataset folder (default: $OAC_DATASETS or ../shared/datasets)")
    args = parser.parse_args(argv)
    if args.seed_test == bool(args.part):
        parser.error("give either a split part (val, test, train) or --seed-test")
    datasets = args.datasets or datasets_dir_if_present()
    if datasets is None or not datasets.is_dir():
        sys.exit("split_files: no dataset folder: pass --datasets DIR or set OAC_DATASETS")
    datasets = datasets.resolve()
    if args.seed_test:
        files = eval_io.seed_test_files(datasets)
        if not files:
            sys.exit(f"split_files: no PNG files under {datasets / SEED_DATASET}/test/{{Normal,Osteoarthritis}}")
    else:
        if args.split is None:
            parser.error("--split is required with a split part")
        try:
            rows = load_split(args.split)
        except InputError as error:
            sys.exit(f"split_files: {error}")
        files = [datasets / row["path"] for row in rows if row["split"] == args.part]
        missing = [f for f in files if not f.is_file()]
        if missing:
            sys.exit(f"split_files: {len(missing)} file(s) of the split are not under {datasets}, e.g. {missing[0]}")
    sys.stdout.write("".join(f"{f}\n" for f in files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
