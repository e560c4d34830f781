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

from data import knee_data
from data.knee_data import SEED_LABELS, SEED_SPLITS, SOURCES
from lib.paths import REPO_ROOT

LABEL_POLICY = (
    "The product predicts P(KL >= 2), radiographic osteoarthritis. label = 1 if KL >= 2 else 0: "
    "KL1 ('doubtful') images get label 0 but keep kl_grade = 1 for the KL head. KL grades come from "
    "kneeKL224/manifest.csv (matched by sha256) for OAI 224x224 crops and from the G0-G4 file names "
    "for the second collection. The 299x299 OAI crops have no KL grade (their patients are not in the "
    "KL manifest); their label comes from the seed folder, which files OAI knees as Normal = KL0-1 and "
    "Osteoarthritis = KL2-4.")


PATIENT_RULE = (
    "OAI 7-digit participant id from the file name; left and right knee (L/R, _1/_2) are one patient. "
    "Second-collection images have no id: images linked as the same radiograph or possibly the same knee "
    "form one group (`knee:<id>`).")


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


PEAK_BINS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.01)


def pair_kind(contents: list[knee_data.Content], pair: knee_data.KneePair) -> str:
    a, b = contents[pair.a], contents[pair.b]
    if a.source == b.source == "oai224":
        return "oai224, same patient" if a.patient == b.patient else "oai224, different patients"
    return " + ".join(sorted({str(a.source), str(b.source)}))


def near_duplicate_section(inventory: knee_data.Inventory) -> dict:
    contents = inventory.contents
    pairs = inventory.near_duplicates
    peaks_by_kind = defaultdict(list)
    for pair in inventory.knee_pairs:
        peaks_by_kind[pair_kind(contents, pair)].append(pair.peak)
    histogram = {kind: np.histogram(peaks, bins=PEAK_BINS)[0].tolist() for kind, peaks in sorted(peaks_by_kind.items())}
    null = np.array(peaks_by_kind.get("oai224, different patients", []))

    owners, hashes, _, _ = knee_data.knee_table(contents)
    oai = np.array([contents[o].source == "oai224" and contents[o].patient is not None for o in owners], dtype=bool)
    nearest_bits = np.zeros(0, dtype=np.int32)
    if oai.any():
        patient_codes = np.unique([contents[o].patient for o in owners[oai]], return_inverse=True)[1]
        nearest_bits = knee_data.nearest_other_group(hashes[oai], patient_codes)
    duplicate_bits = np.array([p.bits for p in pairs if not p.mirrored])

    same_knee = [p for p in inventory.knee_pairs
                 if knee_data.SAME_KNEE_MIN_PEAK <= p.peak < knee_data.SAME_RADIOGRAPH_MIN_PEAK
                 and contents[p.a].patient is None and contents[p.b].patient is None]
    clusters = Counter(inventory.cluster)
    multi = {cid: n for cid, n in clusters.items() if n > 1}
    return {
        "method": f"each canonical knee crop (oac_core.prepare, viewed at {knee_data.VIEW_SIZE}x{knee_data.VIEW_SIZE}; "
                  "both knees of a bilateral image separately) gets a 63-bit DCT pHash (8x8 lowest frequencies of "
                  f"its 32x32 block mean, DC dropped, bits = coefficient > median); its "
                  f"{knee_data.CANDIDATES_PER_KNEE} nearest knees by Hamming distance, as is and mirrored, are "
                  "compared by the peak of their phase correlation (Hann-windowed, 1 = identical up to a shift). "
                  "A mirrored match between the two knees of one OAI patient is the other knee, not a copy, "
                  "and is not counted",
        "same_radiograph_min_peak": knee_data.SAME_RADIOGRAPH_MIN_PEAK,
        "same_knee_min_peak": knee_data.SAME_KNEE_MIN_PEAK,
        "compared_pairs": len(inventory.knee_pairs),
        "peak_bins": list(PEAK_BINS),
        "peak_histogram_by_kind": histogram,
        "oai224_different_patients_peak": {
            "pairs": int(len(null)),
            "max": round(float(null.max()), 4) if len(null) else None,
            "percentile_99_9": round(float(np.percentile(null, 99.9)), 4) if len(null) else None,
            "at_or_above_threshold": int((null >= knee_data.SAME_RADIOGRAPH_MIN_PEAK).sum()),
        },
        "phash_bits": {
            "oai224_nearest_other_patient": {"knees": int(len(nearest_bits)),
                                             "min": int(nearest_bits.min()) if len(nearest_bits) else None,
                                             "median": float(np.median(nearest_bits)) if len(nearest_bits) else None},
            "near_duplicates": {"max": int(duplicate_bits.max()) if len(duplicate_bits) else None,
                                "median": float(np.median(duplicate_bits)) if len(duplicate_bits) else None},
        },
        "pairs": len(pairs),
        "mirrored_pairs": sum(1 for p in pairs if p.mirrored),
        "by_sources": dict(Counter(" + ".join(sorted({str(contents[p.a].source), str(contents[p.b].source)}))
                                   for p in pairs).most_common()),
        "by_location": dict(Counter(" | ".join(sorted([where(contents[p.a]), where(contents[p.b])]))
                                    for p in pairs).most_common()),
        "clusters_with_several_contents": len(multi),
        "cluster_sizes": dict(sorted(Counter(multi.values()).items())),
        "same_knee_pairs": len(same_knee),
        "list": [{"a": contents[p.a].path, "b": contents[p.b].path, "peak": round(p.peak, 3), "bits": p.bits,
                  "mirrored": p.mirrored} for p in pairs],
        "same_knee_list": [{"a": contents[p.a].path, "b": contents[p.b].path, "peak": round(p.peak, 3)}
                           for p in same_knee],
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
        "rule": PATIENT_RULE,
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
    lines += ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines + [""]


def seed_folders_by_source(report: dict) -> dict[str, dict[str, int]]:
    folders = defaultdict(dict)
    for row in report["confounding"]["seed_files"]:
        folders[row["source"]][f"{row['seed_split']}/{row['seed_label']}"] = row["files"]
    return folders


def render_markdown(report: dict) -> str:
    src, dup, near, bad, pat = (report["sources"], report["exact_duplicates"], report["near_duplicates"],
                                report["contradictions"], report["patients"])
    out = ["# Data audit", "",
           "Generated by `tools/oac audit` (tools/data/audit.py); machine-readable twin: `audit.json`. "
           "`tools/oac split` writes the leak-free manifest `split.csv` from the same inventory.", "",
           f"Datasets: {', '.join(report['datasets'])}. **{report['files']} files, "
           f"{report['unique_contents']} unique contents** (sha256).", "",
           "## Key findings", ""]
    out += [f"- Exact duplicates: {dup['groups']} contents stored {dup['files_in_groups']} times "
            f"({dup['redundant_files']} redundant files).",
            f"- Near-duplicates (same radiograph, different bytes; phase-correlation peak >= "
            f"{near['same_radiograph_min_peak']}): {near['pairs']} pairs ({near['mirrored_pairs']} mirrored), "
            f"{near['clusters_with_several_contents']} clusters of >1 content; {near['same_knee_pairs']} more "
            "second-collection pairs possibly of the same knee (kept in one split group).",
            f"- Contradictory labels: {bad['clusters']} clusters, {bad['dropped_files']} files "
            f"({bad['dropped_contents']} contents) dropped from the split.",
            f"- OAI patients: {pat['oai_patients']}; shared between seed splits: " +
            ", ".join(f"{k} {v['patients']}" for k, v in pat["seed_split_leaks"].items()) + ".",
            "- Source and label are confounded in the seed dataset (files per seed folder): " +
            "; ".join(f"{source} in " + ", ".join(f"{folder} {n}" for folder, n in folders.items())
                      for source, folders in seed_folders_by_source(report).items()) + ".", "",
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

    null = near["oai224_different_patients_peak"]
    bits = near["phash_bits"]
    out += ["## Near-duplicates", "", "Method: " + near["method"] + ".", "",
            f"**Same radiograph: phase-correlation peak >= {near['same_radiograph_min_peak']}.** Why: knees of "
            f"*different* OAI patients cannot be the same radiograph; over {null['pairs']} such compared pairs "
            f"(each knee's closest pHash neighbours, so the hardest cases) the peak reaches at most {null['max']} "
            f"(99.9th percentile {null['percentile_99_9']}; "
            f"{null['at_or_above_threshold']} at or above the threshold). Identical or re-encoded images score ~1, "
            "re-cropped copies 0.5-0.9. The margin over the different-patient maximum is small, which is why "
            "second-collection pairs between the two thresholds are still grouped (below): a copy scoring just "
            "under the threshold cannot cross splits; it only escapes the contradiction check.", "",
            f"**Why no pHash Hamming threshold decides:** the nearest pHash of a different OAI patient is as close "
            f"as {bits['oai224_nearest_other_patient']['min']} of 63 bits (median "
            f"{bits['oai224_nearest_other_patient']['median']}), while confirmed near-duplicates lie up to "
            f"{bits['near_duplicates']['max']} bits apart (median {bits['near_duplicates']['median']}): any "
            "Hamming threshold either merges different patients or misses re-cropped copies. pHash only "
            "retrieves the candidates.", "",
            f"**Possibly the same knee: {near['same_knee_min_peak']} <= peak < {near['same_radiograph_min_peak']}** "
            "between images without a patient id (second collection). Such pairs look like re-cropped or "
            "re-scaled copies of one radiograph; they are kept in one split group (column `patient` = "
            f"`knee:<id>`) but not treated as duplicates: {near['same_knee_pairs']} pairs.", "",
            f"Compared pairs by kind and peak ({near['compared_pairs']} pairs):", ""]
    edges = near["peak_bins"]
    out += table(["kind"] + [f"{lo:g}-{min(hi, 1):g}" for lo, hi in zip(edges, edges[1:])],
                 [[kind] + counts for kind, counts in near["peak_histogram_by_kind"].items()])
    out += [f"Near-duplicate pairs: {near['pairs']} ({near['mirrored_pairs']} mirrored).", ""]
    out += table(["sources", "pairs"], [[k, v] for k, v in near["by_sources"].items()])
    out += table(["where the two contents are", "pairs"], [[k, v] for k, v in near["by_location"].items()])
    out += [f"Clusters of several contents: {near['clusters_with_several_contents']}; sizes (contents: clusters) "
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
    out += ["## The split manifest (`split.csv`, written by `tools/oac split`)", "",
            "One row per unique content usable for training (recognised source, consistent labels). Columns: "
            "`path` (relative to the datasets folder; the first copy of duplicated files), `sha256`, `source`, "
            "`label` (1 = KL >= 2, empty = unknown), `kl_grade` (empty = unknown), `patient` (OAI participant id, "
            "or `knee:<id>` for images without one: the possibly-same-knee group), `cluster` (same-radiograph "
            "cluster), `split` (train/val/test), `seed_split` / `seed_label` (every seed folder the content was "
            "filed in, `;`-separated, e.g. `Valid;test`; empty for kneeKL224-only images) for re-running the "
            "original seed protocol.", "",
            "Groups = union of patient and cluster; no group crosses splits. Each group belongs to the "
            "source x label stratum most of its images are in; within a stratum, groups are ordered by a seeded "
            "hash and cut at 70% / 85% of the stratum's images (train / val / test), so every stratum is split "
            "about 70/15/15 and a re-run with more data moves only groups near the cuts. A source too small to "
            "reach the test cut still gets its smallest group in test. kneeKL224's own train/val split is not "
            "kept: it is patient-disjoint but has no test part and no second-collection images.", "",
            "Caveats: the oai299 crops are all from `test/Osteoarthritis` (label 1, no KL grade), so within "
            "that source label and source coincide -- report them separately rather than training on them "
            "for the OA head if that matters. Second-collection images have no patient id; knees of one "
            "person photographed in separate radiographs cannot be linked, only copies of one radiograph.", ""]
    if report["notes"] or report["decode_errors"]:
        out += ["## Notes", ""]
        out += [f"- {note}" for note in report["notes"]]
        out += [f"- `{e['path']}`: the core cannot decode it: {e['error']}" for e in report["decode_errors"]]
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    knee_data.add_inventory_arguments(parser)
    parser.add_argument("--out", default=str(REPO_ROOT / "models" / "data"),
                        help="output folder for audit.md and audit.json (default: models/data)")
    args = parser.parse_args(argv)

    inventory = knee_data.inventory_from_arguments(args)
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
