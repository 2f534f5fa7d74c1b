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

# --- Text detection parameters, tuned on text rendered over phantoms and real images -------
_STROKE = 9  # opening size (px): removes strokes narrower than this, keeps the background
_CONTRASTS = (0.12, 0.25, 0.45)  # stroke contrast levels above the local background (fraction of range)
_HEIGHT = (6, 64)  # text line heights (px) searched for
_GLYPH = 4  # least glyph height (px): a lower-case letter of 8 px text
_THIN = 0.15  # widest half-stroke of a glyph, in glyph heights (bold capitals: 0.1)
_GLYPHS = 2  # least glyphs in a line (3 halves the false alarms but misses a sixth of the text)
_GAP = 0.7  # largest gap between neighbouring glyphs, in glyph heights (a word space)
_SAME_PEAK = 0.12  # glyphs of one line are drawn in one colour: peaks this close
_MARGIN = (0.2, 0.6)  # rows and columns added around a line, in line heights
_WORD_GAP = 1.0  # lines on one row closer than this (in line heights) are one line


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

    A morphological top-hat keeps what is thinner than `_STROKE` and stands out from its
    surroundings (strokes, but also speckle and small vessels); its components are glyph
    candidates. Glyphs of similar height and brightness, side by side on one row, are
    joined into lines, and a line is kept when its glyphs are aligned as printed
    characters are (on a baseline or a cap line) and as dense as text.
    """
    from scipy import ndimage

    boxes = []
    for image in (gray, 1.0 - gray):  # bright text on dark, and dark text on bright
        tophat = image - ndimage.grey_opening(image, size=(_STROKE, _STROKE))
        # Text touching other thin structures (an edge, a vessel) is one big component at a
        # low contrast level and comes apart at a higher one, as in MSER.
        for contrast in _CONTRASTS:
            boxes += _lines(image, tophat > contrast)
    return _merge([_pad(box, gray.shape) for box in boxes])


def _lines(image: np.ndarray, strokes: np.ndarray) -> list[tuple[int, int, int, int]]:
    from scipy import ndimage
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    labels, count = ndimage.label(strokes, structure=np.ones((3, 3)))
    if count < 2:
        return []
    boxes = np.array([(s[0].start, s[1].start, s[0].stop, s[1].stop) for s in ndimage.find_objects(labels)])
    area = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    index = np.arange(1, count + 1)
    peak = np.asarray(ndimage.maximum(image, labels, index))
    # Area over outline is half the stroke width: small for letters, a quarter of the
    # size for a round grain of speckle.
    outline = np.bincount(labels[strokes & ~ndimage.binary_erosion(strokes)], minlength=count + 1)[1:]
    half_stroke = area / np.maximum(outline, 1)
    height, width = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    glyph = (
        (height >= _GLYPH)
        & (height <= _HEIGHT[1])
        & (area >= 0.08 * height * width)
        & (half_stroke <= np.maximum(_THIN * height, 1))
    )
    keep = np.flatnonzero(glyph)
    if len(keep) < 2:
        return []
    boxes, area, peak, height = boxes[keep], area[keep], peak[keep], height[keep]
    # Neighbours on a row: sweep left to right, looking at most one tall glyph's gap ahead.
    order = np.argsort(boxes[:, 1], kind="stable")
    boxes, area, peak, height = boxes[order], area[order], peak[order], height[order]
    ends = np.searchsorted(boxes[:, 1], boxes[:, 3] + _GAP * _HEIGHT[1], side="right")
    pairs_i, pairs_j = [], []
    for i in range(len(boxes)):
        j = np.arange(i + 1, ends[i])
        if len(j) == 0:
            continue
        overlap = np.minimum(boxes[i, 2], boxes[j, 2]) - np.maximum(boxes[i, 0], boxes[j, 0])
        small, tall = np.minimum(height[i], height[j]), np.maximum(height[i], height[j])
        gap = boxes[j, 1] - boxes[i, 3]
        near = (
            (overlap >= 0.5 * small)
            & (tall <= 2.2 * small)
            & (gap <= _GAP * tall)
            & (np.abs(peak[j] - peak[i]) <= _SAME_PEAK)
        )
        pairs_i += [i] * int(near.sum())
        pairs_j += list(j[near])
    if not pairs_i:
        return []
    graph = coo_matrix((np.ones(len(pairs_i)), (pairs_i, pairs_j)), shape=(len(boxes), len(boxes)))
    _, line_of = connected_components(graph, directed=False)
    out = []
    for line in np.unique(line_of):
        members = np.flatnonzero(line_of == line)
        if len(members) < _GLYPHS:
            continue
        r0, c0 = boxes[members, 0].min(), boxes[members, 1].min()
        r1, c1 = boxes[members, 2].max(), boxes[members, 3].max()
        tall = r1 - r0
        if not (_HEIGHT[0] <= tall <= _HEIGHT[1]) or c1 - c0 < tall:
            continue
        tops, bottoms = boxes[members, 0], boxes[members, 2]
        aligned = min(_spread(tops), _spread(bottoms)) <= 0.12 * tall
        density = area[members].sum() / ((r1 - r0) * (c1 - c0))
        if aligned and 0.08 <= density <= 0.7 and peak[members].std() <= _SAME_PEAK / 2:
            out.append((r0, c0, r1, c1))
    return out


def _spread(values: np.ndarray) -> float:
    """Median absolute deviation: robust to the odd glyph (a comma, a descender)."""
    return float(np.median(np.abs(values - np.median(values))))


def _pad(box, shape) -> tuple[int, int, int, int]:
    """`box` grown by a fraction of its height: anti-aliased fringes, accents, punctuation."""
    r0, c0, r1, c1 = (int(v) for v in box)
    rows, cols = _MARGIN[0] * (r1 - r0) + 1, _MARGIN[1] * (r1 - r0) + 1
    return (
        max(r0 - int(rows), 0),
        max(c0 - int(cols), 0),
        min(r1 + int(rows), shape[0]),
        min(c1 + int(cols), shape[1]),
    )


def _merge(boxes: list) -> list[tuple[int, int, int, int]]:
    """Boxes that overlap, or follow each other on one row within a word space, joined."""
    boxes = [tuple(int(v) for v in b) for b in boxes]
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                if _joined(boxes[i], boxes[j]):
                    a, b = boxes[i], boxes.pop(j)
                    boxes[i] = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
                    merged = True
                    break
            if merged:
                break
    return sorted(boxes)


def _joined(a, b) -> bool:
    rows = min(a[2], b[2]) - max(a[0], b[0])
    gap = max(a[1], b[1]) - min(a[3], b[3])
    if rows > 0 and gap < 0:
        return True  # overlapping
    small, tall = min(a[2] - a[0], b[2] - b[0]), max(a[2] - a[0], b[2] - b[0])
    return rows >= 0.5 * small and gap <= _WORD_GAP * tall


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
