"""Reading and writing medical images.

- `read(path)`: DICOM file or folder, NIfTI, NRRD, MetaImage, PNG/JPEG/TIFF/GIF/BMP
  (2D, 1 mm pixels stated in ``metadata["notes"]``) and MedMNIST ``.npz`` (a
  `MedMNISTDataset`). DICOM LPS geometry becomes RAS+ here, once.
- `write(image, path)`: NIfTI, NRRD, MHA, PNG (with a display window), atomically.
- `write_dicom_series(image, folder)`: a valid DICOM series, one file per slice.
- `list_series(folder)`: the DICOM series in a folder, images and other objects.
- `write_seg(label_map, source_files, path)` / `read_seg(path, source=)`: DICOM SEG
  (highdicom) from and to label maps on the source series' grid.
- `write_detection_sr(boxes, labels, scores, source_files, path)`: detections as a DICOM
  SR measurement report (TID 1500, highdicom) referencing the source instances.
- `atomic_path(path)`: the temporary-file-then-rename helper every writer uses.
"""

from medsight.io._atomic import atomic_path
from medsight.io._dispatch import read, write
from medsight.io._medmnist import MedMNISTDataset
from medsight.io.dicom import SeriesInfo, list_series, read_dicom, read_seg, write_detection_sr, write_seg


def write_dicom_series(image, folder, **options):
    """Write `image` as a DICOM series; see `medsight.io.dicom._write.write_series`."""
    from medsight.io.dicom._write import write_series

    return write_series(image, folder, **options)


__all__ = [
    "MedMNISTDataset",
    "SeriesInfo",
    "atomic_path",
    "list_series",
    "read",
    "read_dicom",
    "read_seg",
    "write",
    "write_detection_sr",
    "write_dicom_series",
    "write_seg",
]
