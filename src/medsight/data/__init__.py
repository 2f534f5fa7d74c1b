"""Datasets: manifests, importers, patient-level splits, augmentation, synthetic phantoms.

- `Manifest`, `Sample`, `read_manifest`, `write_manifest`: one dataset format for every task.
- `load_dataset(path)`: a manifest, or a folder/file in a layout an importer recognises.
- `synthetic`: phantom cohorts with exact ground truth, deterministic by seed.
"""

from medsight.data.importers import load_dataset
from medsight.data.manifest import SPLITS, Manifest, Sample, read_manifest, write_manifest

__all__ = ["SPLITS", "Manifest", "Sample", "load_dataset", "read_manifest", "write_manifest"]
