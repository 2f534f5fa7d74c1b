"""Real SEG, SR and CT objects: after de-identification every reference still resolves.

From ../shared/data/dicom (see its SOURCE.md): dcmqi's three CT slices with the liver SEG drawn
on them, dcmqi's SEG and TID 1500 SR (the SR cites the SEG), and highdicom's CT image with its
single-frame SEG and two SR documents.
"""

import shutil

import pydicom
import pytest

from medsight.deid import deidentify_tree, replace_uid
from tests.deid import KEY, strict_reading

pytestmark = pytest.mark.realdata

HIGHDICOM = (
    "ct_image.dcm",
    "seg_image_ct_binary_single_frame.dcm",
    "sr_document.dcm",
    "sr_document_with_multiple_groups.dcm",
)
DCMQI = ("01.dcm", "02.dcm", "03.dcm", "liver.dcm", "seg.dcm", "sr.dcm")


@pytest.fixture(scope="module")
def run(shared_data, tmp_path_factory):
    src = tmp_path_factory.mktemp("deid-real") / "in"
    for folder, names in (("highdicom", HIGHDICOM), ("dcmqi_ct3slice", DCMQI)):
        (src / folder).mkdir(parents=True)
        for name in names:
            shutil.copy(shared_data / "dicom" / folder / name, src / folder / name)
    dst = src.parent / "out"
    # Clean Pixel Data: the text detector may flag a CT image; masked, it is still written
    options = ["retain-longitudinal-modified", "clean-pixel-data"]
    summary = deidentify_tree(src, dst, key=KEY, options=options)
    return src, dst, summary


def _references(ds) -> set[str]:
    return {str(e.value) for e in ds.iterall() if e.tag == 0x00081155}


def test_every_reference_that_resolved_still_resolves(run):
    src, dst, summary = run
    assert summary["written"] == len(HIGHDICOM) + len(DCMQI)
    inputs = [pydicom.dcmread(p) for p in sorted(src.rglob("*.dcm"))]
    with strict_reading():
        outputs = {p: pydicom.dcmread(p) for p in sorted(dst.rglob("*.dcm"))}
    original = {ds.SOPInstanceUID for ds in inputs}
    present = {ds.SOPInstanceUID for ds in outputs.values()}
    assert present == {replace_uid(KEY, uid) for uid in original}
    expected = {replace_uid(KEY, uid) for ds in inputs for uid in _references(ds) & original}
    resolved = {uid for ds in outputs.values() for uid in _references(ds) & present}
    assert len(expected) == 5 and resolved == expected  # 3 CT slices, ct_image, the dcmqi SEG
    for ds in outputs.values():  # references to objects not in the input are replaced too
        assert not _references(ds) & {uid for d in inputs for uid in _references(d)}


def test_highdicom_reads_the_seg_against_its_source(run):
    hd = pytest.importorskip("highdicom")
    _, dst, _ = run
    by_sop = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID: p for p in dst.rglob("*.dcm")}
    for seg_name, sources in (
        ("seg_image_ct_binary_single_frame.dcm", ["ct_image.dcm"]),
        ("liver.dcm", ["01.dcm", "02.dcm", "03.dcm"]),
    ):
        folder = "highdicom" if seg_name.startswith("seg_") else "dcmqi_ct3slice"
        original_seg = pydicom.dcmread(run[0] / folder / seg_name, stop_before_pixels=True)
        seg = hd.seg.segread(by_sop[replace_uid(KEY, original_seg.SOPInstanceUID)])
        ct = [
            pydicom.dcmread(by_sop[replace_uid(KEY, pydicom.dcmread(run[0] / folder / s).SOPInstanceUID)])
            for s in sources
        ]
        (series,) = seg.ReferencedSeriesSequence
        assert series.SeriesInstanceUID == ct[0].SeriesInstanceUID
        assert {i.ReferencedSOPInstanceUID for i in series.ReferencedInstanceSequence} == {
            c.SOPInstanceUID for c in ct
        }
        assert (
            seg.StudyInstanceUID == ct[0].StudyInstanceUID
            and seg.FrameOfReferenceUID == ct[0].FrameOfReferenceUID
        )
        assert {uids[2] for uids in seg.get_source_image_uids()} == {c.SOPInstanceUID for c in ct}
        assert seg.PatientID == ct[0].PatientID and seg.PatientID.startswith("ANON-")
