#!/usr/bin/env bash
# Calibrate and evaluate a trained model end to end, in the only order that is honest:
#   classify val and its altered versions -> calibrate (writes the card) -> classify test, its versions,
#   seed test, OOD corpus -> evaluate.
# The test, seed and OOD images are classified after calibration, so the predictions the report reads
# are exactly what the product shows with the shipped card.
#
# usage: tools/oac eval [--releases JSON] [--card CARD] [--seed-card SEED_CARD] [--split CSV] [--datasets DIR]
#                      [--work DIR] [--out DIR] [--previous METRICS_JSON ...] [--paired COMMIT ...]
#   --releases   the split, seed card and earlier releases to compare with (default models/releases.json;
#                the flags below override its split and seed card and add to its releases)
#   --card       model card to calibrate and evaluate (default models/oa-inceptionv3.json)
#   --seed-card  card of the seed-protocol model (trained on Osteoarthritis_Dataset/train only);
#                without it the seed protocol is left out of the report
#   --split      split manifest (default: the release list's, else models/data/split.csv)
#   --datasets   dataset folder (default $OAC_DATASETS, else ../shared/datasets)
#   --work       folder for file lists, predictions and the OOD corpus (default models/cache/eval)
#   --out        folder for REPORT.md and report/ (default models)
#   --previous   an earlier model's report/metrics.json, whose figures the report shows beside the new ones
#                (repeat it, oldest first, for several)
#   --paired     an earlier release's commit: its model and card, run by today's core on the same test images
#                (tools/evaluation/previous_release.py), for paired differences with intervals (repeat: oldest first)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHON=/usr/bin/python3
# The tools' packages, as tools/oac gives them, also when this runs on its own; the defaults' one home is
# tools/lib/paths.py.
export PYTHONPATH="$ROOT/tools${PYTHONPATH:+:$PYTHONPATH}"
{ read -r CARD; read -r DATASETS; } < <("$PYTHON" -c 'from lib.paths import MODEL_CARD, datasets_dir; print(MODEL_CARD); print(datasets_dir())')
SEED_CARD=""
SPLIT="$ROOT/models/data/split.csv"
WORK="$ROOT/models/cache/eval"
OUT="$ROOT/models"
previous_args=()
paired_commits=()

RELEASES="$ROOT/models/releases.json"
for ((i = 1; i < $#; i++)); do
  [ "${!i}" = "--releases" ] && { next=$((i + 1)); RELEASES="${!next}"; }
done
[ -f "$RELEASES" ] || { echo "evaluate_model: release list $RELEASES not found" >&2; exit 1; }
# Read before the flags, so that a flag overrides the file.
while IFS=$'\t' read -r kind value; do
  case "$kind" in
    split) SPLIT="$ROOT/$value" ;;
    seed_card) SEED_CARD="$ROOT/$value" ;;
    previous) previous_args+=(--previous "$ROOT/$value") ;;
    paired) paired_commits+=("$value") ;;
  esac
done < <("$PYTHON" -c '
import json, sys
listed = json.load(open(sys.argv[1]))
for key in ("split", "seed_card"):
    if listed.get(key):
        print(f"{key}\t{listed[key]}")
for release in listed.get("releases", []):
    print("previous\t" + release["metrics"])
    print("paired\t" + release["commit"])
' "$RELEASES")

while [ $# -gt 0 ]; do
  case "$1" in
    --releases) shift 2 ;;
    --card) CARD="$2"; shift 2 ;;
    --seed-card) SEED_CARD="$2"; shift 2 ;;
    --split) SPLIT="$2"; shift 2 ;;
    --datasets) DATASETS="$2"; shift 2 ;;
    --work) WORK="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --previous) previous_args+=(--previous "$2"); shift 2 ;;
    --paired) paired_commits+=("$2"); shift 2 ;;
    -h|--help) sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "evaluate_model: unknown argument $1 (see --help)" >&2; exit 1 ;;
  esac
done
[ -f "$CARD" ] || { echo "evaluate_model: model card $CARD not found" >&2; exit 1; }
[ -f "$SPLIT" ] || { echo "evaluate_model: split manifest $SPLIT not found (tools/oac split)" >&2; exit 1; }
[ -d "$DATASETS" ] || { echo "evaluate_model: dataset folder $DATASETS not found (--datasets DIR)" >&2; exit 1; }
mkdir -p "$WORK"

# classify CARD LIST OUT: exit status 2 means some files were refused, which the evaluation counts.
classify() {
  local status=0
  echo "evaluate_model: classifying $(wc -l <"$2") files from $2" >&2
  "$ROOT/tools/oac" classify --model "$1" --quiet --files-from "$2" >"$3" || status=$?
  if [ "$status" -ne 0 ] && [ "$status" -ne 2 ]; then
    echo "evaluate_model: classify failed (exit $status) on $2" >&2
    exit "$status"
  fi
}

# classify_versions ROWS DIR: the split's val or test images as people export them, each version classified
# like the published files (DIR/<version>.jsonl).
classify_versions() {
  "$PYTHON" "$ROOT/tools/evaluation/robustness.py" --split "$SPLIT" --datasets "$DATASETS" --rows "$1" --out "$2"
  for version_dir in "$2"/*/; do
    version="$(basename "$version_dir")"
    find "$version_dir" -type f \( -name '*.png' -o -name '*.jpg' \) | sort >"$2/$version.txt"
    classify "$CARD" "$2/$version.txt" "$2/$version.jsonl"
  done
}

"$PYTHON" "$ROOT/tools/evaluation/split_files.py" --split "$SPLIT" --datasets "$DATASETS" val >"$WORK/val.txt"
classify "$CARD" "$WORK/val.txt" "$WORK/val.jsonl"
# The calibration holds on the versions too: fitted on the validation images and their versions together.
classify_versions val "$WORK/robustness-val"
"$PYTHON" "$ROOT/tools/evaluation/calibrate.py" --predictions "$WORK/val.jsonl" --split "$SPLIT" --card "$CARD" \
  --datasets "$DATASETS" --versions "$WORK/robustness-val"

"$PYTHON" "$ROOT/tools/evaluation/split_files.py" --split "$SPLIT" --datasets "$DATASETS" test >"$WORK/test.txt"
classify "$CARD" "$WORK/test.txt" "$WORK/test.jsonl"

paired_args=()
for commit in "${paired_commits[@]}"; do
  release="$WORK/previous/$commit"
  "$PYTHON" "$ROOT/tools/evaluation/previous_release.py" --commit "$commit" --out "$release" --card "$CARD"
  classify "$release/card.json" "$WORK/test.txt" "$release/test.jsonl"
  paired_args+=(--paired "$release")
done

seed_args=()
if [ -n "$SEED_CARD" ]; then
  "$PYTHON" "$ROOT/tools/evaluation/split_files.py" --seed-test --datasets "$DATASETS" >"$WORK/seed_test.txt"
  classify "$SEED_CARD" "$WORK/seed_test.txt" "$WORK/seed_test.jsonl"
  seed_args=(--seed "$WORK/seed_test.jsonl" --seed-card "$SEED_CARD")
fi

"$PYTHON" "$ROOT/tools/evaluation/ood_corpus.py" --out "$WORK/ood_corpus"
find "$WORK/ood_corpus" -type f \( -name '*.png' -o -name '*.jpg' \) | sort >"$WORK/ood.txt"
classify "$CARD" "$WORK/ood.txt" "$WORK/ood.jsonl"

classify_versions test "$WORK/robustness"

"$PYTHON" "$ROOT/tools/evaluation/evaluate.py" --test "$WORK/test.jsonl" --split "$SPLIT" --card "$CARD" \
  "${seed_args[@]}" --ood "$WORK/ood.jsonl" --robustness "$WORK/robustness" "${previous_args[@]}" \
  "${paired_args[@]}" --out "$OUT" --datasets "$DATASETS"
