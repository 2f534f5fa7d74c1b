"""Burned-in text in DICOM pixels: which files are at risk, where the text is, masking it.

Annotations burned into the pixels (patient name, dates, IDs on ultrasound, screen
captures, some radiographs) survive every header rule of PS3.15 Annex E. This module

- `burned_in_risk(ds)`: says why a file may carry burned-in text, from its header alone
  (the rules are the data at the top of this module);
- `find_text_regions(ds)`: finds likely text in the pixels, without OCR: burned-in text
  is thin, high-contrast strokes of one intensity, in rows of characters of one height;
- `mask_regions(ds, regions)`: blanks those regions in every frame and stores the pixels
  uncompressed.
"""

from __future__ import annotations

import numpy as np

__all__ = ["burned_in_risk", "find_text_regions", "mask_regions"]

# --- Header rules: what puts a file at risk (checked in this order) -------------------------
# Burned In Annotation (0028,0301) "YES" is always a risk and an explicit "NO" is honoured:
# it is the modality's own statement (PS3.3 C.7.6.1.1.8), and distrusting it would
# quarantine every compliant ultrasound. Without it, these classes are presumed at risk.
RISKY_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.7": "Secondary Capture",  # and .7.1-.7.4, the multi-frame ones
    "1.2.840.10008.5.1.4.1.1.6": "Ultrasound (retired)",
    "1.2.840.10008.5.1.4.1.1.6.1": "Ultrasound",
    "1.2.840.10008.5.1.4.1.1.6.2": "Enhanced US Volume",
    "1.2.840.10008.5.1.4.1.1.3": "Ultrasound Multi-frame (retired)",
    "1.2.840.10008.5.1.4.1.1.3.1": "Ultrasound Multi-frame",
    "1.2.840.10008.5.1.4.1.1.77.1.1": "VL Endoscopic",
    "1.2.840.10008.5.1.4.1.1.77.1.1.1": "Video Endoscopic",
    "1.2.840.10008.5.1.4.1.1.77.1.2": "VL Microscopic",
    "1.2.840.10008.5.1.4.1.1.77.1.2.1": "Video Microscopic",
    "1.2.840.10008.5.1.4.1.1.77.1.4": "VL Photographic",
    "1.2.840.10008.5.1.4.1.1.77.1.4.1": "Video Photographic",
    "1.2.840.10008.5.1.4.1.1.77.1.5.1": "Ophthalmic Photography 8 Bit",
    "1.2.840.10008.5.1.4.1.1.77.1.5.2": "Ophthalmic Photography 16 Bit",
}
# Camera, video and capture modalities, and those whose devices label the film: radiographs
# (DX, CR, MG, PX, IO), fluoroscopy (RF, XA) and other (OT).
RISKY_MODALITIES = {
    "US": "ultrasound",
    "IVUS": "intravascular ultrasound",
    "ES": "endoscopy",
    "XC": "external camera photography",
    "GM": "general microscopy",
    "OP": "ophthalmic photography",
    "OT": "other (often screen captures)",
    "DOC": "document",
    "DX": "digital radiography",
    "CR": "computed radiography",
    "MG": "mammography",
    "PX": "panoramic X-ray",
    "IO": "intra-oral radiography",
    "RF": "fluoroscopy",
    "XA": "X-ray angiography",
}
# Image Type (0008,0008) values that vendors give to screen captures and dose or report pages.
RISKY_IMAGE_TYPES = {
    "SCREEN SAVE": "screen capture",
    "SCREENSHOT": "screen capture",
    "CSA REPORT": "report page",
    "DOSE_INFO": "dose report page",
    "DOSE REPORT": "dose report page",
}
_SECONDARY_CAPTURE_PREFIX = "1.2.840.10008.5.1.4.1.1.7"

# --- Text detection parameters (measured on rendered text; see bench/bench_deid.py) ---------
_STROKE = 9  # opening size (px): removes strokes narrower than this, keeps the background
_CONTRAST = 0.2  # least stroke contrast above the local background, fraction of the range
_HEIGHT = (6, 64)  # text line heights (px) searched for
_MARGIN = 2  # px added around each region: anti-aliased fringes of the glyphs


def burned_in_risk(ds) -> str | None:
    """Why `ds` may carry burned-in text, or None when its header gives no reason.

    Parameters
    ----------
    ds : pydicom.Dataset

    Returns
    -------
    str or None
        A short reason, such as ``"Burned In Annotation is YES"`` or ``"ultrasound
        (Modality US) without Burned In Annotation"``.
    """
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        return None
    flag = str(ds.get("BurnedInAnnotation", "")).strip().upper()
    if flag == "YES":
        return "Burned In Annotation is YES"
    if flag == "NO":
        return None
    sop = str(ds.get("SOPClassUID", ""))
    if sop in RISKY_SOP_CLASSES:
        return f"{RISKY_SOP_CLASSES[sop]} SOP class without Burned In Annotation"
    if sop.startswith(_SECONDARY_CAPTURE_PREFIX + "."):
        return "Secondary Capture SOP class without Burned In Annotation"
    modality = str(ds.get("Modality", "")).strip().upper()
    if modality in RISKY_MODALITIES:
        return f"{RISKY_MODALITIES[modality]} (Modality {modality}) without Burned In Annotation"
    image_type = [str(v).strip().upper() for v in _as_list(ds.get("ImageType"))]
    for value in image_type:
        if value in RISKY_IMAGE_TYPES:
            return f"{RISKY_IMAGE_TYPES[value]} (Image Type {value}) without Burned In Annotation"
    if "ConversionType" in ds:  # only captures carry the SC Equipment module
        return f"captured image (Conversion Type {ds.ConversionType}) without Burned In Annotation"
    return None


def find_text_regions(ds) -> list[tuple[int, int, int, int]]:
    """Regions of likely burned-in text in the pixels of `ds`, over all frames.

    Parameters
    ----------
    ds : pydicom.Dataset
        Any photometric interpretation and bit depth pydicom decodes, compressed
        transfer syntaxes included (through ``ds.pixel_array``).

    Returns
    -------
    list of (row0, col0, row1, col1)
        Half-open pixel boxes (``array[row0:row1, col0:col1]``), a margin included; the
        union over frames of a multi-frame image. Empty when no text is seen.
    """
    if "PixelData" not in ds:
        return []
    frames = _frames(ds)
    regions: set[tuple[int, int, int, int]] = set()
    for frame in frames:
        regions.update(text_boxes(_gray(frame, ds)))
    return sorted(regions)


def text_boxes(gray: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Boxes of text lines in one 2D image scaled to [0, 1], bright or dark text.

    The steps: a morphological top-hat keeps thin structures that stand out from their
    surroundings (strokes); components of plausible glyph size are joined along rows
    into lines; a line is kept when it holds several glyphs of one height, aligned, with
    the stroke density of text.
    """
    from scipy import ndimage

    boxes = []
    for image in (gray, 1.0 - gray):  # bright text on dark, and dark text on bright
        strokes = image - ndimage.grey_opening(image, size=(_STROKE, _STROKE)) > _CONTRAST
        boxes += _lines(strokes, image.shape)
    return _merge(boxes)


def _lines(strokes: np.ndarray, shape) -> list[tuple[int, int, int, int]]:
    """Join glyph-sized components of `strokes` into text lines; the lines' boxes."""
    from scipy import ndimage

    labels, count = ndimage.label(strokes, structure=np.ones((3, 3)))
    if count == 0:
        return []
    glyphs = []
    for index, box in enumerate(ndimage.find_objects(labels)):
        height, width = box[0].stop - box[0].start, box[1].stop - box[1].start
        if 3 <= height <= _HEIGHT[1] and width <= 4 * _HEIGHT[1]:
            glyphs.append((box[0].start, box[1].start, box[0].stop, box[1].stop, index + 1))
    if len(glyphs) < 2:
        return []
    # Glyphs join a line when they overlap vertically and the gap is under their height.
    mask = np.zeros(shape, dtype=bool)
    for r0, c0, r1, c1, _ in glyphs:
        gap = (r1 - r0 + 1) // 2 + 1
        mask[r0:r1, c0 : min(c1 + gap, shape[1])] = True
    line_labels, line_count = ndimage.label(mask)
    out = []
    for box in ndimage.find_objects(line_labels):
        r0, r1, c0, c1 = box[0].start, box[0].stop, box[1].start, box[1].stop
        members = [g for g in glyphs if r0 <= g[0] and g[2] <= r1 and c0 <= g[1] and g[3] <= c1]
        height = r1 - r0
        if not (_HEIGHT[0] <= height <= _HEIGHT[1]) or len(members) < 2 or c1 - c0 < height:
            continue
        density = strokes[r0:r1, c0:c1].mean()
        if 0.08 <= density <= 0.7:
            out.append(_pad((r0, c0, r1, c1), shape))
    return out


def _pad(box, shape) -> tuple[int, int, int, int]:
    r0, c0, r1, c1 = box
    return (
        max(r0 - _MARGIN, 0),
        max(c0 - _MARGIN, 0),
        min(r1 + _MARGIN, shape[0]),
        min(c1 + _MARGIN, shape[1]),
    )


def _merge(boxes: list) -> list[tuple[int, int, int, int]]:
    """Overlapping boxes joined into one, until none overlap."""
    boxes = [tuple(int(v) for v in b) for b in boxes]
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                    boxes[i] = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return sorted(boxes)


def mask_regions(ds, regions) -> None:
    """Blank `regions` in every frame of `ds`, in place, and store the pixels uncompressed.

    Each region is set to the value displayed darkest (the image minimum; the maximum for
    MONOCHROME1). The pixels are written back as Explicit VR Little Endian (YBR colour
    decoded to RGB is stored as RGB) and Burned In Annotation becomes "NO". Nothing
    changes when `regions` is empty.

    Parameters
    ----------
    ds : pydicom.Dataset
    regions : iterable of (row0, col0, row1, col1)
        Half-open pixel boxes, as `find_text_regions` returns them.
    """
    from pydicom.pixels import pack_bits
    from pydicom.uid import ExplicitVRLittleEndian

    regions = [tuple(int(v) for v in r) for r in regions]
    if not regions or "PixelData" not in ds:
        return
    frames = _frames(ds).copy()
    photometric = str(ds.PhotometricInterpretation).strip().upper()
    fill = frames.max() if photometric == "MONOCHROME1" else frames.min()
    for r0, c0, r1, c1 in regions:
        frames[:, r0:r1, c0:c1] = fill
    pixels = frames if int(ds.get("NumberOfFrames", 1) or 1) > 1 else frames[0]
    if photometric.startswith("YBR") and pixels.shape[-1:] == (3,):
        photometric = "RGB"  # pydicom decodes YBR to RGB
    # Decoded pixels are native little-endian: the stored syntax must say so before writing.
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    if int(ds.BitsAllocated) == 1:  # the single-bit classes must stay single-bit
        ds.PixelData = pack_bits(pixels)
        ds["PixelData"].VR = "OB"
    else:
        ds.set_pixel_data(pixels, photometric, int(ds.BitsStored), generate_instance_uid=False)
    ds.BurnedInAnnotation = "NO"


def _frames(ds) -> np.ndarray:
    """The decoded pixels as (frames, rows, columns[, samples])."""
    pixels = ds.pixel_array
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    single = pixels.ndim == (3 if samples > 1 else 2)
    return pixels[None] if single else pixels


def _gray(frame: np.ndarray, ds) -> np.ndarray:
    """One frame as float32 in [0, 1]: colour by its brightest channel, MONOCHROME1 inverted.

    The brightest channel keeps coloured text (yellow, green, cyan on ultrasound) as bright
    as white text would be.
    """
    image = frame.max(axis=-1) if frame.ndim == 3 else frame
    image = image.astype(np.float32)
    low, high = float(image.min()), float(image.max())
    if high <= low:
        return np.zeros(image.shape, dtype=np.float32)
    image = (image - low) / (high - low)
    if str(ds.get("PhotometricInterpretation", "")).strip().upper() == "MONOCHROME1":
        image = 1.0 - image
    return image


def _as_list(value) -> list:
    if value is None:
        return []
    if isinstance(value, str | bytes):
        return [value]
    try:
        return list(value)
    except TypeError:
        return [value]
