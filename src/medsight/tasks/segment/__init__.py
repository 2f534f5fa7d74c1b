"""Segmentation: planning rules, losses, metrics, measurements and post-processing of label maps."""
