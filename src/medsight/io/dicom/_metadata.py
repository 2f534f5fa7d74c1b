"""Collect the header fields later rooms rely on (modality, patient, UIDs, device, window)."""

from __future__ import annotations

# metadata key -> DICOM keyword
_FIELDS = {
    "modality": "Modality",
    "patient_id": "PatientID",
    "patient_sex": "PatientSex",
    "study_uid": "StudyInstanceUID",
    "series_uid": "SeriesInstanceUID",
    "frame_of_reference_uid": "FrameOfReferenceUID",
    "sop_class_uid": "SOPClassUID",
    "study_date": "StudyDate",
    "series_date": "SeriesDate",
    "acquisition_date": "AcquisitionDate",
    "study_description": "StudyDescription",
    "series_description": "SeriesDescription",
    "series_number": "SeriesNumber",
    "manufacturer": "Manufacturer",
    "manufacturer_model": "ManufacturerModelName",
    "institution": "InstitutionName",
    "body_part": "BodyPartExamined",
    "photometric": "PhotometricInterpretation",
    "slice_thickness": "SliceThickness",
    "magnetic_field_strength": "MagneticFieldStrength",
}


def parse_age(value) -> float | None:
    """DICOM age string ('045Y', '006M', '003W', '010D') in years."""
    text = str(value or "").strip().upper()
    if len(text) < 2 or not text[:-1].isdigit():
        return None
    per_year = {"Y": 1, "M": 12, "W": 52.1775, "D": 365.25}.get(text[-1])
    return None if per_year is None else round(int(text[:-1]) / per_year, 3)


def _plain(value):
    """Header values as JSON-friendly Python types."""
    if value is None or value == "":
        return None
    if hasattr(value, "__iter__") and not isinstance(value, (str, bytes)):
        return [_plain(v) for v in value]
    for cast in (int, float):
        if isinstance(value, cast):
            return cast(value)
    if type(value).__name__ in ("DSfloat", "DSdecimal"):
        return float(value)
    if type(value).__name__ == "IS":
        return int(value)
    return str(value)


def _first(value):
    return value[0] if isinstance(value, list) and value else value


def collect_metadata(ds, *, n_files: int) -> dict:
    """Metadata of a series from its first data set: only fields that are present."""
    meta = {"format": "dicom", "n_files": n_files}
    for key, keyword in _FIELDS.items():
        value = _plain(ds.get(keyword))
        if value is not None:
            meta[key] = value
    age = parse_age(ds.get("PatientAge"))
    if age is not None:
        meta["patient_age"] = age
    for key, keyword in (("window_center", "WindowCenter"), ("window_width", "WindowWidth")):
        value = _first(_plain(ds.get(keyword)))
        if value is not None:
            meta[key] = float(value)
    if "sop_class_uid" in meta:
        name = getattr(ds.SOPClassUID, "name", "")
        if name and name != meta["sop_class_uid"]:
            meta["sop_class"] = name
    meta_ts = getattr(ds, "file_meta", None)
    if meta_ts is not None and "TransferSyntaxUID" in meta_ts:
        meta["transfer_syntax"] = meta_ts.TransferSyntaxUID.name
    return meta
