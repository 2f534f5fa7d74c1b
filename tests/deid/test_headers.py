"""NIfTI and NRRD headers: free text out, geometry and voxels kept, the input untouched."""

import gzip
import hashlib

import numpy as np
import pytest

from medsight.deid.headers import deidentify_header_file
from medsight.errors import UnsupportedError

nib = pytest.importorskip("nibabel")

PHI = (b"SMITH", b"MRN4471", b"19530417", b"SECRETX")


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _raw(path):
    data = path.read_bytes()
    return gzip.decompress(data) if path.name.endswith(".gz") else data


@pytest.mark.parametrize("kind", ["Nifti1Image", "Nifti2Image"])
@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_nifti_text_fields_and_extensions_go_voxels_and_scaling_stay(tmp_path, kind, suffix):
    affine = np.array([[0, -2.0, 0, 10], [1.5, 0, 0, -20], [0, 0, 3.0, 5], [0, 0, 0, 1]])
    image = getattr(nib, kind)(np.linspace(-5, 900, 24, dtype=np.float32).reshape(2, 3, 4), affine)
    image.set_data_dtype(np.int16)  # stored scaled: the slope must survive
    header = image.header
    header["descrip"], header["aux_file"], header["intent_name"] = (
        b"SMITH^JOHN 19530417",
        b"MRN4471",
        b"SECRETX",
    )
    header.extensions.append(nib.nifti1.Nifti1Extension(6, b"comment: SMITH MRN4471"))
    src, dst = tmp_path / f"in{suffix}", tmp_path / f"out{suffix}"
    nib.save(image, src)
    before = _sha(src)

    actions = deidentify_header_file(src, dst)

    assert _sha(src) == before
    assert {"descrip emptied", "aux_file emptied", "intent_name emptied"} <= set(actions)
    assert any("extension" in action for action in actions)
    assert not any(phi in _raw(dst) for phi in PHI)
    a, b = nib.load(src), nib.load(dst)
    assert np.array_equal(a.dataobj.get_unscaled(), b.dataobj.get_unscaled())
    assert (a.dataobj.slope, a.dataobj.inter) == (b.dataobj.slope, b.dataobj.inter) != (1.0, 0.0)
    assert np.array_equal(a.get_fdata(), b.get_fdata())
    assert np.array_equal(a.affine, b.affine) and len(b.header.extensions) == 0
    assert deidentify_header_file(src, tmp_path / f"again{suffix}") == actions
    assert (tmp_path / f"again{suffix}").read_bytes() == dst.read_bytes()  # deterministic


def _nrrd_header(**extra):
    lines = [
        "NRRD0005",
        "# written by SMITH at MRN4471",
        "type: short",
        "dimension: 3",
        "space: left-posterior-superior",
        "sizes: 4 3 2",
        "space directions: (0.5,0,0) (0,0.5,0) (0,0,2)",
        "kinds: domain domain domain",
        "endian: little",
        "content: SMITH^JOHN 19530417",
        "space origin: (-10,20,30.5)",
        "PatientName:=SMITH^JOHN",
        "DICOM_0010_0020:=MRN4471",
    ]
    return "\n".join(lines + [f"{k}: {v}" for k, v in extra.items()]) + "\n\n"


def test_nrrd_keeps_geometry_and_data_only(tmp_path):
    sitk = pytest.importorskip("SimpleITK")
    voxels = np.arange(24, dtype="<i2")
    src, dst = tmp_path / "in.nrrd", tmp_path / "out.nrrd"
    src.write_bytes(_nrrd_header(encoding="gzip").encode() + gzip.compress(voxels.tobytes()))
    before = _sha(src)

    actions = deidentify_header_file(src, dst)

    assert _sha(src) == before
    assert "field 'content' removed" in actions and "2 key:=value line(s) removed" in actions
    assert not any(phi in dst.read_bytes() for phi in PHI)
    a, b = sitk.ReadImage(str(src)), sitk.ReadImage(str(dst))
    assert np.array_equal(sitk.GetArrayFromImage(a), sitk.GetArrayFromImage(b))
    assert (a.GetSpacing(), a.GetOrigin(), a.GetDirection()) == (
        b.GetSpacing(),
        b.GetOrigin(),
        b.GetDirection(),
    )


def test_detached_nrrd_data_is_copied_beside_the_output_under_its_name(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    src = tmp_path / "in" / "SMITH_JOHN.nhdr"
    (tmp_path / "in" / "SMITH_JOHN.raw").write_bytes(np.arange(24, dtype="<i2").tobytes())
    src.write_text(_nrrd_header(encoding="raw", **{"data file": "SMITH_JOHN.raw"}))

    deidentify_header_file(src, tmp_path / "out" / "case1.nhdr")

    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["case1.nhdr", "case1.raw"]
    header = (tmp_path / "out" / "case1.nhdr").read_text()
    assert "data file: case1.raw" in header and "SMITH" not in header
    assert (tmp_path / "out" / "case1.raw").read_bytes() == (tmp_path / "in" / "SMITH_JOHN.raw").read_bytes()


def test_refuses_other_files_and_writing_over_the_input(tmp_path):
    other = tmp_path / "notes.txt"
    other.write_text("SMITH")
    with pytest.raises(UnsupportedError, match="not a NIfTI or NRRD"):
        deidentify_header_file(other, tmp_path / "out.txt")
    src = tmp_path / "in.nrrd"
    src.write_text(_nrrd_header(encoding="raw"))
    with pytest.raises(UnsupportedError, match="both input and output"):
        deidentify_header_file(src, src)
