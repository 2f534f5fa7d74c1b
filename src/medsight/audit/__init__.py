"""Accountability: provenance sidecars now; data quality, bias metrics and the audit trail later.

This room never imports torch.
"""

from medsight.audit.provenance import Provenance, sha256_file
from medsight.audit.qc import Finding, Report, Thresholds, check_quality

__all__ = ["Finding", "Provenance", "Report", "Thresholds", "check_quality", "sha256_file"]
