import json

import numpy as np
import pytest

from medsight.data import Manifest, Sample, read_manifest, write_manifest
from medsight.errors import FormatError, NotFoundError
from medsight.image import Image
from medsight.io import write


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / "data"
    (root / "img").mkdir(parents=True)
    samples = []
    for n in range(4):
        arr = np.full((1, 8, 6), n * 10, np.uint8)
        write(Image(arr), root / "img" / f"c{n}.png")
        mask = Image((np.arange(48).reshape(1, 8, 6) % 2).astype(np.uint8), kind="label")
        write(mask, root / "img" / f"c{n}_mask.png")
        samples.append(
            Sample(
                f"img/c{n}.png",
                label="a" if n % 2 else "b",
                mask=f"img/c{n}_mask.png",
                boxes=[{"box": [1, 2, 4, 6], "label": "lesion"}],
                patient_id=f"p{n // 2}",
                timepoint=n % 2,
                attributes={"sex": "F", "age": 40 + n},
            )
        )
    return Manifest(samples, root=root, name="toy", classes=["b", "a"], label_names={1: "lesion"})


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_round_trip_and_rebase(tmp_path, dataset, suffix):
    out = tmp_path / "elsewhere" / f"manifest{suffix}"
    out.parent.mkdir()
    write_manifest(dataset, out)
    back = read_manifest(out)
    assert len(back) == 4
    first = back.samples[0]
    assert first.image == "../data/img/c0.png"  # relative to the manifest's own folder
    assert first.boxes == [{"box": [1.0, 2.0, 4.0, 6.0], "label": "lesion"}]
    assert first.patient_id == "p0" and first.timepoint == 0 and first.attributes["age"] == 40
    np.testing.assert_array_equal(back.load_image(first).array, dataset.load_image(dataset.samples[0]).array)
    assert back.load_mask(first).kind == "label"
    if suffix == ".json":
        assert back.classes == ["b", "a"] and back.label_names == {1: "lesion"}
    assert back.targets == {"label", "mask", "boxes"}


def test_multi_channel_and_mask_union(tmp_path, dataset):
    s = dataset.samples[0]
    two = Sample([s.image, dataset.samples[1].image], mask=[s.mask, dataset.samples[1].mask])
    m = Manifest([two], root=dataset.root)
    assert m.load_image(two).num_channels == 2
    assert set(np.unique(m.load_mask(two).array)) == {0, 1}


def test_bad_manifests_give_clear_errors(tmp_path):
    bad = tmp_path / "m.json"
    bad.write_text("{not json")
    with pytest.raises(FormatError, match="not valid JSON"):
        read_manifest(bad)
    bad.write_text(json.dumps({"samples": []}))
    with pytest.raises(FormatError, match="not a MedSight manifest"):
        read_manifest(bad)
    bad.write_text(
        json.dumps(
            {"format": "medsight-manifest", "samples": [{"image": "a.png", "boxes": [{"box": [5, 5, 2, 9]}]}]}
        )
    )
    with pytest.raises(FormatError, match="empty or inverted"):
        read_manifest(bad)
    csv = tmp_path / "m.csv"
    csv.write_text("path,label\na.png,x\n")
    with pytest.raises(FormatError, match="no 'image' column"):
        read_manifest(csv)
    csv.write_text("image,timepoint\na.png,yesterday\n")
    with pytest.raises(FormatError, match="line 2"):
        read_manifest(csv)
    with pytest.raises(NotFoundError):
        read_manifest(tmp_path / "none.json")


def test_missing_image_file_names_it(tmp_path, dataset):
    from medsight.errors import MedsightError

    m = Manifest([Sample("img/missing.png")], root=dataset.root)
    with pytest.raises(MedsightError, match="missing.png"):
        m.load_image(m.samples[0])
