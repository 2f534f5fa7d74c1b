"""A corpus of DICOM files full of distinctive fake PHI, to prove de-identification complete.

`write_phi_corpus(folder)` exports a small synthetic cohort as DICOM (chest radiographs,
ultrasound, CT) and then plants further tokens in every place PHI hides: person names,
IDs, dates, free-text descriptions and comments, nested sequences two levels deep,
private tags in a private creator block, the file meta information and, on ultrasound and
secondary capture images, text burned into the pixels. Each token is a random run of
capitals and digits that occurs nowhere by chance, and each date is a distinct, unusual
DA value, so a byte search of the output is meaningful.

`burn_text(pixels, text, ...)` renders a string into pixels (as ultrasound machines and
screen captures do); the text-detection measurements use it too.
"""

from __future__ import annotations

import datetime
import os
import string
from pathlib import Path

import numpy as np

__all__ = ["burn_text", "phi_dates", "phi_tokens", "write_phi_corpus"]

_FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
)


def phi_tokens(n: int, *, seed: int = 0, length: int = 10) -> list[str]:
    """`n` distinct tokens: `length` capitals and digits, starting with a letter.

    With 36**9 choices after the first letter, such a token turns up in other bytes (a UID,
    a pixel value, a random key) with negligible probability.
    """
    rng = np.random.default_rng(seed)
    alphabet = np.array(list(string.ascii_uppercase + string.digits))
    tokens: dict[str, None] = {}
    while len(tokens) < n:
        first = rng.choice(list(string.ascii_uppercase))
        tokens[first + "".join(rng.choice(alphabet, length - 1))] = None
    return list(tokens)


def phi_dates(n: int, *, seed: int = 0) -> list[str]:
    """`n` distinct dates as DICOM DA (``YYYYMMDD``), between 1901 and 1959.

    Dates this old appear in no file header a writer makes today, so finding one in the
    output means it leaked.
    """
    rng = np.random.default_rng(seed)
    first, days = datetime.date(1901, 1, 1), (datetime.date(1959, 12, 31) - datetime.date(1901, 1, 1)).days
    picks = rng.choice(days, size=n, replace=False)
    return [(first + datetime.timedelta(days=int(d))).strftime("%Y%m%d") for d in picks]


def burn_text(
    pixels: np.ndarray,
    text: str,
    *,
    row: int,
    col: int,
    size: int,
    value,
    font: str | os.PathLike | None = None,
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """`pixels` with `text` rendered in, anti-aliased; and the text's ink box.

    Parameters
    ----------
    pixels : ndarray, shape (rows, columns) or (rows, columns, samples)
        Not modified.
    text : str
    row, col : int
        Top-left corner of the text's line box.
    size : int
        Font size in pixels (capitals are about 0.73 of it high).
    value : number or sequence
        The text's pixel value (one per sample for colour).
    font : path, optional
        A TrueType font; Pillow's built-in one when omitted or missing.

    Returns
    -------
    (ndarray, (row0, col0, row1, col1))
        The new pixels (same dtype) and the half-open box of the rendered ink, clipped to
        the image; an empty box when the text falls outside.
    """
    from PIL import Image, ImageDraw, ImageFont

    rows, cols = pixels.shape[:2]
    face = (
        ImageFont.truetype(str(font), size)
        if font is not None and Path(font).is_file()
        else ImageFont.load_default(size=size)
    )
    canvas = Image.new("L", (cols, rows), 0)
    ImageDraw.Draw(canvas).text((col, row), text, fill=255, font=face)
    alpha = np.asarray(canvas, dtype=np.float32) / 255.0
    if pixels.ndim == 3:
        alpha = alpha[..., None]
    blended = pixels * (1.0 - alpha) + np.asarray(value, dtype=np.float32) * alpha
    if np.issubdtype(pixels.dtype, np.integer):
        info = np.iinfo(pixels.dtype)
        blended = np.clip(np.round(blended), info.min, info.max)
    ink = np.argwhere(np.asarray(canvas) > 0)
    if len(ink) == 0:
        return pixels.copy(), (0, 0, 0, 0)
    (r0, c0), (r1, c1) = ink.min(axis=0), ink.max(axis=0) + 1
    return blended.astype(pixels.dtype), (int(r0), int(c0), int(r1), int(c1))


# Where the tokens go: keyword -> how many tokens (joined by spaces, or as PN components).
# Every attribute here is one that PS3.15 Table E.1-1 removes, empties or replaces.
_NAMES = (
    "PatientName",
    "OtherPatientNames",
    "PatientBirthName",
    "PatientMotherBirthName",
    "ReferringPhysicianName",
    "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy",
    "PhysiciansOfRecord",
    "RequestingPhysician",
    "OperatorsName",
    "ResponsiblePerson",
)
_IDS = (
    "PatientID",
    "IssuerOfPatientID",
    "AccessionNumber",
    "StudyID",
    "PerformedProcedureStepID",
    "MedicalRecordLocator",
    "AdmissionID",
    "DeviceSerialNumber",
    "StationName",
)
_TEXT = {  # keyword -> tokens in it
    "OtherPatientIDs": 3,
    "InstitutionName": 2,
    "InstitutionAddress": 4,
    "InstitutionalDepartmentName": 2,
    "PatientAddress": 4,
    "PatientTelephoneNumbers": 2,
    "Occupation": 1,
    "MilitaryRank": 2,
    "RegionOfResidence": 2,
    "StudyDescription": 4,
    "SeriesDescription": 4,
    "ImageComments": 12,
    "AdditionalPatientHistory": 12,
    "PatientComments": 12,
    "RequestedProcedureDescription": 4,
    "ReasonForStudy": 4,
    "Allergies": 4,
    "MedicalAlerts": 4,
    "DerivationDescription": 8,
    "AdmittingDiagnosesDescription": 4,
    "PerformedProcedureStepDescription": 4,
    "ProtocolName": 4,
    "StudyComments": 12,
    "PatientState": 4,
}
_DATES = (
    "PatientBirthDate",
    "StudyDate",
    "SeriesDate",
    "AcquisitionDate",
    "ContentDate",
    "InstanceCreationDate",
    "PerformedProcedureStepStartDate",
    "LastMenstrualDate",
)
_PRIVATE_GROUP, _PRIVATE_CREATOR = 0x0029, "MEDSIGHT PHI TEST"
_SCREEN = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture Image Storage


def write_phi_corpus(folder: str | os.PathLike, *, seed: int = 0, n_tokens: int = 2000) -> dict:
    """Write DICOM files holding at least `n_tokens` distinct PHI tokens into `folder`.

    Parameters
    ----------
    folder : path
        A new or empty folder.
    seed : int
        Everything (images, tokens, dates, positions) follows from it.
    n_tokens : int
        Distinct header tokens to plant, at the least (dates and burned-in text come on top).

    Returns
    -------
    dict
        ``tokens``: every header token; ``dates``: every planted date (DA);
        ``where``: token -> ``"relative/path.dcm:Keyword"`` (``>`` for nesting);
        ``pixels``: relative path -> list of ``{"token", "box"}`` burned into its pixels
        (box: half-open row0, col0, row1, col1 in every frame); ``phantom``: the
        phantom's own distinctive PHI values (names, IDs, addresses).
    """
    from pydicom import dcmread

    from medsight.data.synthetic._dicom import write_case_dicom
    from medsight.data.synthetic.cohort import cohort
    from medsight.io import atomic_path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    phantom: set[str] = set()
    small = {
        "chest-xray": {"n": 2, "timepoints": 1, "shape": (160, 160)},
        "ultrasound": {"n": 2, "timepoints": 2, "shape": (240, 192), "spacing": 0.2},
        "body-ct": {"n": 1, "timepoints": 1, "shape": (64, 52, 36), "spacing": (6.0, 6.0, 6.0)},
    }
    files = []
    for kind, options in small.items():
        for case in cohort(kind, seed=seed, **options):
            out = folder / kind / f"{case.patient.patient_id}_t{case.timepoint}"
            values = write_case_dicom(case, out, seed=seed)
            phantom.update(v for v in values.values() if len(v) >= 6)
            files += sorted(out.glob("*.dcm"))
    per_file = -(-n_tokens // len(files)) + 1
    tokens = iter(phi_tokens((per_file + 400) * (len(files) + 1), seed=seed))
    dates = iter(phi_dates(len(_DATES) * len(files) * 2, seed=seed))
    rng = np.random.default_rng(seed)
    where: dict[str, str] = {}
    planted_dates: list[str] = []
    pixels: dict[str, list] = {}
    for number, path in enumerate(files):
        rel = path.relative_to(folder).as_posix()
        ds = dcmread(path)
        put = _Planter(ds, rel, tokens, where)
        put.headers(per_file)
        for keyword in _DATES:
            setattr(ds, keyword, date := next(dates))
            planted_dates.append(date)
        ds.AcquisitionDateTime = (date := next(dates)) + "101010"
        planted_dates.append(date)
        if ds.Modality == "US":
            if number % 2:
                ds.BurnedInAnnotation = "YES"  # the other half say nothing: presumed at risk
            pixels[rel] = _burn(ds, [put.one("pixels") for _ in range(3)], rng)
        with atomic_path(path) as tmp:
            ds.save_as(tmp, enforce_file_format=True)
    screen = folder / "screen" / "capture.dcm"
    screen.parent.mkdir()
    pixels["screen/capture.dcm"] = _screen_capture(
        screen, _Planter(None, "screen/capture.dcm", tokens, where), rng
    )
    return {
        "tokens": sorted(t for t in where if where[t].split(":", 1)[1] != "pixels"),
        "dates": planted_dates,
        "where": where,
        "pixels": pixels,
        "phantom": sorted(phantom),
    }


class _Planter:
    """Puts fresh tokens into one dataset and notes where each went."""

    def __init__(self, ds, rel: str, tokens, where: dict):
        self.ds, self.rel, self.tokens, self.where = ds, rel, tokens, where

    def one(self, place: str) -> str:
        token = next(self.tokens)
        self.where[token] = f"{self.rel}:{place}"
        return token

    def text(self, place: str, n: int) -> str:
        return " ".join(self.one(place) for _ in range(n))

    def headers(self, n: int) -> None:
        from pydicom.datadict import dictionary_VR
        from pydicom.dataset import Dataset

        ds, start = self.ds, len(self.where)
        for keyword in _NAMES:
            setattr(ds, keyword, f"{self.one(keyword)}^{self.one(keyword)}")
        for keyword in _IDS:
            setattr(ds, keyword, self.one(keyword))
        for keyword, count in _TEXT.items():
            words = [self.one(keyword) for _ in range(count)]
            # SH holds 16 characters: several tokens become several values there
            setattr(ds, keyword, words if dictionary_VR(keyword) == "SH" else " ".join(words))
        # Nesting, two and three levels deep: a removed sequence, and a kept one whose items
        # hold attributes the profile removes.
        request, protocol, referenced = Dataset(), Dataset(), Dataset()
        request.RequestedProcedureID = self.one("RequestAttributesSequence>RequestedProcedureID")
        request.ScheduledProcedureStepID = self.one("RequestAttributesSequence>ScheduledProcedureStepID")
        protocol.CodeValue, protocol.CodingSchemeDesignator = (
            self.one("RequestAttributesSequence>ScheduledProtocolCodeSequence>CodeValue"),
            "99PHI",
        )
        protocol.CodeMeaning = self.text(
            "RequestAttributesSequence>ScheduledProtocolCodeSequence>CodeMeaning", 4
        )
        request.ScheduledProtocolCodeSequence = [protocol]
        ds.RequestAttributesSequence = [request]
        referenced.ReferencedSOPClassUID, referenced.ReferencedSOPInstanceUID = (
            "1.2.840.10008.3.1.2.3.1",
            "1.2.3.4",
        )
        ds.ReferencedPatientSequence = [referenced]
        equipment, operator = Dataset(), Dataset()
        equipment.Manufacturer = "MedSight"
        equipment.InstitutionName = self.text("ContributingEquipmentSequence>InstitutionName", 2)
        equipment.StationName = self.one("ContributingEquipmentSequence>StationName")
        equipment.DeviceSerialNumber = self.one("ContributingEquipmentSequence>DeviceSerialNumber")
        equipment.ContributionDescription = self.text(
            "ContributingEquipmentSequence>ContributionDescription", 6
        )
        operator.PersonName = (
            f"{self.one('ContributingEquipmentSequence>OperatorIdentificationSequence>Name')}^X"
        )
        operator.InstitutionName = self.one(
            "ContributingEquipmentSequence>OperatorIdentificationSequence>Inst"
        )
        equipment.OperatorIdentificationSequence = [operator]
        ds.ContributingEquipmentSequence = [equipment]
        block = ds.private_block(_PRIVATE_GROUP, _PRIVATE_CREATOR, create=True)
        block.add_new(0x01, "LO", self.text("private LO", 5))
        block.add_new(0x02, "LT", self.text("private LT", 20))
        block.add_new(0x03, "PN", f"{self.one('private PN')}^{self.one('private PN')}")
        block.add_new(0x04, "UN", self.text("private UN", 6).encode())
        inner = Dataset()
        inner_block = inner.private_block(_PRIVATE_GROUP, _PRIVATE_CREATOR, create=True)
        inner_block.add_new(0x10, "LT", self.text("private SQ>LT", 6))
        block.add_new(0x05, "SQ", [inner])
        ds.file_meta.SourceApplicationEntityTitle = self.one("file meta SourceApplicationEntityTitle")
        ds.file_meta.SendingApplicationEntityTitle = self.one("file meta SendingApplicationEntityTitle")
        # The rest, up to `n` per file: more comments.
        missing = max(n - (len(self.where) - start), 0)
        if missing:
            ds.ImageComments += " " + self.text("ImageComments", missing)


def _burn(ds, words: list[str], rng) -> list[dict]:
    """Render `words` into the pixels of `ds` (one line each, white, near the top)."""
    pixels = ds.pixel_array
    placed = []
    for line, word in enumerate(words):
        size = int(rng.integers(10, 15))
        pixels, box = burn_text(
            pixels,
            word,
            row=4 + line * 18,
            col=int(rng.integers(2, 20)),
            size=size,
            value=255,
            font=_FONTS[0],
        )
        placed.append({"token": word, "box": list(box)})
    ds.PixelData = pixels.tobytes()
    return placed


def _screen_capture(path: Path, put: _Planter, rng) -> list[dict]:
    """A Secondary Capture screenshot: RGB, RLE-compressed, tokens in yellow on the image."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import RLELossless, generate_uid

    shade = np.linspace(20, 160, 200, dtype=np.float32)
    pixels = np.stack([np.add.outer(shade, shade[:240] / 4)] * 3, axis=-1).astype(np.uint8)
    placed = []
    for line in range(4):
        word = put.one("pixels")
        pixels, box = burn_text(
            pixels,
            word,
            row=10 + 45 * line,
            col=int(rng.integers(5, 60)),
            size=int(rng.integers(12, 30)),
            value=(255, 255, 0),
            font=_FONTS[line % len(_FONTS)],
        )
        placed.append({"token": word, "box": list(box)})
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = _SCREEN
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[put.rel, "sop"])
    ds.StudyInstanceUID = generate_uid(entropy_srcs=[put.rel, "study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[put.rel, "series"])
    ds.Modality, ds.ConversionType = "OT", "WSD"
    ds.PatientName = f"{put.one('PatientName')}^{put.one('PatientName')}"
    ds.PatientID = put.one("PatientID")
    ds.StudyDescription = put.text("StudyDescription", 3)
    ds.file_meta.TransferSyntaxUID = RLELossless
    ds.set_pixel_data(pixels, "RGB", 8, generate_instance_uid=False)
    ds.compress(RLELossless, generate_instance_uid=False)
    ds.save_as(path, enforce_file_format=True)
    return placed
