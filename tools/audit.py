#!/usr/bin/python3
"""Data audit of the knee X-ray datasets: `tools/oac audit [--datasets DIR] [--out DIR]`.

Finds exact duplicates (sha256), near-duplicates (pHash of the core's canonical knee crop),
contradictory labels, OAI patients shared between splits, the source of every image and how
source and label are confounded. Writes audit.md (for people) and audit.json (for tools).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

import knee_data
from knee_data import SEED_LABELS, SEED_SPLITS, SOURCES

LABEL_POLICY = (
    "The product predicts P(KL >= 2), radiographic osteoarthritis. label = 1 if KL >= 2 else 0: "
    "KL1 ('doubtful') images get label 0 but keep kl_grade = 1 for the KL head. KL grades come from "
    "kneeKL224/manifest.csv (matched by sha256) for OAI 224x224 crops and from the G0-G4 file names "
    "for the second collection. The 299x299 OAI crops have no KL grade (their patients are not in the "
    "KL manifest); their label comes from the seed folder, which files OAI knees as Normal = KL0-1 and "
    "Osteoarthritis = KL2-4.")


def folder_of(record: knee_data.FileRecord) -> str:
    return f"{record.seed_split}/{record.seed_label}" if record.seed_split else record.path.rsplit("/", 2)[0]


def where(content: knee_data.Content) -> str:
    """Distinct folders holding a content, e.g. 'Valid/Osteoarthritis + test/Osteoarthritis'."""
    return " + ".join(sorted({folder_of(f) for f in content.files}))


def build_report(inventory: knee_data.Inventory) -> dict:
    contents, files = inventory.contents, inventory.files
    report = {
        "datasets": sorted({f.path.split("/", 1)[0] for f in files}),
        "files": len(files),
        "unique_contents": len(contents),
        "label_policy": LABEL_POLICY,
        "sources": source_section(inventory),
        "confounding": confounding_section(inventory),
        "kl_grades": kl_section(inventory),
        "exact_duplicates": exact_duplicate_section(inventory),
        "near_duplicates": near_duplicate_section(inventory),
        "contradictions": contradiction_section(inventory),
        "patients": patient_section(inventory),
        "split_groups": group_section(inventory),
        "notes": inventory.notes,
        "decode_errors": [{"path": c.path, "error": c.decode_error} for c in contents if c.decode_error],
    }
    return report


def source_section(inventory: knee_data.Inventory) -> dict:
    formats = defaultdict(Counter)
    unrecognised = []
    for record in inventory.files:
        describe = record.header.describe if record.header else "not a PNG"
        if record.source is None:
            unrecognised.append({"path": record.path, "format": describe})
        formats[record.source or "unrecognised"][describe] += 1
    content_counts = Counter(c.source or "unrecognised" for c in inventory.contents)
    return {
        "rule": {
            "oai224": "name NNNNNNN[LR].png, 224x224 8-bit gray",
            "kneexray": "name <Grade>G<k> (n).png, 300x162 or 640x161 (both knees), RGB or 16-bit gray",
            "oai299": "name NNNNNNN_[12].png, 299x299 gray",
        },
        "files": {s: sum(formats[s].values()) for s in formats},
        "unique_contents": dict(content_counts),
        "formats": {s: dict(f) for s, f in formats.items()},
        "bilateral_contents": sum(1 for c in inventory.contents if len(c.phashes) == 2),
        "unrecognised": unrecognised,
    }


def confounding_section(inventory: knee_data.Inventory) -> dict:
    """Files per source x seed split x seed label, and per source x KL grade within each seed folder."""
    table = Counter()
    kl_table = Counter()
    kl_by_content = {f.path: c.kl_grade for c in inventory.contents for f in c.files}
    for record in inventory.files:
        if record.seed_split:
            table[(record.source or "unrecognised", record.seed_split, record.seed_label)] += 1
            grade = kl_by_content[record.path]
            kl_table[(record.seed_split, record.seed_label, record.source or "unrecognised",
                      "?" if grade is None else str(grade))] += 1
    return {
        "seed_files": [{"source": s, "seed_split": sp, "seed_label": lb, "files": n}
                       for (s, sp, lb), n in sorted(table.items(), key=_seed_order)],
        "seed_files_by_kl": [{"seed_split": sp, "seed_label": lb, "source": s, "kl_grade": g, "files": n}
                             for (sp, lb, s, g), n in sorted(kl_table.items())],
    }


def _seed_order(item):
    (source, split, label), _ = item
    return (SOURCES.index(source) if source in SOURCES else 9, SEED_SPLITS.index(split), label)


def kl_section(inventory: knee_data.Inventory) -> dict:
    grades = defaultdict(Counter)
    basis = defaultdict(Counter)
    for content in inventory.contents:
        source = content.source or "unrecognised"
        grades[source]["?" if content.kl_grade is None else str(content.kl_grade)] += 1
        basis[source][content.label_basis or "unknown"] += 1
    return {"unique_contents_by_grade": {s: dict(sorted(g.items())) for s, g in grades.items()},
            "label_basis": {s: dict(b) for s, b in basis.items()}}


def exact_duplicate_section(inventory: knee_data.Inventory) -> dict:
    duplicated = [c for c in inventory.contents if len(c.files) > 1]
    return {
        "groups": len(duplicated),
        "files_in_groups": sum(len(c.files) for c in duplicated),
        "redundant_files": sum(len(c.files) - 1 for c in duplicated),
        "by_location": dict(Counter(where(c) for c in duplicated).most_common()),
        "list": [[f.path for f in c.files] for c in duplicated],
    }


def near_duplicate_section(inventory: knee_data.Inventory) -> dict:
    contents = inventory.contents
    threshold = knee_data.NEAR_DUPLICATE_MAX_BITS
    pairs = inventory.near_duplicates
    wider = knee_data.find_near_duplicates(contents, 2 * threshold)
    pair_bits = Counter(p.bits for p in wider)

    owners, hashes = knee_data.knee_hash_table(contents)
    oai = np.array([contents[o].patient is not None and contents[o].source == "oai224" for o in owners], dtype=bool)
    nearest = np.zeros(0, dtype=np.int32)
    if oai.any():
        patient_codes = np.unique([contents[o].patient for o in owners[oai]], return_inverse=True)[1]
        nearest = knee_data.nearest_other_group(hashes[oai], patient_codes)

    clusters = Counter(inventory.cluster)
    multi = {cid: n for cid, n in clusters.items() if n > 1}
    return {
        "hash": f"DCT pHash: core canonical knee crop resized to {knee_data.PHASH_SIZE}x{knee_data.PHASH_SIZE} "
                f"by oac_core.prepare, lowest {knee_data.PHASH_FREQS}x{knee_data.PHASH_FREQS} DCT coefficients "
                f"without DC vs their median = {knee_data.PHASH_BITS} bits; each knee of a bilateral image "
                "hashed separately; also compared mirrored",
        "max_bits": threshold,
        "pairs_by_bits_up_to_twice_threshold": {str(b): pair_bits[b] for b in range(2 * threshold + 1)},
        "oai224_nearest_other_patient_bits": {
            "knees": int(len(nearest)),
            "min": int(nearest.min()) if len(nearest) else None,
            "percentile_0_1": float(np.percentile(nearest, 0.1)) if len(nearest) else None,
            "median": float(np.median(nearest)) if len(nearest) else None,
            "at_or_below_threshold": int((nearest <= threshold).sum()),
        },
        "pairs": len(pairs),
        "mirrored_pairs": sum(1 for p in pairs if p.mirrored),
        "by_sources": dict(Counter(" + ".join(sorted({str(contents[p.a].source), str(contents[p.b].source)}))
                                   for p in pairs).most_common()),
        "by_location": dict(Counter(" | ".join(sorted([where(contents[p.a]), where(contents[p.b])]))
                                    for p in pairs).most_common()),
        "clusters_with_several_contents": len(multi),
        "cluster_sizes": dict(sorted(Counter(multi.values()).items())),
        "list": [{"a": contents[p.a].path, "b": contents[p.b].path, "bits": p.bits, "mirrored": p.mirrored}
                 for p in pairs],
    }


def contradiction_section(inventory: knee_data.Inventory) -> dict:
    by_cluster = defaultdict(list)
    for index, content in enumerate(inventory.contents):
        if inventory.dropped(index):
            by_cluster[inventory.cluster[index]].append(content)
    listing = []
    for cluster_id, group in sorted(by_cluster.items()):
        listing.append({"cluster": cluster_id, "reasons": inventory.conflicts[cluster_id],
                        "files": [f.path for c in group for f in c.files]})
    return {
        "rule": "a duplicate cluster (exact or near) whose files disagree on seed folder label, KL grade or "
                "OA label; every file of it is dropped from the split",
        "clusters": len(listing),
        "dropped_contents": sum(len(g) for g in by_cluster.values()),
        "dropped_files": sum(len(item["files"]) for item in listing),
        "by_reason": dict(Counter("; ".join(item["reasons"]) for item in listing).most_common()),
        "list": listing,
    }


def patient_section(inventory: knee_data.Inventory) -> dict:
    splits_of = defaultdict(set)
    knees_of = defaultdict(set)
    kl_splits_of = defaultdict(set)
    sources_of = defaultdict(set)
    for content in inventory.contents:
        if content.patient is None:
            continue
        sources_of[content.patient].add(content.source)
        for record in content.files:
            knees_of[content.patient].add(record.name)
            if record.seed_split:
                splits_of[content.patient].add(record.seed_split)
        if content.kl_split:
            kl_splits_of[content.patient].add(content.kl_split)
    leaks = {}
    for a, b in (("train", "Valid"), ("train", "test"), ("Valid", "test")):
        shared = sorted(p for p, s in splits_of.items() if a in s and b in s)
        leaks[f"{a}/{b}"] = {"patients": len(shared), "list": shared}
    return {
        "rule": "OAI 7-digit participant id from the file name; left and right knee (L/R, _1/_2) are one "
                "patient. Second-collection images have no id: each duplicate cluster is its own group.",
        "oai_patients": len(sources_of),
        "by_source": dict(Counter(s for ss in sources_of.values() for s in ss)),
        "seed_dataset_patients": len(splits_of),
        "seed_split_leaks": leaks,
        "kneeKL224_patients_in_both_train_and_val": sum(1 for s in kl_splits_of.values() if len(s) > 1),
        "patients_with_several_images": sum(1 for k in knees_of.values() if len(k) > 1),
    }


def group_section(inventory: knee_data.Inventory) -> dict:
    sizes = Counter(inventory.group[i] for i in range(len(inventory.contents)) if inventory.usable(i))
    return {"groups": len(sizes), "largest": max(sizes.values(), default=0),
            "usable_contents": sum(sizes.values())}


# ---------------------------------------------------------------------------------------------
# Markdown


def table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines + [""]


def render_markdown(report: dict) -> str:
    src, dup, near, bad, pat = (report["sources"], report["exact_duplicates"], report["near_duplicates"],
                                report["contradictions"], report["patients"])
    nearest = near["oai224_nearest_other_patient_bits"]
    out = ["# Data audit", "",
           "Generated by `tools/oac audit` (tools/audit.py); machine-readable twin: `audit.json`. "
           "`tools/oac split` writes the leak-free manifest `split.csv` from the same inventory.", "",
           f"Datasets: {', '.join(report['datasets'])}. **{report['files']} files, "
           f"{report['unique_contents']} unique contents** (sha256).", "",
           "## Key findings", ""]
    out += [f"- Exact duplicates: {dup['groups']} contents stored {dup['files_in_groups']} times "
            f"({dup['redundant_files']} redundant files).",
            f"- Near-duplicates (pHash <= {near['max_bits']} of 63 bits, different bytes): {near['pairs']} pairs "
            f"({near['mirrored_pairs']} mirrored), {near['clusters_with_several_contents']} clusters of >1 content.",
            f"- Contradictory labels: {bad['clusters']} clusters, {bad['dropped_files']} files "
            f"({bad['dropped_contents']} contents) dropped from the split.",
            f"- OAI patients: {pat['oai_patients']}; shared between seed splits: " +
            ", ".join(f"{k} {v['patients']}" for k, v in pat["seed_split_leaks"].items()) + ".",
            "- Source and label are confounded in the seed dataset (table below): the second collection is "
            "all `Osteoarthritis` in train/Valid and its G0 images are only in `test/Normal`.", "",
            "## Label policy", "", report["label_policy"], "",
            "## Sources", "", "Classified by file name **and** PNG header; a file whose name and format "
            "disagree is 'unrecognised' and kept out of the split.", ""]
    out += table(["source", "rule", "files", "unique contents", "formats"],
                 [[s, src["rule"].get(s, ""), src["files"].get(s, 0), src["unique_contents"].get(s, 0),
                   ", ".join(f"{k}: {v}" for k, v in sorted(src["formats"].get(s, {}).items()))]
                  for s in list(SOURCES) + (["unrecognised"] if "unrecognised" in src["files"] else [])])
    out += [f"Bilateral images (two canonical knees): {src['bilateral_contents']}. "
            f"Unrecognised files: {len(src['unrecognised'])}.", ""]
    for item in src["unrecognised"]:
        out.append(f"- `{item['path']}` ({item['format']})")

    out += ["## Source x split x label in the seed dataset (files)", ""]
    seed = report["confounding"]["seed_files"]
    columns = [(sp, lb) for sp in SEED_SPLITS for lb in SEED_LABELS]
    cell = {(r["source"], r["seed_split"], r["seed_label"]): r["files"] for r in seed}
    out += table(["source"] + [f"{sp}/{lb}" for sp, lb in columns],
                 [[s] + [cell.get((s, sp, lb), 0) for sp, lb in columns] for s in sorted({r["source"] for r in seed},
                  key=lambda s: SOURCES.index(s) if s in SOURCES else 9)])
    out += ["KL grades inside each seed folder (files; `?` = no grade known):", ""]
    by_folder = defaultdict(list)
    for r in report["confounding"]["seed_files_by_kl"]:
        by_folder[(r["seed_split"], r["seed_label"])].append(f"{r['source']} KL{r['kl_grade']}: {r['files']}")
    out += table(["seed folder", "source x KL"], [[f"{sp}/{lb}", ", ".join(by_folder[(sp, lb)])]
                                                  for sp, lb in columns if (sp, lb) in by_folder])

    out += ["## KL grades per source (unique contents)", ""]
    grades = report["kl_grades"]["unique_contents_by_grade"]
    out += table(["source", "KL0", "KL1", "KL2", "KL3", "KL4", "unknown", "label from"],
                 [[s] + [grades[s].get(str(g), 0) for g in range(5)] + [grades[s].get("?", 0),
                  ", ".join(f"{k}: {v}" for k, v in report["kl_grades"]["label_basis"][s].items())]
                  for s in grades])

    out += ["## Exact duplicates (sha256)", ""]
    out += table(["where the copies are", "contents"], [[k, v] for k, v in dup["by_location"].items()])

    out += ["## Near-duplicates (perceptual hash)", "", near["hash"] + ".", "",
            f"**Threshold: <= {near['max_bits']} differing bits of 63.** Why: knees of *different* OAI "
            f"patients cannot be the same radiograph; over {nearest['knees']} oai224 knees the nearest "
            f"other-patient knee is at min {nearest['min']}, 0.1th percentile {nearest['percentile_0_1']}, "
            f"median {nearest['median']} bits ({nearest['at_or_below_threshold']} at or below the threshold). "
            "Re-encodings of one radiograph land at a few bits; the histogram of all content pairs up to "
            "twice the threshold shows where the gap is:", ""]
    bits = near["pairs_by_bits_up_to_twice_threshold"]
    out += table(["bits"] + list(bits), [["pairs"] + list(bits.values())])
    out += table(["sources", "pairs"], [[k, v] for k, v in near["by_sources"].items()])
    out += table(["where the two contents are", "pairs"], [[k, v] for k, v in near["by_location"].items()])
    out += [f"Cluster sizes (contents per near-duplicate cluster): "
            + ", ".join(f"{k}: {v}" for k, v in near["cluster_sizes"].items()), ""]

    out += ["## Contradictory labels (dropped)", "", bad["rule"] + ".", ""]
    out += table(["reason", "clusters"], [[k, v] for k, v in bad["by_reason"].items()])
    for item in bad["list"]:
        out.append(f"- `{item['cluster']}` ({'; '.join(item['reasons'])}): " +
                   ", ".join(f"`{p}`" for p in item["files"]))
    out.append("")

    out += ["## Patients", "", pat["rule"], ""]
    out += [f"- OAI patients: {pat['oai_patients']} (by source: " +
            ", ".join(f"{k} {v}" for k, v in pat["by_source"].items()) + f"); with several images: "
            f"{pat['patients_with_several_images']}.",
            f"- Seed dataset patients: {pat['seed_dataset_patients']}; shared between its splits: " +
            ", ".join(f"{k}: {v['patients']}" for k, v in pat["seed_split_leaks"].items()) + ".",
            f"- kneeKL224 patients in both its train and val: {pat['kneeKL224_patients_in_both_train_and_val']}.",
            f"- Split groups (patient ∪ duplicate cluster): {report['split_groups']['groups']} over "
            f"{report['split_groups']['usable_contents']} usable contents, largest {report['split_groups']['largest']}.",
            ""]
    if report["notes"] or report["decode_errors"]:
        out += ["## Notes", ""]
        out += [f"- {note}" for note in report["notes"]]
        out += [f"- `{e['path']}`: the core cannot decode it: {e['error']}" for e in report["decode_errors"]]
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", help="folder holding Osteoarthritis_Dataset/ and kneeKL224/ "
                                           "(default: $OAC_DATASETS, else <repo>/../shared/datasets)")
    parser.add_argument("--out", default=str(knee_data.REPO / "models" / "data"),
                        help="output folder for audit.md and audit.json (default: models/data)")
    args = parser.parse_args(argv)

    datasets = knee_data.resolve_datasets_dir(args.datasets)
    try:
        core = knee_data.load_core()
    except RuntimeError as error:
        sys.exit(f"error: {error}")
    inventory = knee_data.build_inventory(datasets, core, progress=lambda m: print(m, file=sys.stderr))
    report = build_report(inventory)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "audit.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "audit.md").write_text(render_markdown(report))
    print(f"wrote {out / 'audit.md'} and {out / 'audit.json'}: {report['files']} files, "
          f"{report['exact_duplicates']['groups']} exact-duplicate groups, {report['near_duplicates']['pairs']} "
          f"near-duplicate pairs, {report['contradictions']['clusters']} contradictory clusters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
