"""Decode DICOM pixel data: a fast path for native data, pydicom's plugins otherwise."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from medsight.errors import FormatError, MissingDependencyError, UnsupportedError

# Which package decodes each compressed transfer syntax (pydicom's pixel plugins).
DECODER_PACKAGES = {
    "1.2.840.10008.1.2.4.50": "pylibjpeg-libjpeg (or pillow)",  # JPEG baseline
    "1.2.840.10008.1.2.4.51": "pylibjpeg-libjpeg (or pillow)",  # JPEG extended
    "1.2.840.10008.1.2.4.57": "pylibjpeg-libjpeg",  # JPEG lossless
    "1.2.840.10008.1.2.4.70": "pylibjpeg-libjpeg",  # JPEG lossless SV1
    "1.2.840.10008.1.2.4.80": "pylibjpeg-libjpeg or pyjpegls",  # JPEG-LS lossless
    "1.2.840.10008.1.2.4.81": "pylibjpeg-libjpeg or pyjpegls",  # JPEG-LS near-lossless
    "1.2.840.10008.1.2.4.90": "pylibjpeg-openjpeg",  # JPEG 2000 lossless
    "1.2.840.10008.1.2.4.91": "pylibjpeg-openjpeg",  # JPEG 2000
    "1.2.840.10008.1.2.4.201": "pylibjpeg-openjpeg",  # HTJ2K lossless
    "1.2.840.10008.1.2.4.202": "pylibjpeg-openjpeg",  # HTJ2K lossless RPCL
    "1.2.840.10008.1.2.4.203": "pylibjpeg-openjpeg",  # HTJ2K
    "1.2.840.10008.1.2.5": "pylibjpeg-rle",  # RLE lossless
}


def transfer_syntax(ds):
    from pydicom.uid import ImplicitVRLittleEndian

    meta = getattr(ds, "file_meta", None)
    uid = meta.get("TransferSyntaxUID") if meta is not None else None
    return uid if uid else ImplicitVRLittleEndian


# Lossless (or identical-output) codecs in imagecodecs, which release the GIL so that a
# series decodes on every core in threads; pydicom's plugins hold it.
_IMAGECODECS = {
    "1.2.840.10008.1.2.4.57": "ljpeg_decode",
    "1.2.840.10008.1.2.4.70": "ljpeg_decode",
    "1.2.840.10008.1.2.4.80": "jpegls_decode",
    "1.2.840.10008.1.2.4.81": "jpegls_decode",
    "1.2.840.10008.1.2.4.90": "jpeg2k_decode",
    "1.2.840.10008.1.2.4.91": "jpeg2k_decode",
    "1.2.840.10008.1.2.4.201": "jpeg2k_decode",
    "1.2.840.10008.1.2.4.202": "jpeg2k_decode",
    "1.2.840.10008.1.2.4.203": "jpeg2k_decode",
}


def decode_all(datasets: list, paths: list) -> list[np.ndarray]:
    """Decode the data sets of one series, in threads (file reads and GIL-free codecs overlap)."""
    workers = min(os.cpu_count() or 1, 8)
    if workers < 2 or len(datasets) < 4:
        return [decode_frames(ds, p) for ds, p in zip(datasets, paths)]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(decode_frames, datasets, paths))


def decode_frames(ds, path) -> np.ndarray:
    """All frames of `ds` as ``(frames, rows, cols[, samples])``, stored values (no rescale)."""
    if "PixelData" not in ds:
        raise FormatError("DICOM file has no pixel data", path=path)
    ts = transfer_syntax(ds)
    if not ts.is_compressed and ts.is_little_endian and int(ds.get("SamplesPerPixel", 1)) == 1:
        fast = _native_frames(ds, path)
        if fast is not None:
            return fast
    if str(ts) in _IMAGECODECS and int(ds.get("SamplesPerPixel", 1)) == 1:
        fast = _imagecodecs_frames(ds, _IMAGECODECS[str(ts)])
        if fast is not None:
            return fast
    return _plugin_frames(ds, path, ts)


def _native_frames(ds, path) -> np.ndarray | None:
    bits = int(ds.get("BitsAllocated", 0))
    if bits not in (8, 16, 32):
        return None  # 1-bit and odd sizes: let pydicom unpack them
    rows, cols = int(ds.Rows), int(ds.Columns)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    signed = int(ds.get("PixelRepresentation", 0)) == 1
    itemsize = bits // 8
    raw = ds.PixelData  # a deferred value is read from disk here
    expected = frames * rows * cols * itemsize
    if len(raw) < expected:
        raise FormatError(
            f"pixel data truncated: {len(raw)} of {expected} bytes",
            path=path,
            hint="The file was cut short; copy it again from its source",
        )
    arr = np.frombuffer(raw, dtype=f"<{'i' if signed else 'u'}{itemsize}", count=expected // itemsize)
    arr = arr.reshape(frames, rows, cols)
    stored = int(ds.get("BitsStored", bits))
    if signed and stored < bits:  # sign-extend e.g. 12-bit two's complement held in 16 bits
        shift = bits - stored
        arr = (arr << shift) >> shift
    return arr


def _imagecodecs_frames(ds, codec: str) -> np.ndarray | None:
    """Grey-level frames through imagecodecs; None (use pydicom) when it is missing or unsure."""
    try:
        import imagecodecs
        from pydicom.encaps import generate_frames
    except ImportError:
        return None
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    signed = int(ds.get("PixelRepresentation", 0)) == 1
    itemsize = max(1, int(ds.get("BitsAllocated", 8)) // 8)
    try:
        decoded = [
            getattr(imagecodecs, codec)(f) for f in generate_frames(ds.PixelData, number_of_frames=frames)
        ]
    except Exception:  # let pydicom's plugins decode it, or report the error in their words
        return None
    first = decoded[0]
    # Only take what pydicom would give unchanged: same shape, width and signedness.
    if (
        len(decoded) != frames
        or first.shape != (int(ds.Rows), int(ds.Columns))
        or first.dtype.itemsize != itemsize
        or (first.dtype.kind == "i") != signed
    ):
        return None
    return np.stack(decoded)


def _plugin_frames(ds, path, ts) -> np.ndarray:
    from pydicom.pixels import get_decoder

    try:
        decoder = get_decoder(ts)
    except NotImplementedError as exc:
        raise UnsupportedError(
            f"no decoder exists for transfer syntax {ts.name} ({ts})",
            path=path,
            hint="Convert the file to an uncompressed transfer syntax, e.g. with dcmdjpeg or gdcmconv",
        ) from exc
    if not decoder.is_available:
        package = DECODER_PACKAGES.get(str(ts), "a pydicom pixel-data plugin")
        raise MissingDependencyError(
            f"pixel data is compressed as {ts.name} and no decoder is installed",
            path=path,
            hint=f"Install {package}, e.g. pip install 'medsight[dicom]'",
        )
    try:
        arr = ds.pixel_array
    except Exception as exc:  # the plugins raise assorted errors on corrupt streams
        raise FormatError(
            f"cannot decode {ts.name} pixel data ({exc})",
            path=path,
            hint="The file may be truncated or corrupt",
        ) from exc
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    samples = int(ds.get("SamplesPerPixel", 1))
    if frames == 1:
        arr = arr[None]
    if samples == 1 and arr.ndim == 4:
        arr = arr[..., 0]
    return arr
