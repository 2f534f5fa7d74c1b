"""Detections as a DICOM SR measurement report (TID 1500), through highdicom.

One measurement group per finding, each referencing the source instances it lies on:

- a 2D box (a radiograph, one frame): TID 1410 Planar ROI, its region a closed SCOORD
  POLYLINE (the rectangle's four corners and the first again) on the source instance;
- a 3D box: TID 1411 Volumetric ROI with one such rectangle per source slice the box
  covers. SCOORD3D would need a closed planar polygon (highdicom's ``ImageRegion3D``), and a
  box is not planar; a volume surface of six faces is something viewers do not draw. Regions
  per slice reference the source instances directly and every TID 1500 viewer shows them.

SCOORD coordinates are (column, row) with ``(0, 0)`` the top left corner of the top left
pixel, so a pixel ``v`` spans ``[v, v + 1)``: exactly MedSight's box convention with
``i`` = column and ``j`` = row. The box's numbers go into the SR unchanged.

The finding type is a SNOMED CT concept for the classes that name one (nodule, mass,
lesion, tumour), else the class name in a local coding scheme (``99MEDSIGHT``: the
``99`` prefix marks private schemes in DICOM). The score is a "Certainty of Finding"
measurement (DCM 111012, in percent, as the CAD SR templates give it): how sure the
detector is that the finding is there, which is what a detector's score is; it is not a
probability of disease (DCM 111047 "Probability of cancer" would claim that).

pydicom and highdicom are imported inside the functions.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from medsight.errors import GeometryError, MissingDependencyError, UnsupportedError

__all__ = ["LOCAL_SCHEME", "write_detection_sr"]

LOCAL_SCHEME = "99MEDSIGHT"
# What highdicom's image library reads per modality (see `_library_entry`).
_DESCRIPTORS = {
    ("CT", "MR", "PT"): ("PixelSpacing", "ImageOrientationPatient", "ImagePositionPatient", "SliceThickness"),
    ("CR", "DX", "IO", "MG", "PX", "RF", "RG", "XA"): ("PatientOrientation", "ImagerPixelSpacing"),
}
_SNOMED_FINDINGS = {
    "nodule": "Nodule",
    "mass": "Mass",
    "lesion": "Lesion",
    "tumour": "Neoplasm",
    "tumor": "Neoplasm",
}


def write_detection_sr(
    boxes,
    labels: Sequence[str],
    scores: Sequence[float],
    source_files: Sequence[str | os.PathLike],
    path: str | os.PathLike,
    *,
    algorithm: str = "MedSight detector",
    series_description: str = "Detections",
    series_number: int = 301,
) -> Path:
    """Write findings as a Comprehensive 3D SR measurement report that references its sources.

    Parameters
    ----------
    boxes : array-like ``(N, 4)`` or ``(N, 6)``
        Boxes in voxels of the image read from `source_files` (``[i0, j0, i1, j1]`` with
        ``i`` = column and ``j`` = row; 3D adds ``k``, the index into `source_files`).
    labels : sequence of str
        Class name of each box.
    scores : sequence of float
        Detector score of each box, in ``[0, 1]``.
    source_files : sequence of path
        The source image files in slice order (``read(folder).metadata["files"]``): one
        file for 2D boxes, one per slice for 3D boxes. Their patient and study are the SR's.
    path : str or PathLike
        Output ``.dcm`` file, written atomically.
    algorithm, series_description, series_number
        Recorded in the SR.

    Returns
    -------
    Path

    Raises
    ------
    UnsupportedError
        A multi-frame source (enhanced CT/MR: its frames would need frame references), or
        2D boxes on more than one source file.
    GeometryError
        A box outside the source images.
    """
    hd, pydicom = _import_highdicom()
    from pydicom.sr.codedict import codes

    from medsight import __version__
    from medsight.io._atomic import atomic_path

    files = [Path(f) for f in source_files]
    if not files:
        raise ValueError("source_files is empty: pass the source image's files in slice order")
    boxes = np.asarray(boxes, np.float64)
    if boxes.size == 0:  # no findings: still a report, of what was looked at
        boxes = np.zeros((0, 4 if len(files) == 1 else 6))
    if boxes.ndim != 2 or boxes.shape[1] not in (4, 6) or not len(boxes) == len(labels) == len(scores):
        raise ValueError(f"need (N, 4) or (N, 6) boxes with N labels and scores, got boxes {boxes.shape}")
    sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    if any(int(ds.get("NumberOfFrames", 1) or 1) > 1 for ds in sources):
        raise UnsupportedError(
            "a DICOM SR of detections on a multi-frame image (enhanced CT/MR)",
            path=files[0],
            hint="Use the JSON/CSV detections, or a single-frame series (one file per slice)",
        )
    planar = boxes.shape[1] == 4
    if planar and len(files) != 1:
        raise UnsupportedError(
            f"2D boxes on a series of {len(files)} files", path=files[0].parent, hint="Give 3D boxes"
        )
    size = np.array([int(sources[0].Columns), int(sources[0].Rows)] + ([] if planar else [len(files)]), float)
    d = len(size)
    outside = np.flatnonzero((boxes[:, :d] < 0).any(1) | (boxes[:, d:] > size).any(1))
    if len(outside):
        raise GeometryError(
            f"box {boxes[outside[0]].tolist()} lies outside the source image "
            f"({' x '.join(map(str, size.astype(int)))} voxels)",
            path=files[0] if planar else files[0].parent,
            hint="Boxes are in voxels of the image read from these files, in their slice order",
        )

    algorithm_id = hd.sr.AlgorithmIdentification(name=algorithm, version=__version__)
    groups = []
    for n, (box, label, score) in enumerate(zip(boxes, labels, scores), start=1):
        x0, y0, x1, y1 = box[[0, 1, d, d + 1]]
        rectangle = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]])
        common = {
            "tracking_identifier": hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=f"finding {n}: {label}"),
            "finding_type": _finding_type(hd, codes, label),
            "algorithm_id": algorithm_id,
            "measurements": [
                hd.sr.Measurement(
                    name=codes.DCM.CertaintyOfFinding,
                    value=round(100.0 * float(score), 4),
                    unit=codes.UCUM.Percent,
                    algorithm_id=algorithm_id,
                )
            ],
        }
        # A slice v spans [v, v + 1): the box covers the slices from floor(k0) to ceil(k1) - 1.
        slices = [0] if planar else range(math.floor(box[2]), math.ceil(box[5]))
        regions = [
            hd.sr.ImageRegion(
                graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
                graphic_data=rectangle,
                source_image=hd.sr.SourceImageForRegion(
                    referenced_sop_class_uid=sources[k].SOPClassUID,
                    referenced_sop_instance_uid=sources[k].SOPInstanceUID,
                ),
            )
            for k in slices
        ]
        if planar:
            group = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
                referenced_region=regions[0], **common
            )
        else:
            group = hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
                referenced_regions=regions, **common
            )
        groups.append(group)

    if not groups:
        # TID 1500 needs a measurement group: an image-level one (TID 1501) that says the
        # detector looked at these images and found nothing, so a reader can tell "no finding"
        # from "not analysed".
        groups.append(
            hd.sr.MeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier="no findings"),
                algorithm_id=algorithm_id,
                finding_type=codes.SCT.Absent,  # "Finding: Absent"
                source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(ds) for ds in sources],
            )
        )
    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=pydicom.uid.generate_uid(entropy_srcs=["MedSight", algorithm, __version__]),
        name=algorithm,
        manufacturer_name="MedSight",
        model_name=algorithm,
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(
            observer_device_context=hd.sr.ObserverContext(
                observer_type=codes.cid270.Device, observer_identifying_attributes=device
            )
        ),
        procedure_reported=codes.SCT.ImagingProcedure,
        imaging_measurements=groups,
        referenced_images=[_library_entry(ds) for ds in sources],  # what the detector looked at
    )
    sr = hd.sr.Comprehensive3DSR(
        evidence=sources,
        content=report,
        series_number=series_number,
        series_instance_uid=hd.UID(),
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="MedSight",
        series_description=series_description,
        is_complete=True,  # not final nor verified: a machine's findings, no person has signed them
    )
    path = Path(path)
    with atomic_path(path) as tmp:
        sr.save_as(tmp, enforce_file_format=True)
    return path


def _library_entry(ds):
    """The header an image library entry (TID 1601) is made from: the source's own, or only its
    references and matrix size where it lacks the geometry highdicom describes its modality by.

    highdicom reads PixelSpacing, ImagePositionPatient, SliceThickness, ... (CT, MR, PET) or
    PatientOrientation and ImagerPixelSpacing (radiography) unconditionally; they are type 2
    or 3, so often empty or absent, and the descriptors they feed are optional in TID 1602.
    """
    from pydicom.dataset import Dataset

    for modalities, keys in _DESCRIPTORS.items():
        if ds.get("Modality") in modalities and any(k not in ds or ds[k].is_empty for k in keys):
            entry = Dataset()
            for keyword in ("SOPClassUID", "SOPInstanceUID", "Rows", "Columns", "FrameOfReferenceUID"):
                if keyword in ds:
                    setattr(entry, keyword, ds[keyword].value)
            entry.Modality = "OT"  # not written: it only tells highdicom to add no modality descriptors
            return entry
    return ds


def _finding_type(hd, codes, label: str):
    if label.lower() in _SNOMED_FINDINGS:
        return getattr(codes.SCT, _SNOMED_FINDINGS[label.lower()])
    return hd.sr.CodedConcept(value=label, scheme_designator=LOCAL_SCHEME, meaning=label)


def _import_highdicom():
    try:
        import highdicom
        import pydicom
    except ImportError as exc:  # pragma: no cover - both are in the [dicom] extra
        raise MissingDependencyError(
            "writing a DICOM SR needs highdicom and pydicom", hint="pip install 'medsight[dicom]'"
        ) from exc
    return highdicom, pydicom
