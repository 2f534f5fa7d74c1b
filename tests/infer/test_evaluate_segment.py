"""Segmentation evaluation: summaries, pooled F1 and AUC, bootstrap intervals, bad input, outputs."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from medsight.errors import FormatError, GeometryError
from medsight.image import Image
from medsight.infer.evaluate_segment import SegmentationCase, evaluate_segmentations, write_segment_evaluation

AFFINE = np.diag([0.8, 0.8, 2.0, 1.0])


def label(array, affine=AFFINE) -> Image:
    return Image(np.asarray(array)[None], affine, kind="label")


def box_case(key, shift, *, patient=None, shape=(24, 24, 10)) -> SegmentationCase:
    """A box of class 1 and a smaller one of class 2; the prediction moves box 1 by `shift` voxels."""
    ref = np.zeros(shape, np.uint8)
    ref[4:14, 4:14, 2:8] = 1
    ref[16:21, 16:21, 3:6] = 2
    pred = ref.copy()
    pred[pred == 1] = 0
    pred[4 + shift : 14 + shift, 4:14, 2:8] = 1
    return SegmentationCase(key, label(pred), label(ref), patient_id=patient)


def test_summaries_per_case_and_class():
    cases = [box_case("a", 0, patient="p1"), box_case("b", 2, patient="p1"), box_case("c", 5, patient="p2")]
    result = evaluate_segmentations(cases, class_names=["background", "organ", "lesion"], n_boot=50)
    dice_organ = [1.0, 0.8, 0.5]  # 10 x 10 x 6 boxes shifted 0, 2, 5 voxels along 10
    assert result["per_class"]["organ"]["dice"] == pytest.approx(np.mean(dice_organ))
    assert result["per_class"]["lesion"]["dice"] == 1.0
    assert result["dice"] == pytest.approx((np.mean(dice_organ) + 1) / 2)
    # pooled over cases: 2 * (600 + 480 + 300) / (3 * 1200)
    assert result["per_class"]["organ"]["f1_pooled"] == pytest.approx(2 * 1380 / 3600)
    assert result["per_class"]["organ"]["hd95_mm"] > 0 and result["per_class"]["lesion"]["hd95_mm"] == 0
    assert result["per_class"]["organ"]["volume_diff_ml"] == 0
    assert result["auc"] is None
    assert (result["n_cases"], result["n_patients"], result["resampled"]) == (3, 2, "patients")
    assert result["ndim"] == 3 and result["tolerance_mm"] == 1.0
    assert len(result["cases"]) == 6
    row = next(r for r in result["cases"] if r["key"] == "c" and r["class"] == "organ")
    assert row["dice"] == pytest.approx(0.5) and row["volume_ref_ml"] == pytest.approx(600 * 1.28 / 1000)
    assert row["patient"] == "p2" and row["label"] == 1


def test_empty_classes_are_counted_and_undefined_values_are_null():
    ref = np.zeros((16, 16), np.uint8)
    ref[3:9, 3:9] = 1
    cases = [
        SegmentationCase("hit", label(ref), label(ref)),
        SegmentationCase("missed", label(np.zeros_like(ref)), label(ref)),
        SegmentationCase("nothing", label(np.zeros_like(ref)), label(np.zeros_like(ref))),
    ]
    result = evaluate_segmentations(cases, class_names=["bg", "fg"], n_boot=20)
    fg = result["per_class"]["fg"]
    assert fg["dice"] == pytest.approx((1 + 0 + 1) / 3)  # both empty scores 1
    assert fg["hd95_mm"] == 0  # mean over the two cases where it is defined
    assert (fg["n_empty_prediction"], fg["n_empty_reference"], fg["n_both_empty"]) == (1, 0, 1)
    assert fg["n_distance_undefined"] == 1
    assert "area_diff_mm2" in fg and "volume_diff_ml" not in fg  # 2D maps have areas
    missed = next(r for r in result["cases"] if r["key"] == "missed")
    assert missed["hd95_mm"] is None and missed["nsd"] == 0
    json.dumps(result, allow_nan=False)  # strict JSON: no NaN anywhere
    assert result["resampled"] == "cases" and "patient_id" in result["notes"][0]


def test_intervals_contain_the_estimate_and_narrow_with_more_cases():
    rng = np.random.default_rng(1)

    def cohort(n):
        return [box_case(f"c{i}", int(rng.integers(0, 6)), patient=f"p{i}") for i in range(n)]

    small = evaluate_segmentations(cohort(8), class_names=["bg", "organ", "lesion"], n_boot=300)
    large = evaluate_segmentations(cohort(64), class_names=["bg", "organ", "lesion"], n_boot=300)
    for result in (small, large):
        low, high = result["ci"]["dice"]
        assert low <= result["dice"] <= high
        for name in ("dice", "hd95_mm", "assd_mm", "nsd", "f1_pooled"):
            low, high = result["ci"]["per_class"]["organ"][name]
            assert low <= result["per_class"]["organ"][name] <= high, name

    def width(result, name):
        low, high = result["ci"]["per_class"]["organ"][name]
        return high - low

    assert width(large, "dice") < 0.6 * width(small, "dice")
    assert width(large, "hd95_mm") < 0.6 * width(small, "hd95_mm")
    again = evaluate_segmentations(cohort(8), class_names=["bg", "organ", "lesion"], n_boot=0)
    assert again["ci"] == {}


def test_pooled_auc_and_f1_inside_the_field_of_view():
    roc_auc_score = pytest.importorskip("sklearn.metrics").roc_auc_score
    rng = np.random.default_rng(0)
    cases, truths, probs, preds = [], [], [], []
    yy, xx = np.mgrid[:40, :48]
    for i in range(5):
        truth = ((np.abs(xx - 10 - 5 * i) < 2) | (np.abs(yy - 20) < 2)).astype(np.uint8)  # thin "vessels"
        prob = 1 / (1 + np.exp(-(rng.normal(size=truth.shape) + 3 * truth - 1.5)))
        fov = ((yy - 20) ** 2 + (xx - 24) ** 2 < 18**2).astype(np.uint8)
        pred = (prob >= 0.5).astype(np.uint8)
        pred[fov == 0] = 1  # nonsense outside the field of view must not count
        prob_outside = np.where(fov == 1, prob, 1 - truth)
        cases.append(
            SegmentationCase(
                f"{i:02d}",
                label(pred),
                label(truth),
                fov=label(fov),
                probability=Image(prob_outside[None], AFFINE),
            )
        )
        truths.append(truth[fov == 1])
        probs.append(prob[fov == 1])
        preds.append(pred[fov == 1])
    result = evaluate_segmentations(cases, class_names=["background", "vessel"], n_boot=100)
    truth, prob, pred = (np.concatenate(a) for a in (truths, probs, preds))
    assert result["auc"] == pytest.approx(roc_auc_score(truth, prob), abs=1e-6)
    tp = np.sum((pred == 1) & (truth == 1))
    assert result["f1_pooled"] == pytest.approx(2 * tp / (np.sum(pred == 1) + np.sum(truth == 1)))
    low, high = result["ci"]["auc"]
    assert low <= result["auc"] <= high
    assert all(0.5 < row["auc"] <= 1 for row in result["cases"])


def test_mismatched_grids_and_foreign_labels_name_the_case():
    good = box_case("fine", 1)
    moved = np.array(AFFINE)
    moved[0, 3] = 5.0
    shifted = SegmentationCase("moved", label(good.prediction.array[0], moved), good.reference)
    with pytest.raises(GeometryError, match="case moved: the prediction lies on another grid"):
        evaluate_segmentations([good, shifted], class_names=["bg", "organ", "lesion"])
    fov = SegmentationCase("cropped", good.prediction, good.reference, fov=label(np.ones((24, 24, 9))))
    with pytest.raises(GeometryError, match="case cropped: the field-of-view mask"):
        evaluate_segmentations([fov], class_names=["bg", "organ", "lesion"])
    with pytest.raises(FormatError, match=r"case fine: the prediction holds label\(s\) \[2\]"):
        evaluate_segmentations([good], class_names=["bg", "organ"])
    binary = label(np.eye(6, dtype=np.uint8))
    logits = SegmentationCase("logits", binary, binary, probability=Image(np.full((1, 6, 6), 3.0), AFFINE))
    with pytest.raises(FormatError, match="case logits: foreground probabilities must lie in"):
        evaluate_segmentations([logits], class_names=["bg", "organ"])
    with pytest.raises(FormatError, match="no cases"):
        evaluate_segmentations([], class_names=["bg", "organ"])


def test_writes_metrics_and_per_case_rows(tmp_path):
    cases = (box_case(f"c{i}", i, patient=f"p{i}") for i in range(3))  # a generator is enough
    result = evaluate_segmentations(cases, class_names=["bg", "organ", "lesion"], n_boot=20)
    paths = write_segment_evaluation(result, tmp_path / "eval")
    assert [p.name for p in paths] == ["metrics.json", "per_case.csv"]
    metrics = json.loads(paths[0].read_text())
    assert "cases" not in metrics and metrics["dice"] == pytest.approx(result["dice"])
    with open(paths[1], newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and rows[0]["key"] == "c0" and float(rows[2]["dice"]) == pytest.approx(0.9)
    assert not list((tmp_path / "eval").glob(".*"))  # no temporary files left behind


def test_mixed_inputs_are_refused():
    binary = label(np.eye(6, dtype=np.uint8))
    prob = Image(np.full((1, 6, 6), 0.5), AFFINE)
    cases = [
        SegmentationCase("with", binary, binary, probability=prob),
        SegmentationCase("without", binary, binary),
    ]
    with pytest.raises(FormatError, match="case without: some cases have a probability map"):
        evaluate_segmentations(cases, class_names=["bg", "fg"])
    volume = label(np.zeros((6, 6, 3), np.uint8))
    flat_and_deep = [SegmentationCase("2d", binary, binary), SegmentationCase("3d", volume, volume)]
    with pytest.raises(FormatError, match="mix 2D and 3D"):
        evaluate_segmentations(flat_and_deep, class_names=["bg", "fg"])


@pytest.mark.realdata
def test_drive_second_observer_against_the_first(shared_data):
    """DRIVE's human ceiling inside the field of view (Staal et al. 2004: sensitivity .776)."""
    from medsight.io import read

    root = shared_data / "drive" / "test"

    def mask(path) -> Image:
        image = read(path)
        return Image((image.array[:1] > 127).astype(np.uint8), image.affine, kind="label")

    cases = [
        SegmentationCase(
            f"{i:02d}",
            mask(root / "2nd_manual" / f"{i:02d}_manual2.gif"),
            mask(root / "1st_manual" / f"{i:02d}_manual1.gif"),
            fov=mask(root / "mask" / f"{i:02d}_test_mask.gif"),
        )
        for i in range(1, 21)
    ]
    result = evaluate_segmentations(cases, class_names=["background", "vessel"], n_boot=100)
    found = sum(row["n_overlap"] for row in result["cases"]) / sum(row["n_ref"] for row in result["cases"])
    assert found == pytest.approx(0.776, abs=0.005)
    assert 0.78 < result["f1_pooled"] < 0.80 and 0.78 < result["dice"] < 0.80
    assert result["ci"]["f1_pooled"][0] < result["f1_pooled"] < result["ci"]["f1_pooled"][1]
