"""Atomic file output: write to a temporary sibling, then rename it onto the target.

A crash or an exception never leaves a half-written file under the target's name:
either the old file (or none) is there, or the complete new one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "sha256_file", "temp_name"]


def temp_name(path: str | os.PathLike) -> Path:
    """A fresh temporary path beside `path`: hidden, marked ``.tmp``, same suffixes.

    ``scan.nii.gz`` becomes ``.scan.<token>.tmp.nii.gz``: writers that choose the format
    from the suffix (nibabel, SimpleITK) still see ``.nii.gz``, and folder scanners that
    skip hidden files never pick it up.
    """
    path = Path(path)
    suffix = "".join(path.suffixes)
    stem = path.name[: len(path.name) - len(suffix)] if suffix else path.name
    return path.with_name(f".{stem}.{secrets.token_hex(4)}.tmp{suffix}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `path` atomically.

    The temporary file is created empty (so its name is reserved) in the same folder as
    `path`, which must exist. When the ``with`` block ends normally the file is flushed to
    disk (unless `durable` is false) and ``os.replace``-d onto `path`; when it raises
    (``KeyboardInterrupt`` included) the temporary file is deleted and the exception
    propagates. Without `durable` a killed process still leaves no partial file, but a power
    cut may: for outputs that a re-run rewrites anyway, where the fsyncs cost more than the
    work (de-identifying a slice).

    Examples
    --------
    >>> with atomic_path("out/scan.nii.gz") as tmp:  # doctest: +SKIP
    ...     nib.save(img, tmp)
    """
    path = Path(path)
    for _ in range(100):
        tmp = temp_name(path)
        try:
            fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)  # umask applies
        except FileExistsError:
            continue
        os.close(fd)
        break
    else:  # pragma: no cover - 100 random 32-bit collisions in a row
        raise FileExistsError(f"{path}: could not reserve a temporary file name beside it")
    try:
        yield tmp
        if durable:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if durable:
        _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable; not possible on every platform, hence best effort."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def sha256_file(path: str | os.PathLike, *, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()
