"""Reports for reviewers: evaluation plots now; the validation report and model card later.

- `evaluation_plots(result, folder)`: ROC, precision-recall, reliability and confusion PNGs
  of a `medsight.infer.evaluate_classifier` result.
- `roc_plot`, `pr_plot`, `reliability_plot`, `confusion_plot`: one figure each, from arrays.

matplotlib (the ``ml`` extra) is imported only when a figure is drawn.
"""

from medsight.report.plots import confusion_plot, evaluation_plots, pr_plot, reliability_plot, roc_plot

__all__ = ["confusion_plot", "evaluation_plots", "pr_plot", "reliability_plot", "roc_plot"]
