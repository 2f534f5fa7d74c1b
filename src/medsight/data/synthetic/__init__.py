"""Synthetic phantoms with known ground truth, deterministic by seed."""

from medsight.data.synthetic.ct import body_ct

__all__ = ["body_ct"]
