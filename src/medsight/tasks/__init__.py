"""Task rooms: one folder per task (classify, segment; detect to come), same file roles in each.

Shared here: `bootstrap_ci`, percentile intervals that resample patients; `apply_overrides`,
plan fields set from the command line.
"""

from medsight.tasks.bootstrap import bootstrap_ci
from medsight.tasks.overrides import apply_overrides

__all__ = ["apply_overrides", "bootstrap_ci"]
