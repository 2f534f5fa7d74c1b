"""Task rooms: one folder per task (classify; segment and detect to come), same file roles in each.

Shared here: `bootstrap_ci`, percentile intervals that resample patients.
"""

from medsight.tasks.bootstrap import bootstrap_ci

__all__ = ["bootstrap_ci"]
