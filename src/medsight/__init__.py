"""MedSight: AI on medical images, from DICOM to validated, explained and audited results.

The map (each room may import only the rooms above it):

- ``errors``: ``MedsightError`` and its subclasses.
- ``image``: ``Image``, a channel-first array with a 4x4 affine to RAS+ mm, kind and metadata.
- ``io``: ``read`` and ``write`` for DICOM, NIfTI, NRRD, MetaImage, PNG/JPEG/TIFF/GIF/BMP and
  MedMNIST files; atomic writes.
- ``audit``: provenance sidecars (later: data quality, bias metrics, audit trail).
- ``cli``: the ``medsight`` command (Typer); a thin shell over the rooms above.

Rooms planned in ``docs/architecture.md`` (data, models, tasks, train, infer, enhance, mesh,
longitudinal, explain, report, deid, serve) arrive with later issues.
"""

__version__ = "0.1.0"

from medsight.errors import MedsightError
from medsight.image import Image

__all__ = ["Image", "MedsightError", "__version__"]
