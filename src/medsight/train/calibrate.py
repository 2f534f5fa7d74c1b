"""Temperature scaling (Guo et al. 2017): one scalar T fitted on validation logits.

Dividing logits by T > 1 softens over-confident probabilities without changing which
class wins, so accuracy and AUC stay as they are while calibration improves.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fit_temperature"]


def fit_temperature(logits: np.ndarray, targets: np.ndarray, *, multilabel: bool = False) -> float:
    """The T > 0 minimising validation negative log-likelihood of ``logits / T``."""
    import torch

    z = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    y = torch.as_tensor(np.asarray(targets))
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)  # T = exp(log_t) stays positive
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")
    if multilabel:
        loss_fn = torch.nn.BCEWithLogitsLoss()
        y = y.to(torch.float64)
    else:
        loss_fn = torch.nn.CrossEntropyLoss()
        y = y.long()

    def closure():
        optimizer.zero_grad()
        loss = loss_fn(z / log_t.exp(), y)
        loss.backward()
        return loss

    optimizer.step(closure)
    t = float(log_t.detach().exp())
    return t if np.isfinite(t) and 0.05 < t < 20 else 1.0
