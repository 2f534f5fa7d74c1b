"""MedSight's exceptions.

Every error MedSight raises on bad input is a :class:`MedsightError`. Each subclass
also inherits the matching built-in exception, so ``except ValueError`` or
``except FileNotFoundError`` keeps working for callers that do not know MedSight.

A message names the file, says what is wrong and what to do, in one line::

    scan.dcm: DICOM file has no pixel data (Basic Text SR). Pass an image series instead.
"""

from __future__ import annotations

from os import PathLike

__all__ = [
    "FormatError",
    "GeometryError",
    "MedsightError",
    "MissingDependencyError",
    "NotAnImageError",
    "NotFoundError",
    "SeriesError",
    "UnsupportedError",
]


class MedsightError(Exception):
    """Base class of every MedSight error.

    Parameters
    ----------
    problem : str
        What is wrong, as a short sentence.
    path : str or PathLike, optional
        The file or folder concerned; it starts the message.
    hint : str, optional
        What the user can do about it.
    """

    def __init__(self, problem: str, *, path: str | PathLike | None = None, hint: str = ""):
        self.problem = problem
        self.path = None if path is None else str(path)
        self.hint = hint
        super().__init__(self.message)

    @property
    def message(self) -> str:
        text = f"{self.path}: {self.problem}" if self.path else self.problem
        if self.hint:
            text = f"{text.rstrip('.')}. {self.hint}"
        return text

    def __str__(self) -> str:
        return self.message


class NotFoundError(MedsightError, FileNotFoundError):
    """A path does not exist, or a folder holds nothing MedSight can read."""


class FormatError(MedsightError, ValueError):
    """A file is truncated, corrupt, or not in any format MedSight reads."""


class NotAnImageError(FormatError):
    """A valid file that holds no image: a DICOM SEG, SR or RT object, for example."""


class MissingDependencyError(MedsightError, ImportError):
    """An optional package (an extra, or a DICOM pixel decoder) is not installed."""


class UnsupportedError(MedsightError, NotImplementedError):
    """Valid input that MedSight deliberately does not handle (yet)."""


class SeriesError(MedsightError, ValueError):
    """A DICOM folder or series is ambiguous or inconsistent."""


class GeometryError(MedsightError, ValueError):
    """Image geometry is invalid or incompatible with the operation."""
