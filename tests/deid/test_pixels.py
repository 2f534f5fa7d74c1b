"""Burned-in text: header risk rules, text found in the pixels, regions masked and stored."""

import numpy as np
import pytest

pytest.importorskip("pydicom")

from pydicom import dcmread  # noqa: E402
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian, RLELossless, generate_uid  # noqa: E402

from medsight.data.synthetic.phi_corpus import burn_text  # noqa: E402
from medsight.deid.pixels import burned_in_risk, find_text_regions, mask_regions  # noqa: E402

SC = "1.2.840.10008.5.1.4.1.1.7"
CT = "1.2.840.10008.5.1.4.1.1.2"
US = "1.2.840.10008.5.1.4.1.1.6.1"


def _dataset(pixels, photometric="MONOCHROME2", *, sop=SC, modality="OT", bits=None):
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = sop
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.Modality = modality
    ds.set_pixel_data(pixels, photometric, bits or pixels.dtype.itemsize * 8, generate_instance_uid=False)
    return ds


def _background(shape=(192, 256), dtype=np.uint8, high=160):
    """A smooth, textless image: a gradient and a soft disc."""
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    disc = np.exp(-((rows - shape[0] / 2) ** 2 + (cols - shape[1] / 2) ** 2) / (2 * (shape[0] / 4) ** 2))
    image = high * (0.2 + 0.3 * cols / shape[1] + 0.5 * disc)
    return image.astype(dtype)


def _covered(box, regions) -> float:
    r0, c0, r1, c1 = box
    mask = np.zeros((r1 - r0, c1 - c0), bool)
    for a, b, c, d in regions:
        mask[max(a - r0, 0) : max(min(c, r1) - r0, 0), max(b - c0, 0) : max(min(d, c1) - c0, 0)] = True
    return mask.mean()


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"BurnedInAnnotation": "YES", "Modality": "CT", "SOPClassUID": CT}, "Burned In Annotation is YES"),
        ({"BurnedInAnnotation": "NO", "Modality": "US", "SOPClassUID": US}, None),
        ({"Modality": "US", "SOPClassUID": US}, "Ultrasound SOP class"),
        ({"Modality": "OT", "SOPClassUID": SC + ".4"}, "Secondary Capture"),
        ({"Modality": "DX", "SOPClassUID": "1.2.840.10008.5.1.4.1.1.1.1"}, "Modality DX"),
        (
            {"Modality": "CT", "SOPClassUID": CT, "ImageType": ["DERIVED", "SECONDARY", "SCREEN SAVE"]},
            "screen",
        ),
        ({"Modality": "CT", "SOPClassUID": CT, "ImageType": ["ORIGINAL", "PRIMARY", "AXIAL"]}, None),
    ],
)
def test_burned_in_risk_follows_the_header_rules(attributes, expected):
    ds = Dataset()
    ds.PixelData = b"\0\0"
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    reason = burned_in_risk(ds)
    assert reason is None if expected is None else expected in reason


def test_no_pixels_no_risk():
    ds = Dataset()
    ds.Modality, ds.SOPClassUID, ds.BurnedInAnnotation = "US", US, "YES"
    assert burned_in_risk(ds) is None
    assert find_text_regions(ds) == []


@pytest.mark.parametrize(
    ("dtype", "photometric", "value"),
    [(np.uint8, "MONOCHROME2", 255), (np.uint16, "MONOCHROME2", 4095), (np.uint8, "RGB", (255, 255, 0))],
)
def test_text_is_found_in_grey_and_colour_8_and_16_bit(dtype, photometric, value):
    pixels = _background(dtype=dtype, high=160 if dtype == np.uint8 else 2500)
    if photometric == "RGB":
        pixels = np.stack([pixels] * 3, axis=-1)
    boxes = []
    for row, (text, size) in enumerate([("SMITH^JOHN", 12), ("ID 40217735", 18), ("1953/04/17 10:22", 26)]):
        pixels, box = burn_text(pixels, text, row=8 + 50 * row, col=10, size=size, value=value)
        boxes.append(box)
    ds = _dataset(pixels, photometric, bits=12 if dtype == np.uint16 else 8)
    regions = find_text_regions(ds)
    assert all(_covered(box, regions) >= 0.9 for box in boxes), (boxes, regions)
    assert find_text_regions(_dataset(_background(dtype=dtype))) == []


def test_regions_are_the_union_over_frames_and_survive_compression():
    frames = np.stack([_background()] * 3)
    frames[1], box = burn_text(frames[1], "DOE^JANE 19480312", row=150, col=20, size=16, value=255)
    ds = _dataset(frames)
    regions = find_text_regions(ds)
    assert _covered(box, regions) >= 0.9
    ds.compress(RLELossless, generate_instance_uid=False)
    assert find_text_regions(ds) == regions


def test_mask_blanks_every_frame_writes_uncompressed_and_sets_the_flag(tmp_path):
    frames = np.stack([_background()] * 2)
    frames[0], box = burn_text(frames[0], "DOE^JANE", row=20, col=20, size=20, value=255)
    ds = _dataset(frames)
    ds.compress(RLELossless, generate_instance_uid=False)
    uid = ds.SOPInstanceUID
    mask_regions(ds, [box])
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian and ds.BurnedInAnnotation == "NO"
    assert ds.SOPInstanceUID == uid  # UIDs are the de-identifier's business
    ds.save_as(tmp_path / "masked.dcm", enforce_file_format=True)
    out = dcmread(tmp_path / "masked.dcm").pixel_array
    r0, c0, r1, c1 = box
    assert (out[:, r0:r1, c0:c1] == frames.min()).all()
    outside = np.ones(out.shape, bool)
    outside[:, r0:r1, c0:c1] = False
    assert np.array_equal(out[outside], frames[outside])


def test_mask_handles_monochrome1_ybr_and_single_bit():
    pixels = _background()
    ds = _dataset(pixels, "MONOCHROME1")
    mask_regions(ds, [(0, 0, 10, 10)])
    assert (ds.pixel_array[:10, :10] == pixels.max()).all()  # displayed black

    rgb = np.stack([pixels, pixels // 2, pixels // 3], axis=-1)
    ds = _dataset(rgb, "RGB")
    ds.compress(RLELossless, generate_instance_uid=False)
    ds.PhotometricInterpretation = "YBR_FULL"  # as a JPEG would store it; pydicom decodes to RGB
    mask_regions(ds, [(5, 5, 15, 15)])
    assert ds.PhotometricInterpretation == "RGB" and ds.SamplesPerPixel == 3

    bits = (_background() > 100).astype(np.uint8)
    ds = _dataset(bits, bits=1)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 1, 1, 0
    from pydicom.pixels import pack_bits

    ds.PixelData = pack_bits(bits)
    mask_regions(ds, [(0, 0, 8, 16)])
    assert ds.BitsAllocated == 1 and (ds.pixel_array[:8, :16] == 0).all()
    assert np.array_equal(ds.pixel_array[8:], bits[8:])


def test_no_regions_change_nothing():
    ds = _dataset(_background())
    ds.compress(RLELossless, generate_instance_uid=False)
    mask_regions(ds, [])
    assert ds.file_meta.TransferSyntaxUID == RLELossless and "BurnedInAnnotation" not in ds


def test_ultrasound_speckle_is_not_text_but_text_on_it_is():
    from medsight.data.synthetic import ultrasound

    speckle = np.ascontiguousarray(ultrasound(seed=1, shape=(480, 360), spacing=0.1).image.array[0].T)
    assert find_text_regions(_dataset(speckle, sop=US, modality="US")) == []
    pixels, box = burn_text(speckle, "RT BREAST 10:30", row=300, col=40, size=16, value=255)
    assert _covered(box, find_text_regions(_dataset(pixels, sop=US, modality="US"))) >= 0.9
