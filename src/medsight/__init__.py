"""MedSight: AI on medical images, from DICOM to validated, explained and audited results.

The map (each room may import only the rooms above it):

- ``errors``: ``MedsightError`` and its subclasses.
- ``image``: ``Image``, a channel-first array with a 4x4 affine to RAS+ mm, kind and metadata.
- ``io``: ``read`` and ``write`` for DICOM, NIfTI, NRRD, MetaImage, PNG/JPEG/TIFF/GIF/BMP and
  MedMNIST files; atomic writes.
- ``data``: dataset manifests, importers, patient-level splits, augmentation, synthetic phantoms.
- ``models``: networks built by name (MONAI) and the model bundle (safetensors + plan + card).
- ``tasks``: per task (classify, segment, detect): planning rules, preprocessing, metrics;
  bootstrap intervals.
- ``train``: the training loop, checkpoints and resume, calibration; `train_classifier`.
- ``infer``: predictors from bundles (torch, ONNX Runtime), evaluation on a split.
- ``audit``: provenance sidecars and data quality checks (later: bias metrics, audit trail).
- ``report``: plots (ROC, PR, reliability, confusion); later the validation report.
- ``deid``: de-identification: DICOM PS3.15 Annex E profile and options, keyed UIDs, dates and
  pseudonyms, burned-in text, NIfTI/NRRD headers, audit log (``medsight deid``).
- ``cli``: the ``medsight`` command (Typer); a thin shell over the rooms above.

Rooms still to come (enhance, mesh, longitudinal, explain, serve) are planned in
``docs/architecture.md``.
"""

__version__ = "0.1.0"

from medsight.errors import MedsightError
from medsight.image import Image

__all__ = ["Image", "MedsightError", "__version__"]
