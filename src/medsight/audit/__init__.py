"""Accountability: provenance sidecars and data quality checks; bias metrics and the audit trail later.

This room never imports torch. The quality checks load on first use, so commands that only
write a provenance sidecar (`convert`) do not pay for importing the data room.
"""

from medsight.audit.provenance import Provenance, sha256_file

__all__ = ["Finding", "Provenance", "Report", "Thresholds", "check_quality", "sha256_file"]

_QC_NAMES = ("Finding", "Report", "Thresholds", "check_quality")


def __getattr__(name: str):
    if name in _QC_NAMES:
        from medsight.audit import qc

        return getattr(qc, name)
    raise AttributeError(f"module 'medsight.audit' has no attribute {name!r}")
