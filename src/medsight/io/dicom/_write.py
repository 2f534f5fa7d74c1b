"""Write an `Image` as a DICOM series: one single-frame file per k slice.

Geometry (the inverse of the reader's mapping):

- array axis ``i`` runs along a row: DICOM column index, direction = first
  ImageOrientationPatient triplet, spacing = PixelSpacing[1];
- array axis ``j`` runs down a column: DICOM row index, second triplet, PixelSpacing[0];
- slice ``k`` holds ``array[0, :, :, k].T`` (rows, columns) and its
  ImagePositionPatient is the LPS+ position of voxel ``(0, 0, k)``.

pydicom is imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from medsight.errors import (
    GeometryError,
    MissingDependencyError,
    SeriesError,
    UnsupportedError,
)
from medsight.image import LPS_TO_RAS, Image
from medsight.io._atomic import atomic_path

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["TRANSFER_SYNTAXES", "write_series"]

# name -> (transfer syntax UID, package that provides the encoder or None if built in)
TRANSFER_SYNTAXES: dict[str, tuple[str, str | None]] = {
    "explicit": ("1.2.840.10008.1.2.1", None),  # Explicit VR Little Endian
    "implicit": ("1.2.840.10008.1.2", None),  # Implicit VR Little Endian
    "jpeg2000": ("1.2.840.10008.1.2.4.90", "pylibjpeg-openjpeg"),  # JPEG 2000 Lossless
    "rle": ("1.2.840.10008.1.2.5", None),  # RLE Lossless (pydicom has a numpy encoder)
    "jpegls": ("1.2.840.10008.1.2.4.80", "pyjpegls"),  # JPEG-LS Lossless
}
_SOP_CLASSES = {
    "CT": "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
    "MR": "1.2.840.10008.5.1.4.1.1.4",  # MR Image Storage
}
_SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
_PATIENT_DEFAULTS = {"PatientName": "Anonymous^", "PatientID": "ANONYMOUS"}  # "^": a family name, per PS3.5
_PATIENT_DEFAULTS.update(PatientBirthDate="", PatientSex="")  # type 2: empty means unknown
_PATIENT_KEYS = [*_PATIENT_DEFAULTS, "PatientAge", "PatientWeight", "PatientSize"]
_TOL = 1e-4  # on unit vectors: about 0.006 degrees


def write_series(
    image: Image,
    folder: str | os.PathLike,
    *,
    modality: str = "CT",
    transfer_syntax: str = "explicit",
    patient: Mapping[str, Any] | None = None,
    series_description: str = "",
    series_number: int = 1,
    study_uid: str | None = None,
    series_uid: str | None = None,
    rescale: tuple[float, float] | None = None,
) -> list[Path]:
    """Write a single-channel image as a DICOM series, one file per slice.

    Parameters
    ----------
    image : Image
        One channel, 2D (one file) or 3D (one file per k slice). Voxel values must be
        integers that fit 16 bits, unless `rescale` is given.
    folder : str or PathLike
        Created if missing; must not already hold ``.dcm`` files. Files are named
        ``IM00001.dcm``, ``IM00002.dcm``, ... in k order.
    modality : str
        ``"CT"`` and ``"MR"`` give CT / MR Image Storage objects, anything else
        (``"OT"``, ``"US"``, ...) Secondary Capture.
    transfer_syntax : {"explicit", "implicit", "jpeg2000", "rle", "jpegls"}
        Explicit or implicit VR Little Endian, or a lossless compression. JPEG 2000
        needs pylibjpeg-openjpeg and images of at least 32 x 32 pixels; JPEG-LS
        needs pyjpegls.
    patient : mapping, optional
        Patient module attributes by DICOM keyword (``PatientName``, ``PatientID``,
        ``PatientSex``, ``PatientAge``, ``PatientBirthDate``, ...). An integer
        ``PatientAge`` means years; dates may be ``datetime.date``.
    series_description : str
    series_number : int
    study_uid, series_uid : str, optional
        Generated when omitted; pass `study_uid` to put several series in one study.
    rescale : (slope, intercept), optional
        Store ``round((value - intercept) / slope)`` and write these as
        RescaleSlope / RescaleIntercept, for values that do not fit 16 bits or are
        not integers. Without it values are stored as they are (slope 1, intercept 0).

    Returns
    -------
    list of Path
        The files written, in k order.

    Raises
    ------
    GeometryError
        More than one channel, non-perpendicular in-plane axes, or sheared slices.
    UnsupportedError
        Values that do not fit 16-bit integers, or an image too small for JPEG 2000.
    MissingDependencyError
        pydicom, or the encoder for `transfer_syntax`, is not installed.
    SeriesError
        `folder` is a file or already holds DICOM files.

    Notes
    -----
    Each file is written atomically; if writing fails part-way, the files this call
    already wrote are removed, so the folder never holds a truncated series.
    """
    _import_pydicom()
    if not isinstance(image, Image):
        raise TypeError(f"image must be a medsight Image, not {type(image).__name__}")
    if image.num_channels != 1:
        raise GeometryError(
            f"a DICOM series holds one channel, this image has {image.num_channels}",
            hint="Write each channel separately, e.g. image.with_array(image.array[[c]])",
        )
    ts_uid = _transfer_syntax(transfer_syntax)
    modality = _checked("CS", str(modality).upper(), "modality")
    stored, slope, intercept = _stored_values(image, rescale)
    plane = _plane_geometry(image)
    if transfer_syntax == "jpeg2000" and min(stored.shape[:2]) < 32:
        raise UnsupportedError(
            f"JPEG 2000 needs images of at least 32 x 32 pixels, this one is "
            f"{stored.shape[0]} x {stored.shape[1]} (the openjpeg encoder uses 6 resolutions)",
            hint="Use transfer_syntax='rle' or 'jpegls' for small images",
        )

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise SeriesError("is a file; write_series needs a folder", path=folder)
    existing = sorted(folder.glob("*.dcm")) if folder.is_dir() else []
    if existing:
        raise SeriesError(
            f"folder already holds DICOM files ({existing[0].name}, ...)",
            path=folder,
            hint="Write each series to its own new or empty folder",
        )

    series = {"study_uid": study_uid, "series_uid": series_uid}
    series.update(series_number=series_number, series_description=series_description)
    common = _common_elements(stored, slope, intercept, plane, modality, patient, series)
    made_folder = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    try:
        for k in range(stored.shape[2]):
            ds = _slice_dataset(common, ts_uid, stored[:, :, k].T, plane, k)
            target = folder / f"IM{k + 1:05d}.dcm"
            with atomic_path(target) as tmp:
                ds.save_as(tmp, enforce_file_format=True)
            written.append(target)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        if made_folder and not any(folder.iterdir()):
            folder.rmdir()
        raise
    return written


# -- checks and conversions ---------------------------------------------------


def _import_pydicom() -> None:
    try:
        import pydicom  # noqa: F401
    except ImportError as exc:  # pragma: no cover - pydicom is in the [dicom] extra
        raise MissingDependencyError(
            "writing DICOM needs the package pydicom", hint="pip install 'medsight[dicom]'"
        ) from exc


def _transfer_syntax(name: str) -> str:
    if name not in TRANSFER_SYNTAXES:
        close = difflib.get_close_matches(str(name), TRANSFER_SYNTAXES, n=1)
        maybe = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"transfer_syntax must be one of {', '.join(TRANSFER_SYNTAXES)}, not {name!r}{maybe}"
        )
    uid, package = TRANSFER_SYNTAXES[name]
    if package is not None:
        from pydicom.pixels import get_encoder

        if not get_encoder(uid).is_available:
            extra = "pip install pyjpegls" if name == "jpegls" else "pip install 'medsight[dicom]'"
            raise MissingDependencyError(
                f"writing transfer syntax {name!r} needs the package {package}", hint=extra
            )
    return uid


def _checked(vr: str, value: Any, what: str) -> Any:
    """Refuse a value that would make an invalid DICOM element (strict when writing)."""
    from pydicom import config
    from pydicom.valuerep import validate_value

    try:
        validate_value(vr, value, config.RAISE)
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None
    return value


def _stored_values(image: Image, rescale) -> tuple[np.ndarray, float, float]:
    """The 16-bit integers to store, shape (I, J, K), and the slope and intercept."""
    data = image.array[0]
    if image.ndim == 2:
        data = data[:, :, None]
    if data.dtype == bool:
        data = data.astype(np.uint8)
    if not (np.issubdtype(data.dtype, np.integer) or np.issubdtype(data.dtype, np.floating)):
        raise UnsupportedError(f"cannot store {data.dtype} voxels in DICOM; use integers or floats")
    is_float = np.issubdtype(data.dtype, np.floating)
    if is_float and not np.all(np.isfinite(data)):
        raise UnsupportedError("the image holds NaN or infinite voxels, which DICOM cannot store")
    if rescale is None:
        slope, intercept = 1.0, 0.0
        if is_float and not np.array_equal(data, np.round(data)):
            raise UnsupportedError(
                "voxel values are not integers and would be rounded",
                hint=f"Pass rescale=(slope, intercept), e.g. {_suggest_rescale(data)}",
            )
        values = data
    else:
        slope, intercept = (float(v) for v in rescale)
        if not (np.isfinite(slope) and np.isfinite(intercept) and slope != 0):
            raise ValueError(f"rescale must be a finite (slope, intercept) with slope != 0, got {rescale}")
        values = np.round((data.astype(np.float64) - intercept) / slope)
    lo, hi = (values.min(), values.max()) if values.size else (0, 0)
    unsigned = np.issubdtype(image.array.dtype, np.unsignedinteger) or image.array.dtype == bool
    if unsigned and lo >= 0 and hi <= 65535:  # keep unsigned data unsigned
        dtype = np.uint16
    elif lo >= -32768 and hi <= 32767:
        dtype = np.int16
    elif lo >= 0 and hi <= 65535:
        dtype = np.uint16
    else:
        raise UnsupportedError(
            f"stored values {lo:g} to {hi:g} do not fit 16 bits",
            hint=f"Pass rescale=(slope, intercept), e.g. {_suggest_rescale(data)}",
        )
    return values.astype(dtype, copy=False), slope, intercept


def _suggest_rescale(data: np.ndarray) -> str:
    lo, hi = float(data.min()), float(data.max())
    slope = max(hi - lo, 1e-12) / 65535
    return f"rescale=({slope:.6g}, {lo + 32768 * slope:.6g})"


class _Plane(NamedTuple):
    iop: np.ndarray  # (6,) ImageOrientationPatient
    pixel_spacing: tuple[float, float]  # (row spacing = along j, column spacing = along i)
    positions: np.ndarray  # (K, 3) ImagePositionPatient of each slice
    slice_spacing: float | None  # None for a 2D image


def _plane_geometry(image: Image) -> _Plane:
    """The DICOM image plane of each slice, in LPS+ mm."""
    lps = LPS_TO_RAS @ image.affine
    axis_i, axis_j, axis_k = lps[:3, 0], lps[:3, 1], lps[:3, 2]
    spacing_i, spacing_j = float(np.linalg.norm(axis_i)), float(np.linalg.norm(axis_j))
    row_dir, col_dir = axis_i / spacing_i, axis_j / spacing_j
    if abs(row_dir @ col_dir) > _TOL:
        angle = np.degrees(np.arccos(np.clip(row_dir @ col_dir, -1, 1)))
        raise GeometryError(
            f"voxel axes i and j meet at {angle:.3f} degrees; DICOM pixels must be rectangles",
            hint="Resample the image onto an orthogonal grid first",
        )
    if image.ndim == 2:
        return _Plane(_unit_iop(row_dir, col_dir), (spacing_j, spacing_i), lps[None, :3, 3], None)
    spacing_k = float(np.linalg.norm(axis_k))
    normal = np.cross(row_dir, col_dir)
    if image.spatial_shape[2] > 1 and np.linalg.norm(np.cross(axis_k / spacing_k, normal)) > _TOL:
        raise GeometryError(
            "slices are sheared (k axis not perpendicular to the image plane, as with gantry "
            "tilt); a DICOM series of parallel slices cannot hold this geometry",
            hint="Resample the image onto an orthogonal grid first",
        )
    positions = lps[:3, 3] + np.arange(image.spatial_shape[2])[:, None] * axis_k
    return _Plane(_unit_iop(row_dir, col_dir), (spacing_j, spacing_i), positions, spacing_k)


def _unit_iop(row_dir: np.ndarray, col_dir: np.ndarray) -> np.ndarray:
    iop = np.concatenate([row_dir, col_dir])
    iop[np.abs(iop) < 1e-12] = 0.0  # no "6.1e-17" from rotation matrices
    return iop


def _ds(value: float) -> str:
    """A decimal string (at most 16 characters): the shortest exact repr when it fits."""
    from pydicom.valuerep import format_number_as_ds

    value = float(value) + 0.0  # + 0.0 turns -0.0 into 0.0
    text = repr(value)
    return text if len(text) <= 16 else format_number_as_ds(value)


def _patient_elements(patient: Mapping[str, Any] | None) -> dict[str, Any]:
    from pydicom.datadict import dictionary_VR, tag_for_keyword

    out = dict(_PATIENT_DEFAULTS)
    for key, value in (patient or {}).items():
        tag = tag_for_keyword(key)
        if tag is None or tag >> 16 != 0x0010:
            close = difflib.get_close_matches(str(key), _PATIENT_KEYS, n=1)
            maybe = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"patient: {key!r} is not a DICOM Patient module keyword{maybe}")
        vr = dictionary_VR(tag)
        if key == "PatientAge" and isinstance(value, (int, np.integer)):
            value = f"{int(value):03d}Y"
        elif vr == "DA" and isinstance(value, (_dt.date, _dt.datetime)):
            value = value.strftime("%Y%m%d")
        elif vr == "DS" and isinstance(value, (int, float, np.number)):
            value = _ds(value)
        elif value is None:
            value = ""
        if vr != "SQ":
            _checked(vr, value, f"patient {key}")
        out[key] = value
    return out


# -- datasets -----------------------------------------------------------------


def _common_elements(stored, slope, intercept, plane, modality, patient, series) -> dict[str, Any]:
    """Elements shared by every slice, by keyword."""
    from pydicom.uid import generate_uid

    for key in ("study_uid", "series_uid"):
        if series[key] is not None:
            _checked("UI", series[key], key)
    sop_class = _SOP_CLASSES.get(modality, _SECONDARY_CAPTURE)
    now = _dt.datetime.now()
    e: dict[str, Any] = {"SpecificCharacterSet": "ISO_IR 192", "SOPClassUID": sop_class}
    for level in ("InstanceCreation", "Study", "Series", "Content"):
        e[f"{level}Date"], e[f"{level}Time"] = now.strftime("%Y%m%d"), now.strftime("%H%M%S.%f")
    e.update(_patient_elements(patient))
    e.update(
        ImageType=["DERIVED", "SECONDARY", *{"CT": ["AXIAL"], "MR": ["OTHER"]}.get(modality, [])],
        Modality=modality,
        StudyInstanceUID=series["study_uid"] or generate_uid(),
        StudyID="1",
        AccessionNumber="",
        ReferringPhysicianName="",
        SeriesInstanceUID=series["series_uid"] or generate_uid(),
        SeriesNumber=int(series["series_number"]),
        SeriesDescription=_checked("LO", str(series["series_description"]), "series_description"),
        AcquisitionNumber=1,
        Manufacturer="MedSight",
        ManufacturerModelName="medsight",
        SoftwareVersions=_version(),
        FrameOfReferenceUID=generate_uid(),
        PositionReferenceIndicator="",
        ImageOrientationPatient=[_ds(v) for v in plane.iop],
        PixelSpacing=[_ds(v) for v in plane.pixel_spacing],
        SliceThickness="" if plane.slice_spacing is None else _ds(plane.slice_spacing),
        SamplesPerPixel=1,
        PhotometricInterpretation="MONOCHROME2",
        Rows=int(stored.shape[1]),
        Columns=int(stored.shape[0]),
        BitsAllocated=16,
        BitsStored=16,
        HighBit=15,
        PixelRepresentation=1 if stored.dtype == np.int16 else 0,
    )
    if plane.slice_spacing is not None:
        e["SpacingBetweenSlices"] = _ds(plane.slice_spacing)
    if modality == "CT":
        e.update(KVP="", PatientPosition="")  # type 2: unknown
    elif modality == "MR":
        mr_type = "2D" if plane.slice_spacing is None else "3D"
        e.update(ScanningSequence="RM", SequenceVariant="NONE", ScanOptions="", EchoTime="")
        e.update(MRAcquisitionType=mr_type, RepetitionTime="", EchoTrainLength="")
        e.update(PatientPosition="")
    else:
        e["ConversionType"] = "WSD"  # Secondary Capture made on a workstation
    # MR Image Storage has no Modality LUT: write the rescale only when it does something.
    if modality != "MR" or (slope, intercept) != (1.0, 0.0):
        e.update(RescaleIntercept=_ds(intercept), RescaleSlope=_ds(slope))
        if modality == "CT":
            e["RescaleType"] = "HU"
    if modality == "CT":
        center, width = 40.0, 400.0  # soft-tissue window, what a CT viewer opens with
    else:  # the full range of real-world values
        lo, hi = sorted(float(v) * slope + intercept for v in (stored.min(), stored.max()))
        center, width = (lo + hi) / 2, max(hi - lo, 1.0)
    e.update(WindowCenter=_ds(center), WindowWidth=_ds(width))
    return e


def _slice_dataset(common, ts_uid, pixels, plane, k) -> Dataset:
    """One slice's dataset; `pixels` is (rows, columns)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, generate_uid

    sop_uid = generate_uid()
    ds = Dataset()
    for keyword, value in common.items():
        setattr(ds, keyword, value)
    ds.SOPInstanceUID = sop_uid
    ds.InstanceNumber = k + 1
    ds.ImagePositionPatient = [_ds(v) for v in plane.positions[k]]
    ds.SliceLocation = _ds(plane.positions[k] @ np.cross(plane.iop[:3], plane.iop[3:]))

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = common["SOPClassUID"]
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "MEDSIGHT"
    ts = UID(ts_uid)
    if ts.is_compressed:
        meta.TransferSyntaxUID = UID("1.2.840.10008.1.2.1")
        ds.file_meta = meta
        ds.compress(ts, np.ascontiguousarray(pixels), generate_instance_uid=False)
    else:
        meta.TransferSyntaxUID = ts
        ds.file_meta = meta
        ds.PixelData = np.ascontiguousarray(pixels, dtype=pixels.dtype.newbyteorder("<")).tobytes()
    return ds


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"medsight {version('medsight')}"
    except PackageNotFoundError:
        return "medsight"
