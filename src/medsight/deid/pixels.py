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
# (bench/bench_text_detection.py measures recall, false alarms and time with these values.)
_STROKE = 7  # opening size (px) at each scale: keeps strokes narrower than this
_SCALES = (1, 2)  # full resolution for small text, half resolution for text over ~24 px
_CONTRASTS = (0.12, 0.25, 0.35, 0.45)  # stroke contrast levels above the local background (fraction of range)
_HEIGHT = (4, 32)  # glyph heights (px) searched for at each scale (5 at half scale: no overlap)
_THIN = 0.15  # widest half-stroke of a glyph, in glyph heights (bold capitals: 0.1)
_FLAT = 0.3  # least share of a line's glyph pixels on the glyph's plateau (speckle grains: ~0.1)
_FLAT_DEPTH = 0.25  # the plateau: pixels within this fraction of the glyph's contrast of its peak
_GLYPHS = 3  # least glyphs in a line that starts a text region (two: speckle passes too often)
_GAP = 0.7  # largest gap between neighbouring glyphs, in glyph heights (a word space)
_SAME_PEAK = 0.12  # glyphs of one line are drawn in one colour: peaks this close
_PEAK_SPREAD = 0.06  # and their standard deviation this small
_STROKE_CV = 0.5  # coefficient of variation of the glyphs' stroke widths in a line
_ALIGN = 0.05  # printed glyphs share a baseline or a cap line: deviation, in line heights
_GROW = 4.0  # a line takes in glyph groups of its row and colour this far (in line heights)
_MARGIN = (0.3, 1.5)  # rows and columns added around a line, in line heights (lost glyph ends)
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

    At full and half resolution, a morphological top-hat keeps what is thinner than
    `_STROKE` and stands out from its surroundings (strokes, but also speckle and small
    vessels); its components, at a few contrast levels (text touching other thin
    structures comes apart at a higher one, as in MSER), are glyph candidates. Glyphs of
    similar height and colour, side by side on one row, form lines. A line starts a text
    region when it has at least `_GLYPHS` glyphs of one colour and stroke width, aligned
    on a baseline or cap line, whose strokes are flat-topped (drawn in one colour; speckle
    grains and vessels are rounded); the region then takes in the glyph groups of its row
    and colour nearby (a word of one or two glyphs, digits after a colon).
    """
    image = np.asarray(gray, dtype=np.float32)
    boxes = []
    for scale in _SCALES:
        if scale > 1:
            rows, cols = (image.shape[0] // scale) * scale, (image.shape[1] // scale) * scale
            if rows < 8 * scale or cols < 8 * scale:
                break
            level = image[:rows, :cols].reshape(rows // scale, scale, cols // scale, scale).mean(axis=(1, 3))
        else:
            level = image
        least = _HEIGHT[0] if scale == 1 else _HEIGHT[0] + 1
        for polarity in (level, 1.0 - level):  # bright text on dark, and dark text on bright
            tophat = polarity - _dilate(_erode(polarity, _STROKE), _STROKE)
            for contrast in _CONTRASTS:
                for box in _lines(polarity, tophat, tophat > contrast, least):
                    boxes.append(tuple(int(v) * scale for v in box))
    return _merge([_pad(box, image.shape) for box in boxes])


def _erode(image: np.ndarray, size: int) -> np.ndarray:
    """Flat `size` x `size` minimum filter, edges replicated (separable, by doubling)."""
    return _running(_running(image, size, 0, np.minimum), size, 1, np.minimum)


def _dilate(image: np.ndarray, size: int) -> np.ndarray:
    return _running(_running(image, size, 0, np.maximum), size, 1, np.maximum)


def _running(image: np.ndarray, size: int, axis: int, op) -> np.ndarray:
    """`op` over windows of `size` along `axis`, centred: a few whole-array operations."""
    pad = [(0, 0), (0, 0)]
    pad[axis] = (size // 2, size - 1 - size // 2)
    padded = np.pad(image, pad, mode="edge")
    length, count = padded.shape[axis], image.shape[axis]

    def part(array, start, n):
        index = [slice(None), slice(None)]
        index[axis] = slice(start, start + n)
        return array[tuple(index)]

    width, window = 1, padded
    while 2 * width <= size:  # window[i] = op over padded[i : i + 2 * width]
        window = op(part(window, 0, length - 2 * width + 1), part(window, width, length - 2 * width + 1))
        width *= 2
    return op(part(window, 0, count), part(window, size - width, count))


def _lines(
    image: np.ndarray, tophat: np.ndarray, strokes: np.ndarray, least: int
) -> list[tuple[int, int, int, int]]:
    from scipy import ndimage
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    labels, count = ndimage.label(strokes, structure=np.ones((3, 3)))
    if count < _GLYPHS:
        return []
    boxes = np.array([(s[0].start, s[1].start, s[0].stop, s[1].stop) for s in ndimage.find_objects(labels)])
    label = labels[strokes]
    area = np.bincount(label, minlength=count + 1)[1:]
    values = image[strokes]
    peak = np.zeros(count + 1, np.float32)
    np.maximum.at(peak, label, values)
    depth = np.zeros(count + 1, np.float32)
    np.maximum.at(depth, label, tophat[strokes])
    # The plateau: a glyph is drawn in one colour, so most of it sits at its peak.
    flat = values >= peak[label] - _FLAT_DEPTH * depth[label]
    flat = np.bincount(label[flat], minlength=count + 1)[1:] / np.maximum(area, 1)
    peak = peak[1:]
    # Area over outline is half the stroke width: small for letters, a quarter of the
    # size for a round grain of speckle.
    outline = np.bincount(labels[strokes & ~ndimage.binary_erosion(strokes)], minlength=count + 1)[1:]
    half_stroke = area / np.maximum(outline, 1)
    height, width = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    glyph = (
        (height >= least)
        & (height <= _HEIGHT[1])
        & (width <= 3 * height)
        & (area >= 0.08 * height * width)
        & (half_stroke <= np.maximum(_THIN * height, 1))
    )
    keep = np.flatnonzero(glyph)
    if len(keep) < _GLYPHS:
        return []
    keep = keep[np.argsort(boxes[keep, 1], kind="stable")]  # left to right
    boxes, area, peak, height = boxes[keep], area[keep], peak[keep], height[keep]
    half_stroke, flat = half_stroke[keep], flat[keep]
    # Neighbours on a row, all pairs at once: each glyph and those starting at most one
    # tall glyph's gap after it ends.
    n = len(boxes)
    ends = np.searchsorted(boxes[:, 1], boxes[:, 3] + _GAP * _HEIGHT[1], side="right")
    ahead = np.maximum(ends - np.arange(n) - 1, 0)
    first = np.repeat(np.arange(n), ahead)
    second = first + 1 + np.arange(ahead.sum()) - np.repeat(np.cumsum(ahead) - ahead, ahead)
    overlap = np.minimum(boxes[first, 2], boxes[second, 2]) - np.maximum(boxes[first, 0], boxes[second, 0])
    small = np.minimum(height[first], height[second])
    tall = np.maximum(height[first], height[second])
    near = (
        (overlap >= 0.5 * small)
        & (tall <= 2.2 * small)
        & (boxes[second, 1] - boxes[first, 3] <= _GAP * tall)
        & (np.abs(peak[second] - peak[first]) <= _SAME_PEAK)
    )
    if not near.any():
        return []
    graph = coo_matrix((np.ones(int(near.sum())), (first[near], second[near])), shape=(n, n))
    groups, group_of = connected_components(graph, directed=False)
    # Each group's box and colour.
    size = np.bincount(group_of, minlength=groups)
    top = np.full(groups, np.iinfo(np.int64).max)
    left = top.copy()
    np.minimum.at(top, group_of, boxes[:, 0])
    np.minimum.at(left, group_of, boxes[:, 1])
    bottom, right = np.zeros(groups, np.int64), np.zeros(groups, np.int64)
    np.maximum.at(bottom, group_of, boxes[:, 2])
    np.maximum.at(right, group_of, boxes[:, 3])
    colour = np.bincount(group_of, peak, minlength=groups) / size
    out = []
    for group in np.flatnonzero(size >= _GLYPHS):
        members = np.flatnonzero(group_of == group)
        r0, c0, r1, c1 = int(top[group]), int(left[group]), int(bottom[group]), int(right[group])
        line = r1 - r0
        if c1 - c0 < line:
            continue
        aligned = min(_spread(boxes[members, 0]), _spread(boxes[members, 2])) <= _ALIGN * line
        density = area[members].sum() / (line * (c1 - c0))
        strokes_alike = half_stroke[members].std() <= _STROKE_CV * half_stroke[members].mean()
        if not (
            aligned
            and 0.08 <= density <= 0.7
            and peak[members].std() <= _PEAK_SPREAD
            and strokes_alike
            and np.median(flat[members]) >= _FLAT
        ):
            continue
        # Grow along the row: groups of the line's colour and height (words of one or two
        # glyphs, the digits between colons), until none is near.
        while True:
            gh = bottom - top
            rows_shared = np.minimum(bottom, r1) - np.maximum(top, r0)
            gap = np.maximum(left - c1, c0 - right)
            take = (
                (rows_shared >= 0.6 * np.minimum(gh, line))
                & (gh <= 1.3 * line)
                & (gh >= 0.3 * line)
                & (gap <= _GROW * line)
                & (np.abs(colour - colour[group]) <= _SAME_PEAK)
            )
            grown = min(c0, int(left[take].min())), max(c1, int(right[take].max()))
            if grown == (c0, c1):
                break
            c0, c1 = grown
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
