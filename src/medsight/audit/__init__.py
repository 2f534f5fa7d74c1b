"""Accountability: provenance sidecars now; data quality, bias metrics and the audit trail later.

This room never imports torch.
"""

from medsight.audit.provenance import Provenance, sha256_file

__all__ = ["Provenance", "sha256_file"]
