#!/usr/bin/python3
"""Render the readable model card (models/<name>.md) from the card JSON, the single source of truth.

usage: tools/oac card [--card models/oa-inceptionv3.json]
"""
import argparse
from pathlib import Path

from lib.card import load_card
from lib.paths import MODEL_CARD


def inline(value):
    """A card value as readable text: dicts as "key value" pairs, lists joined, floats to 4 digits."""
    if isinstance(value, dict):
        return ", ".join(f"{key} {inline(item)}" for key, item in value.items())
    if isinstance(value, list):
        return "; ".join(inline(item) for item in value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def bullet_table(mapping):
    return "\n".join(f"- **{key}**: {inline(value)}" for key, value in mapping.items())


def metric_lines(metrics):
    lines = []
    for name, value in metrics.items():
        if isinstance(value, dict):
            lines.append(f"- **{name}**: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                                     for k, v in value.items() if not isinstance(v, (dict, list))))
        elif isinstance(value, float):
            lines.append(f"- **{name}**: {value:.4g}")
        else:
            lines.append(f"- **{name}**: {value}")
    return "\n".join(lines)


def kl_grade_line(kl_grade):
    if not kl_grade:
        return "not in the card"
    if kl_grade["rule"] == "cut_points":
        line = "expected grade cut at " + ", ".join(f"{cut:.3g}" for cut in kl_grade["cut_points"])
    else:
        line = "the most probable grade"
    return line + (f" ({kl_grade['method']})" if "method" in kl_grade else "")


def kl_set_line(kl_set):
    if not kl_set:
        return "not in the card"
    line = f"{kl_set['coverage']:.0%} coverage at threshold {kl_set['threshold']:.4g}"
    details = "; ".join(kl_set[key] for key in ("method", "fitted_on") if key in kl_set)
    return f"{line} ({details})" if details else line


def render(card):
    p = card["preprocess"]
    sections = [
        f"# Model card: {card['name']} {card['version']}",
        "_Generated from `" + card["name"] + ".json` by `tools/oac card`; edit the JSON, not this file._",
        "**Not a medical device.** " + card.get("intended_use", ""),
        card.get("description", ""),
        "## Files\n" + bullet_table({"model": f"`{card['model_file']}`", "bytes": card.get("bytes"),
                                      "sha256": f"`{card.get('sha256')}`"}),
        "## Preprocessing (read by the C++ core, the page, the CLI and training)\n" + bullet_table({
            "input": f"{p['layout']} float32 [N,3,{p['input_size']},{p['input_size']}], grey replicated to 3 channels",
            "normalisation": f"(v - {p['mean']}) / {p['std']} on the [0,1] windowed image",
            "window": f"percentiles {p['window_percentiles']} map to 0 and 1",
            "borders": f"uniform rows/columns within {p['border_tolerance']} of black or white, at most {p['border_max_fraction']} per side",
            "two knees": f"width/height >= {p['bilateral_min_aspect']} splits into left and right",
            "fit": p["fit"],
            "not a radiograph": f"refused when its colour exceeds {p['radiograph']['max_colour']} or its roughness "
                                f"{p['radiograph']['max_roughness']} ({p['radiograph']['measured']})"}),
        "## Knee localisation (whole radiographs)\n" + bullet_table({
            **card.get("localisation", {}),
            "search": f"box sides from {p['localise']['smallest_knee']} of the longer side (at least "
                      f"{p['localise']['min_knee_pixels']} px) to the shorter side in {p['localise']['scale_steps']} steps; "
                      f"a knee scores >= {p['localise']['min_score']}, a second beside it >= {p['localise']['pair_min_score']}",
            "joint crops": f"a picture whose shorter side x {p['localise']['joint_crop_fraction']} is under "
                           f"{p['localise']['min_knee_pixels']} px, or whose best match fills that fraction, is cropped as above",
            "framing": p["localise"]["framing"]}),
        "## Outputs\n" + bullet_table({**card["outputs"], "per knee": card.get("test_time", "the knee as given, once")}),
        "## Labels\n" + bullet_table(card.get("labels", {})),
        "## Calibration and gates\n" + bullet_table({
            "calibration": card["calibration"],
            "threshold on calibrated P(OA)": f"{card['threshold']} ({card.get('threshold_rule', 'rule not recorded')})",
            "KL grade shown": kl_grade_line(card.get("kl_grade")),
            "KL prediction set": kl_set_line(card.get("kl_set")),
            "out-of-distribution threshold": f"{card['ood']['threshold']} ({card['ood'].get('rule', 'rule not recorded')})"}),
    ]
    if card.get("training"):
        sections.append("## Training\n" + bullet_table(card["training"]))
    if card.get("compute"):
        sections.append("## Compute\n" + bullet_table(card["compute"]))
    if card.get("self_test"):
        self_test_field = card["self_test"]
        sections.append("## Known-answer self-test\n" + bullet_table({
            "what": "the page's worker and the CLI run the probe when their session starts and score nothing when an "
                    "output is further from the expectation than its tolerance; `tools/oac classify --self-test` "
                    "runs it on a machine",
            "probe": self_test_field["probe"],
            "expected": self_test_field["expected"],
            "tolerance": self_test_field["tolerance"],
            "measured on": self_test_field["measured_on"],
            "checked on": self_test_field.get("checked_on", "not recorded")}))
    if card.get("metrics"):
        sections.append("## Metrics (held-out clean test unless named; see REPORT.md for intervals)\n" + metric_lines(card["metrics"]))
    sections += ["## Data\n" + bullet_table(card.get("data", {})), "## Credits\n" + bullet_table(card.get("credits", {}))]
    return "\n\n".join(s for s in sections if s) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--card", type=Path, default=MODEL_CARD)
    args = parser.parse_args()
    card = load_card(args.card)
    out = args.card.with_suffix(".md")
    out.write_text(render(card))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
