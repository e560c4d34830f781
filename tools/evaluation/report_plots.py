"""The PNG figures of models/REPORT.md, drawn from what tools/evaluation/evaluate.py computed."""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")   # files only: no display on CI or the build machines
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

DPI = 120


def _label(name: str, entry: dict | None) -> str:
    if not entry or entry.get("value") is None or not math.isfinite(entry["value"]):
        return name
    return f"{name} (AUC {entry['value']:.3f})"


def plot_roc(path: Path, curves: dict, test_all: dict, seed_curves: dict | None, seed_all: dict | None) -> None:
    panels = 2 if seed_curves else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 5), squeeze=False)
    ax = axes[0, 0]
    fpr, tpr, _ = curves["roc_kl2_vs_kl0"]
    ax.plot(fpr, tpr, lw=2, label=_label("KL>=2 vs KL0", test_all["auc_kl2_vs_kl0"]))
    fpr, tpr, _ = curves["roc_kl2_vs_kl01"]
    ax.plot(fpr, tpr, lw=1.5, label=_label("KL>=2 vs KL0-1", test_all["auc_kl2_vs_kl01"]))
    for source, (fpr, tpr, _) in curves["roc_by_source"].items():
        ax.plot(fpr, tpr, lw=1, ls="--", label=f"{source}, KL>=2 vs KL0")
    specificity, sensitivity = curves["operating_point"]
    if math.isfinite(specificity) and math.isfinite(sensitivity):
        ax.plot([1 - specificity], [sensitivity], "ko", label="card threshold (vs KL0-1)")
    ax.set_title("Clean test split")
    panels_axes = [ax]
    if seed_curves:
        ax = axes[0, 1]
        fpr, tpr, _ = seed_curves["roc"]
        ax.plot(fpr, tpr, lw=2, color="C3", label=_label("folder labels", seed_all["auc"] if seed_all else None))
        ax.set_title("Seed protocol: Osteoarthritis_Dataset/test")
        panels_axes.append(ax)
    for ax in panels_axes:
        ax.plot([0, 1], [0, 1], color="0.7", lw=1)
        ax.set_xlabel("1 - specificity")
        ax.set_ylabel("sensitivity")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.01)
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def plot_reliability(path: Path, bins: dict, ece: dict) -> None:
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    edges = bins["edges"]
    centres = (edges[:-1] + edges[1:]) / 2
    filled = bins["count"] > 0
    top.plot([0, 1], [0, 1], color="0.7", lw=1, label="perfect calibration")
    top.plot(bins["mean_probability"][filled], bins["observed_rate"][filled], "o-", label="clean test")
    title = f"Reliability of P(OA), {len(centres)} bins"
    if ece.get("value") is not None and math.isfinite(ece["value"]):
        title += f": ECE {ece['value']:.3f}"
    top.set_title(title)
    top.set_ylabel("observed OA rate")
    top.set_ylim(0, 1)
    top.legend(loc="upper left", fontsize=8)
    bottom.bar(centres, bins["count"], width=edges[1] - edges[0], color="C0", alpha=0.6)
    bottom.set_yscale("log")
    bottom.set_ylabel("images")
    bottom.set_xlabel("mean predicted P(OA) in bin")
    bottom.set_xlim(0, 1)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def plot_confusion(path: Path, matrix: np.ndarray, test_all: dict) -> None:
    matrix = np.asarray(matrix)
    totals = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals > 0)
    fig, ax = plt.subplots(figsize=(5.4, 4.8))
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for (true, predicted), count in np.ndenumerate(matrix):
        ax.text(predicted, true, str(int(count)), ha="center", va="center",
                color="white" if share[true, predicted] > 0.5 else "black")
    grades = [f"KL{g}" for g in range(len(matrix))]
    ax.set_xticks(range(len(matrix)), grades)
    ax.set_yticks(range(len(matrix)), grades)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    accuracy, qwk = test_all["kl_accuracy"]["value"], test_all["qwk"]["value"]
    ax.set_title(f"KL grades, clean test\naccuracy {accuracy:.3f}, QWK {qwk:.3f}"
                 if math.isfinite(accuracy) and math.isfinite(qwk) else "KL grades, clean test")
    fig.colorbar(image, ax=ax, label="share of the true grade")
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def plot_ood_scores(path: Path, knee_scores: np.ndarray, corpus_scores: np.ndarray, threshold: float) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    finite = np.concatenate([knee_scores, corpus_scores])
    finite = finite[np.isfinite(finite)]
    if len(finite):
        bins = np.linspace(finite.min(), finite.max(), 60)
        ax.hist(knee_scores, bins=bins, alpha=0.6, density=True, label=f"test knees ({len(knee_scores)})")
        if len(corpus_scores):
            ax.hist(corpus_scores, bins=bins, alpha=0.6, density=True, label=f"non-knee corpus ({len(corpus_scores)})")
    ax.axvline(threshold, color="k", ls="--", label=f"OOD threshold {threshold:.3g}")
    ax.set_xlabel("ood_score (Mahalanobis distance of features)")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
