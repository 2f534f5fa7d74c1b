"""Evaluation plots as PNG files: ROC and precision-recall curves, reliability diagram, confusion matrix.

Each function draws one figure from arrays and writes it atomically. Figures are made
with matplotlib's object interface on the Agg canvas, never through ``pyplot``: no global
backend is switched and nothing stays open between calls.

Binary problems draw the positive class (``classes[1]``); multi-class problems one curve
per class against the rest; multi-label problems one curve per label.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medsight.errors import MissingDependencyError
from medsight.io._atomic import atomic_path

__all__ = ["confusion_plot", "evaluation_plots", "pr_plot", "reliability_plot", "roc_plot"]

DPI = 120


def _figure(width: float = 5.0, height: float = 5.0):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingDependencyError(
            "matplotlib is not installed, so no plots can be drawn", hint="pip install 'medsight[ml]'"
        ) from None
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return path


def _curves(y: np.ndarray, probs: np.ndarray, classes: list[str], multilabel: bool):
    """(name, truth 0/1, score) per curve; a curve needs both truths present."""
    if multilabel:
        pairs = [(c, y[:, k], probs[:, k]) for k, c in enumerate(classes)]
    elif len(classes) == 2:
        pairs = [(classes[1], (y == 1).astype(int), probs[:, 1])]
    else:
        pairs = [(c, (y == k).astype(int), probs[:, k]) for k, c in enumerate(classes)]
    return [(name, truth, score) for name, truth, score in pairs if 0 < truth.sum() < len(truth)]


def roc_plot(
    y,
    probs,
    classes: list[str],
    path: str | Path,
    *,
    multilabel: bool = False,
    threshold: float | None = None,
) -> Path:
    """ROC curve(s) with their AUC; a binary model's operating point at `threshold` is marked."""
    from sklearn.metrics import roc_auc_score, roc_curve

    y, probs = np.asarray(y), np.asarray(probs, float)
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--", label="chance")
    curves = _curves(y, probs, classes, multilabel)
    for name, truth, score in curves:
        fpr, tpr, _ = roc_curve(truth, score)
        ax.plot(fpr, tpr, lw=2, label=f"{name} (AUC {roc_auc_score(truth, score):.3f})")
    if threshold is not None and len(classes) == 2 and not multilabel and curves:
        _, truth, score = curves[0]
        decided = score >= threshold
        ax.plot(
            np.mean(decided[truth == 0]),
            np.mean(decided[truth == 1]),
            "o",
            color="black",
            label=f"threshold {threshold:.3g}",
        )
    if not curves:
        ax.text(0.5, 0.5, "undefined: one class only", ha="center")
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1.02),
        xlabel="1 - specificity (false positive rate)",
        ylabel="sensitivity (true positive rate)",
        title="ROC",
        aspect="equal",
    )
    ax.legend(loc="lower right", fontsize="small")
    return _save(fig, path)


def pr_plot(y, probs, classes: list[str], path: str | Path, *, multilabel: bool = False) -> Path:
    """Precision-recall curve(s) with their average precision; prevalence as the chance line."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    y, probs = np.asarray(y), np.asarray(probs, float)
    fig = _figure()
    ax = fig.add_subplot()
    curves = _curves(y, probs, classes, multilabel)
    for name, truth, score in curves:
        precision, recall, _ = precision_recall_curve(truth, score)
        line = ax.plot(
            recall,
            precision,
            lw=2,
            drawstyle="steps-post",
            label=f"{name} (AP {average_precision_score(truth, score):.3f})",
        )[0]
        ax.axhline(truth.mean(), color=line.get_color(), lw=1, ls=":")
    if not curves:
        ax.text(0.5, 0.5, "undefined: one class only", ha="center")
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1.02),
        xlabel="recall (sensitivity)",
        ylabel="precision (PPV)",
        title="Precision-recall (dotted: prevalence)",
        aspect="equal",
    )
    ax.legend(loc="lower left", fontsize="small")
    return _save(fig, path)


def reliability_plot(curve: dict, path: str | Path, *, ece: float | None = None) -> Path:
    """Reliability diagram: accuracy against confidence per bin, with the bins' counts below.

    `curve` is what `medsight.tasks.classify.metrics.reliability` returns (or its JSON form).
    """
    edges = np.asarray(curve["edges"], float)
    conf = np.asarray([np.nan if v is None else v for v in curve["confidence"]], float)
    acc = np.asarray([np.nan if v is None else v for v in curve["accuracy"]], float)
    count = np.asarray(curve["count"], float)
    centres, widths = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    used = count > 0
    fig = _figure(5.0, 6.0)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    top.plot([0, 1], [0, 1], color="grey", lw=1, ls="--", label="perfect calibration")
    top.bar(centres[used], acc[used], width=widths[used], edgecolor="black", alpha=0.7, label="accuracy")
    top.bar(
        centres[used],
        conf[used] - acc[used],
        bottom=acc[used],
        width=widths[used],
        color="red",
        alpha=0.3,
        hatch="//",
        label="gap to confidence",
    )
    title = "Reliability" + (f" (ECE {ece:.3f})" if ece is not None else "")
    top.set(xlim=(0, 1), ylim=(0, 1), ylabel="accuracy", title=title)
    top.legend(loc="upper left", fontsize="small")
    bottom.bar(centres, count, width=widths, edgecolor="black", color="grey")
    bottom.set(xlabel="confidence of the predicted class", ylabel="images")
    return _save(fig, path)


def confusion_plot(matrix, classes: list[str], path: str | Path, *, multilabel: bool = False) -> Path:
    """Counts, rows truth and columns prediction; multi-label: one 2 x 2 panel per label."""
    panels = (
        [(c, np.asarray(m), ["no", "yes"]) for c, m in zip(classes, matrix)]
        if multilabel
        else [("", np.asarray(matrix), list(classes))]
    )
    cols = min(4, len(panels))
    rows = -(-len(panels) // cols)
    side = max(3.0, 0.6 * len(panels[0][2]) + 2)
    fig = _figure(side * cols, side * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, (name, m, names) in zip(axes, panels):
        ax.imshow(m, cmap="Blues", vmin=0)
        for (i, j), value in np.ndenumerate(m):
            ax.text(
                j,
                i,
                str(int(value)),
                ha="center",
                va="center",
                color="white" if value > m.max() / 2 else "black",
            )
        ax.set(
            xticks=range(len(names)),
            yticks=range(len(names)),
            xticklabels=names,
            yticklabels=names,
            xlabel="prediction",
            ylabel="truth",
            title=name or "Confusion matrix",
        )
        ax.tick_params(axis="x", labelrotation=45 if len(names) > 4 else 0)
    for ax in axes[len(panels) :]:
        ax.set_axis_off()
    return _save(fig, path)


def evaluation_plots(result: dict, folder: str | Path) -> list[Path]:
    """Write ``roc.png``, ``pr.png``, ``reliability.png`` and ``confusion.png`` into `folder`.

    `result` is what `medsight.infer.evaluate_classifier` returns.
    """
    from medsight.infer.evaluate import prediction_arrays

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    y, probs = prediction_arrays(result)
    classes, multilabel = result["classes"], result["multilabel"]
    return [
        roc_plot(y, probs, classes, folder / "roc.png", multilabel=multilabel, threshold=result["threshold"]),
        pr_plot(y, probs, classes, folder / "pr.png", multilabel=multilabel),
        reliability_plot(result["reliability"], folder / "reliability.png", ece=result["ece"]),
        confusion_plot(result["confusion_matrix"], classes, folder / "confusion.png", multilabel=multilabel),
    ]
