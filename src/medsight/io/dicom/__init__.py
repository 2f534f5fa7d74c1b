"""DICOM reading (files, series, multi-frame), series writing, SEG and detection SR, in RAS+ geometry."""

from medsight.io.dicom._read import read_dicom, read_series
from medsight.io.dicom._scan import SeriesInfo
from medsight.io.dicom._scan import scan_folder as list_series
from medsight.io.dicom._seg import read_seg, write_seg
from medsight.io.dicom._sr import write_detection_sr

__all__ = [
    "SeriesInfo",
    "list_series",
    "read_dicom",
    "read_seg",
    "read_series",
    "write_detection_sr",
    "write_seg",
]
