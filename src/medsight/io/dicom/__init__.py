"""DICOM reading (files, series, multi-frame) and series writing, in RAS+ geometry."""

from medsight.io.dicom._read import read_dicom, read_series
from medsight.io.dicom._scan import SeriesInfo
from medsight.io.dicom._scan import scan_folder as list_series

__all__ = ["SeriesInfo", "list_series", "read_dicom", "read_series"]
