"""Reading real files: geometry and voxels against SimpleITK, nibabel and the raw headers.

Every reference is converted from LPS to RAS here, by hand (flip the sign of x and y),
so the checks do not rest only on `Image.from_sitk`. Data: ``../shared/data`` (see its
README); every test is marked ``realdata`` and skips when the folder is absent.
"""

from __future__ import annotations

import gzip
import os
import re
from pathlib import Path

import numpy as np
import pytest

sitk = pytest.importorskip("SimpleITK")
nib = pytest.importorskip("nibabel")
pydicom = pytest.importorskip("pydicom")

from medsight.errors import FormatError, MedsightError, NotAnImageError, UnsupportedError
from medsight.image import Image
from medsight.io import MedMNISTDataset, list_series, read
from tests.conftest import shared_data_dir

pytestmark = pytest.mark.realdata

FLIP_XY = np.diag([-1.0, -1.0, 1.0])  # LPS <-> RAS on vectors
DCMQI_CT = ("01.dcm", "02.dcm", "03.dcm")


# -- helpers -------------------------------------------------------------------


def sitk_ras(itk) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SimpleITK's own spacing, origin and direction, converted to RAS by hand."""
    dim = itk.GetDimension()
    spacing = np.array(itk.GetSpacing(), dtype=float)
    origin = np.array(itk.GetOrigin(), dtype=float) * np.array([-1.0, -1.0, 1.0][:dim])
    direction = FLIP_XY[:dim, :dim] @ np.array(itk.GetDirection(), dtype=float).reshape(dim, dim)
    return spacing, origin, direction


def sitk_voxels(itk) -> np.ndarray:
    """SimpleITK's voxels as ``(I, J, K)`` (its arrays are indexed ``k, j, i``)."""
    return sitk.GetArrayFromImage(itk).T


def assert_same_as_sitk(image: Image, itk, *, atol_mm: float = 1e-4, atol_dir: float = 1e-6) -> None:
    """Voxels and full geometry of `image` equal SimpleITK's (via from_sitk and raw)."""
    ref = Image.from_sitk(itk)
    assert image.array.shape == ref.array.shape
    assert np.array_equal(image.array, ref.array)
    np.testing.assert_allclose(image.spacing, ref.spacing, atol=atol_mm)
    np.testing.assert_allclose(image.origin, ref.origin, atol=atol_mm)
    np.testing.assert_allclose(image.direction, ref.direction, atol=atol_dir)
    # Independent of from_sitk: SimpleITK's raw numbers, flipped to RAS here.
    spacing, origin, direction = sitk_ras(itk)
    assert image.spatial_shape == tuple(itk.GetSize())
    assert np.array_equal(image.array[0], sitk_voxels(itk))
    np.testing.assert_allclose(image.spacing, spacing, atol=atol_mm)
    np.testing.assert_allclose(image.origin, origin, atol=atol_mm)
    np.testing.assert_allclose(image.direction, direction, atol=atol_dir)


def sitk_read_series(files):
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(f) for f in files])
    return reader.Execute()


def read_nrrd_raw(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A minimal NRRD reader (attached data, raw or gzip, LPS space): voxels and RAS affine.

    Written from the format specification so that NRRD reading is checked against
    something other than SimpleITK, which MedSight itself uses.
    """
    blob = path.read_bytes()
    head, _, data = blob.partition(b"\n\n")
    fields = {}
    for line in head.decode("ascii").splitlines()[1:]:
        if line.startswith("#") or ": " not in line:
            continue
        key, value = line.split(": ", 1)
        fields[key.strip()] = value.strip()
    assert fields["space"] == "left-posterior-superior"
    assert fields.get("endian", "little") == "little"
    dtype = {"short": "<i2", "int": "<i4", "ushort": "<u2", "uchar": "u1", "float": "<f4"}[fields["type"]]
    sizes = [int(v) for v in fields["sizes"].split()]
    raw = gzip.decompress(data) if fields["encoding"] == "gzip" else data
    voxels = np.frombuffer(raw, dtype=dtype).reshape(sizes, order="F")
    vectors = [
        [float(v) for v in m.split(",")] for m in re.findall(r"\(([^)]*)\)", fields["space directions"])
    ]
    origin = [float(v) for v in fields["space origin"].strip("()").split(",")]
    lps = np.eye(4)
    lps[:3, :3] = np.array(vectors).T  # each vector is one voxel axis: a column
    lps[:3, 3] = origin
    return voxels, np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def _sorted_files(root: Path | None, *folders: str, suffix: str = "") -> list[str]:
    """Files under `folders` (relative to `root`), found at collection time for parametrize."""
    if root is None:
        return ["(no shared data)"]  # the test then skips through the shared_data fixture
    return sorted(
        str(p.relative_to(root))
        for f in folders
        for p in (root / f).rglob("*")
        if p.is_file() and p.name.endswith(suffix)
    )


_ROOT = shared_data_dir()


# -- fixtures ------------------------------------------------------------------


@pytest.fixture(scope="module")
def dicom_dir(shared_data) -> Path:
    return shared_data / "dicom"


@pytest.fixture(scope="module")
def dcmqi_ct_files(dicom_dir, tmp_path_factory) -> list[str]:
    """The three CT files of dcmqi_ct3slice, in the order GDCM sorts them (no SEG/SR)."""
    links = tmp_path_factory.mktemp("dcmqi_ct_only")
    for name in DCMQI_CT:
        os.symlink(dicom_dir / "dcmqi_ct3slice" / name, links / name)
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(links))
    assert sorted(Path(f).name for f in files) == list(DCMQI_CT)
    return [str(dicom_dir / "dcmqi_ct3slice" / Path(f).name) for f in files]


@pytest.fixture(scope="module")
def j2k_ct(dicom_dir) -> Image:
    return read(dicom_dir / "totalseg_ct_series_j2k")


# -- 1. DICOM series and single files against SimpleITK -----------------------


@pytest.mark.parametrize("name", ["torchio_series", "dcmqi_ct3slice", "totalseg_ct_series_j2k"])
def test_series_geometry_matches_sitk(dicom_dir, dcmqi_ct_files, j2k_ct, name):
    folder = dicom_dir / name
    image = j2k_ct if name == "totalseg_ct_series_j2k" else read(folder)
    if name == "dcmqi_ct3slice":
        files = dcmqi_ct_files
    else:
        files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder))
        assert len(files) == len([p for p in folder.iterdir() if p.is_file()])
    itk = sitk_read_series(files)
    assert image.ndim == 3 and image.num_channels == 1
    assert image.spatial_shape[2] == len(files)
    assert_same_as_sitk(image, itk)
    # Same slice order as GDCM's sort, file by file (the CT folder's SEG and SR are left out).
    assert [Path(f).name for f in image.metadata["files"]] == [Path(f).name for f in files]
    assert image.metadata["n_files"] == len(files)
    assert image.metadata["modality"] == "CT"


def test_series_orientations_are_as_in_the_headers(dicom_dir, j2k_ct):
    """Pin the RAS orientation codes: a sign slip in LPS -> RAS flips them."""
    assert read(dicom_dir / "torchio_series").orientation == "RAS"  # stored with L->R, P->A rows
    assert read(dicom_dir / "dcmqi_ct3slice").orientation == "LPS"
    assert j2k_ct.orientation == "LPS"
    # The j2k series is sorted inferior to superior: k points up, origin at the lowest slice.
    z = [
        float(pydicom.dcmread(p, stop_before_pixels=True).ImagePositionPatient[2])
        for p in (dicom_dir / "totalseg_ct_series_j2k").iterdir()
    ]
    assert j2k_ct.origin[2] == pytest.approx(min(z), abs=1e-4)
    assert j2k_ct.spacing[2] == pytest.approx((max(z) - min(z)) / (len(z) - 1), abs=1e-4)


@pytest.mark.parametrize("name", ["pydicom/CT_small.dcm", "pydicom/MR_small.dcm", "highdicom/ct_image.dcm"])
def test_single_file_geometry_matches_sitk(dicom_dir, name):
    path = dicom_dir / name
    image = read(path)
    itk = sitk.ReadImage(str(path))
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    assert image.spatial_shape == (int(ds.Columns), int(ds.Rows), 1)  # 3D with one slice
    assert np.array_equal(image.array[0], sitk_voxels(itk))
    spacing, origin, direction = sitk_ras(itk)
    # In-plane columns of the affine and the origin: exactly SimpleITK's (in RAS).
    np.testing.assert_allclose(image.affine[:3, :2], direction[:, :2] * spacing[:2], atol=1e-4)
    np.testing.assert_allclose(image.origin, origin, atol=1e-4)
    np.testing.assert_allclose(image.direction, direction, atol=1e-6)
    # The k step is not in one slice's geometry: MedSight takes it from the header.
    expected_k = float(ds.get("SpacingBetweenSlices") or ds.get("SliceThickness") or 1.0)
    assert image.spacing[2] == pytest.approx(expected_k, abs=1e-6)


def test_rt_dose_grid_matches_sitk_and_is_scaled_to_gray(dicom_dir):
    """RT dose is a volume: frames placed by GridFrameOffsetVector, values x DoseGridScaling."""
    path = dicom_dir / "pydicom" / "rtdose.dcm"
    image = read(path)
    itk = sitk.ReadImage(str(path))
    scaling = float(pydicom.dcmread(path, stop_before_pixels=True).DoseGridScaling)
    raw = sitk_voxels(itk)
    assert image.spatial_shape == raw.shape == (10, 10, 15)
    np.testing.assert_allclose(image.array[0], raw * scaling, rtol=1e-6)
    spacing, origin, direction = sitk_ras(itk)
    np.testing.assert_allclose(image.spacing, spacing, atol=1e-4)
    np.testing.assert_allclose(image.origin, origin, atol=1e-4)
    np.testing.assert_allclose(image.direction, direction, atol=1e-6)


def test_projection_radiograph_uses_patient_orientation(dicom_dir):
    """DX with PatientOrientation ['L', 'F'] and no position: 2D, rows to the left, columns down."""
    path = dicom_dir / "highdicom" / "dx_image.dcm"
    image = read(path)
    ds = pydicom.dcmread(path)
    assert list(ds.PatientOrientation) == ["L", "F"] and "ImagePositionPatient" not in ds
    assert image.ndim == 2 and image.spatial_shape == (int(ds.Columns), int(ds.Rows))
    assert np.array_equal(image.array[0], ds.pixel_array.T)
    assert image.orientation == "LI"  # i to the patient's left, j to the feet (inferior)
    row_spacing, col_spacing = (float(v) for v in ds.ImagerPixelSpacing)
    np.testing.assert_allclose(image.spacing, (col_spacing, row_spacing), atol=1e-6)


# -- 2. NIfTI and NRRD volumes against SimpleITK, nibabel and the raw header ------


@pytest.mark.parametrize("name", _sorted_files(_ROOT, "volumes", suffix=".nii.gz"))
def test_nifti_matches_sitk_and_nibabel(shared_data, name):
    path = shared_data / name
    image = read(path)
    assert image.metadata["format"] == "nifti"
    assert_same_as_sitk(image, sitk.ReadImage(str(path)))
    img = nib.load(path)
    data = np.asanyarray(img.dataobj)
    assert data.ndim == 3
    assert image.array.dtype == data.dtype
    assert np.array_equal(image.array[0], data)
    np.testing.assert_allclose(image.affine, img.affine, atol=1e-6)


def test_nifti_set_is_complete(shared_data):
    """The parametrisation above found the volumes the README promises."""
    names = {p.name for p in (shared_data / "volumes").rglob("*.nii.gz")}
    assert {"example_seg_dicom.nii.gz", "example_mr_sm.nii.gz", "sub-spleen2_ct.nii.gz"} <= names
    assert len(names) >= 17


@pytest.mark.parametrize(
    "name", _sorted_files(_ROOT, "volumes/pyradiomics", "dicom/dcmqi_ct3slice", suffix=".nrrd")
)
def test_nrrd_matches_sitk_and_raw_header(shared_data, name):
    path = shared_data / name
    image = read(path)
    assert image.metadata["format"] == "nrrd"
    assert_same_as_sitk(image, sitk.ReadImage(str(path)))
    voxels, affine = read_nrrd_raw(path)
    assert np.array_equal(image.array[0], voxels)
    np.testing.assert_allclose(image.affine, affine, atol=1e-6)


def test_dcmqi_label_maps_lie_on_the_ct_grid(dicom_dir):
    """The dcmqi NRRD label maps were drawn on the three CT slices: same grid, sensible HU."""
    ct = read(dicom_dir / "dcmqi_ct3slice")
    liver_spine = read(dicom_dir / "dcmqi_ct3slice" / "liver_spine_seg.nrrd", kind="label")
    assert ct.same_grid(liver_spine, atol=1e-4)
    hu, labels = ct.array[0], liver_spine.array[0]
    assert 0 < hu[labels == 1].mean() < 100  # liver, unenhanced CT colonography
    assert hu[labels == 2].mean() > 200  # spine (bone)
    assert hu.min() == -3024  # GE's outside-the-scan-circle value, intercept -1024 applied


# -- 3. JPEG 2000 CT in HU on the TotalSegmentator label grid ------------------


def test_j2k_ct_in_hounsfield_units(j2k_ct):
    hu = j2k_ct.array[0]
    assert j2k_ct.spatial_shape == (512, 512, 20)
    assert j2k_ct.metadata["transfer_syntax"].startswith("JPEG 2000")
    assert hu.dtype == np.int16
    assert hu.min() == -1024  # air, with intercept -1024 applied (stored 0)
    assert 1000 < hu.max() < 3072  # bone, no metal
    counts, edges = np.histogram(hu, bins=np.arange(-1100, 1600, 20))
    assert -1040 <= edges[np.argmax(counts)] <= -960  # the most common value is air
    soft = hu[(hu > -200) & (hu < 200)]
    assert 0.1 < soft.size / hu.size < 0.6 and -50 < np.median(soft) < 100  # soft tissue


def test_j2k_ct_on_totalseg_label_grid(shared_data, j2k_ct):
    seg = read(shared_data / "volumes/totalseg_example/example_seg_dicom.nii.gz", kind="label")
    assert seg.orientation == "LAS" and j2k_ct.orientation == "LPS"  # j is flipped in the label map
    assert not j2k_ct.same_grid(seg)
    ct = j2k_ct.reorient(seg.orientation)
    assert ct.spatial_shape == seg.spatial_shape == (512, 512, 20)
    np.testing.assert_allclose(ct.affine, seg.affine, atol=1e-3)
    # Resampling onto the label grid is then a pure permutation: the same voxels.
    resampled = j2k_ct.resample(like=seg)
    assert resampled.same_grid(seg)
    np.testing.assert_array_equal(resampled.array, ct.array)

    hu, labels = ct.array[0].astype(float), seg.array[0]
    assert hu[labels > 0].mean() > -200  # organs and bones, not air
    assert hu[:40, :40, :].mean() < -900  # a corner, outside the body
    assert 40 < np.median(hu[labels == 5]) < 150  # liver (contrast-enhanced)
    assert 40 < np.median(hu[labels == 1]) < 150  # spleen
    assert np.median(hu[np.isin(labels, (69, 70))]) > 300  # humeri: bone
    assert np.median(hu[labels == 20]) < -300  # colon: gas
    # Without the reorientation the labels miss their organs: the check above can fail.
    assert j2k_ct.array[0][labels > 0].mean() < -150


# -- 4. every file in dicom/ and cxr/: an image, or a clear MedsightError ---------

# Files that must be refused, with the error class and a word the message must hold.
REFUSED = {
    "cxr/BBox_List_2017.csv.gz": (FormatError, "not a recognised image file"),
    "cxr/SOURCE.md": (FormatError, "not a recognised image file"),
    "cxr/google2019_nih-chest-xray-labels.csv.gz": (FormatError, "not a recognised image file"),
    "cxr/tbx11k_test_data/annotations/json/TBX11K_train.json": (
        FormatError,
        "not a recognised image file",
    ),
    "dicom/SOURCE.md": (FormatError, "not a recognised image file"),
    "dicom/highdicom/README.md": (FormatError, "not a recognised image file"),
    "dicom/pydicom/README.txt": (FormatError, "not a recognised image file"),
    "dicom/dcmqi_ct3slice/liver.dcm": (NotAnImageError, "(SEG)"),
    "dicom/dcmqi_ct3slice/seg.dcm": (NotAnImageError, "(SEG)"),
    "dicom/dcmqi_ct3slice/sr.dcm": (NotAnImageError, "(SR)"),
    "dicom/pydicom/liver_1frame.dcm": (NotAnImageError, "(SEG)"),
    "dicom/pydicom/rtplan.dcm": (NotAnImageError, "(RTPLAN)"),
    "dicom/pydicom/rtstruct.dcm": (NotAnImageError, "(RTSTRUCT)"),
    "dicom/highdicom/sm_annotations.dcm": (NotAnImageError, "(ANN)"),
    "dicom/highdicom/sr_document.dcm": (NotAnImageError, "(SR)"),
    "dicom/highdicom/sr_document_with_multiple_groups.dcm": (NotAnImageError, "(SR)"),
    **{
        f"dicom/highdicom/seg_image_{name}.dcm": (NotAnImageError, "(SEG)")
        for name in (
            "cr_binary",
            "ct_binary",
            "ct_binary_fractional",
            "ct_binary_overlap",
            "ct_binary_single_frame",
            "ct_true_fractional",
            "sm_control",
            "sm_control_labelmap",
            "sm_control_labelmap_palette_color",
            "sm_dots",
            "sm_dots_tiled_full",
            "sm_numbers",
        )
    },
    **{
        f"dicom/highdicom/sm_image{name}.dcm": (UnsupportedError, "whole-slide microscopy")
        for name in (
            "",
            "_control",
            "_dots",
            "_grayscale",
            "_grayscale_reversed",
            "_jpegls",
            "_jpegls_nobot",
            "_numbers",
        )
    },
}

# Readable files whose image must be 2D (projections and photos); the rest are 3D.
PLANAR = (".png", ".jpg", ".jpeg", "cxr/1.2.276.", "dicom/highdicom/dx_image.dcm")


def test_refused_table_is_not_stale(shared_data):
    missing = [name for name in REFUSED if not (shared_data / name).is_file()]
    assert not missing


@pytest.mark.parametrize("name", _sorted_files(_ROOT, "dicom", "cxr"))
def test_every_file_reads_or_is_refused_clearly(shared_data, name):
    path = shared_data / name
    if name in REFUSED:
        error, words = REFUSED[name]
        with pytest.raises(MedsightError) as info:
            read(path)
        assert type(info.value) is error, f"{type(info.value).__name__}: {info.value}"
        assert path.name in str(info.value)
        assert words in str(info.value)
        return
    result = read(path)
    assert isinstance(result, (Image, MedMNISTDataset))
    assert isinstance(result, Image)  # no MedMNIST files in these folders
    assert result.array.size > 0 and np.all(np.isfinite(result.affine))
    assert result.ndim == (2 if any(p in name for p in PLANAR) else 3)
    if name.endswith(".dcm") or "/totalseg_ct_series_j2k/" in name:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert result.metadata["modality"] == ds.Modality
        assert result.metadata["format"] == "dicom"


# -- 5. listing the series of a mixed folder ------------------------------------


def test_list_series_separates_ct_from_seg_and_sr(dicom_dir):
    found = list_series(dicom_dir / "dcmqi_ct3slice")
    assert len(found) == 4
    ct = found[0]  # images come first
    assert ct.is_image and ct.modality == "CT" and ct.sop_class == "CT Image Storage"
    assert sorted(p.name for p in ct.files) == list(DCMQI_CT)
    others = {tuple(p.name for p in s.files): (s.is_image, s.modality, s.sop_class) for s in found[1:]}
    assert others == {
        ("liver.dcm",): (False, "SEG", "Segmentation Storage"),
        ("seg.dcm",): (False, "SEG", "Segmentation Storage"),
        ("sr.dcm",): (False, "SR", "Comprehensive SR Storage"),
    }
    assert all("(not an image)" in s.label() and s.sop_class in s.label() for s in found[1:])
    # And the folder reads as the CT series alone.
    assert read(dicom_dir / "dcmqi_ct3slice").metadata["series_uid"] == ct.series_uid
