"""Decode DICOM pixel data: a fast path for native data, pydicom's plugins otherwise."""

from __future__ import annotations

import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor

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


# Compressed frames are decoded in worker processes when there are this many: the
# decoders hold the GIL, and a 300-slice JPEG 2000 series takes seconds on one core.
_PARALLEL_MIN_FILES = 16


def decode_all(datasets: list, paths: list) -> list[np.ndarray]:
    """Decode many data sets (one series); compressed ones in parallel processes."""
    workers = min(os.cpu_count() or 1, 8)
    compressed = [i for i, ds in enumerate(datasets) if transfer_syntax(ds).is_compressed]
    if workers < 2 or len(compressed) < _PARALLEL_MIN_FILES:
        return [decode_frames(ds, p) for ds, p in zip(datasets, paths)]
    out: list = [None] * len(datasets)
    todo = [paths[i] for i in compressed]
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        chunk = 1 if len(todo) < 2000 else 8  # small tasks keep both cores busy to the end
        for i, arr in zip(compressed, pool.map(_decode_file, todo, chunksize=chunk)):
            out[i] = arr
    for i, (ds, p) in enumerate(zip(datasets, paths)):
        if out[i] is None:
            out[i] = decode_frames(ds, p)
    return out


def _decode_file(path) -> np.ndarray:
    import pydicom

    return decode_frames(pydicom.dcmread(path, force=True), path)


def decode_frames(ds, path) -> np.ndarray:
    """All frames of `ds` as ``(frames, rows, cols[, samples])``, stored values (no rescale)."""
    if "PixelData" not in ds:
        raise FormatError("DICOM file has no pixel data", path=path)
    ts = transfer_syntax(ds)
    if not ts.is_compressed and ts.is_little_endian and int(ds.get("SamplesPerPixel", 1)) == 1:
        fast = _native_frames(ds, path)
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
