"""Datasets, splits, augmentation and synthetic phantoms (phantoms only, for now)."""
