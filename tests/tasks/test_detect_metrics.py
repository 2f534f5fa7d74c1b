"""Detection metrics: AP and FROC against hand-computed values, mAP against pycocotools, CIs."""

import numpy as np
import pytest

from medsight.errors import FormatError
from medsight.tasks.detect.metrics import DetectionSet, average_precision, detection_metrics, froc

# Three images (the last a true negative). Ranked detections: 0.95 FP (negative image),
# 0.9 TP (IoU 1), 0.8 FP, 0.7 TP at IoU 0.5 only (IoU exactly 0.5), 0.6 TP (IoU 1).
PREDICTIONS = [
    {"boxes": [[0, 0, 10, 10], [20, 20, 30, 30]], "scores": [0.9, 0.8], "labels": ["nodule"] * 2},
    {"boxes": [[0, 0, 10, 5], [50, 50, 60, 60]], "scores": [0.7, 0.6], "labels": ["nodule"] * 2},
    {"boxes": [[0, 0, 5, 5]], "scores": [0.95], "labels": ["nodule"]},
]
REFERENCES = [
    {"boxes": [[0, 0, 10, 10]], "labels": ["nodule"]},
    {"boxes": [[0, 0, 10, 10], [50, 50, 60, 60]], "labels": ["nodule"] * 2},
    {"boxes": [], "labels": []},
]


def test_ap_by_hand():
    result = detection_metrics(PREDICTIONS, REFERENCES, classes=["nodule"], n_boot=0)
    # IoU 0.5: recall 0, 1/3, 1/3, 2/3, 1 with precision 0, .5, 1/3, .5, .6 -> envelope 0.6 everywhere.
    assert result["ap50"] == pytest.approx(0.6)
    # IoU >= 0.55: the 0.7 detection is a miss. Envelope .5 up to recall 1/3 (34 points),
    # .4 up to 2/3 (33 points), 0 beyond (34 points).
    strict = (34 * 0.5 + 33 * 0.4) / 101
    assert result["map"] == pytest.approx((0.6 + 9 * strict) / 10)
    assert result["per_class"]["nodule"] == {
        "ap50": pytest.approx(0.6),
        "map": pytest.approx(result["map"]),
        "n_references": 3,
    }
    assert result["n_images"] == 3 and result["n_detections"] == 5


def test_froc_by_hand():
    # Centre hits: references found at 0.9, 0.7, 0.6; false positives 0.95 and 0.8 over 3 images.
    # Operating points (FP/image, sensitivity): (0,0) (1/3,0) (1/3,1/3) (2/3,1/3) (2/3,2/3) (2/3,1).
    result = detection_metrics(PREDICTIONS, REFERENCES, classes=["nodule"], n_boot=0)
    expected = {"0.125": 0.0, "0.25": 0.0, "0.5": 1 / 3, "1": 1.0, "2": 1.0, "4": 1.0, "8": 1.0}
    assert result["froc"] == pytest.approx(expected)
    assert result["froc_mean"] == pytest.approx((1 / 3 + 4) / 7)
    assert result["froc_hit"] == "centre"


def test_froc_of_a_stratum_of_the_references():
    # References in order: image 0's (hit at 0.9), image 1's (0.7, 0.6). The stratum of the
    # last two against both false positives (0.95, 0.8 over 3 images): points (1/3, 0)
    # (2/3, 0) (2/3, 1/2) (2/3, 1): nothing before 2/3 FP/image, all from there.
    scored = DetectionSet(PREDICTIONS, REFERENCES, classes=["nodule"])
    stratum = scored.stratum_froc([False, True, True])
    assert stratum["n_references"] == 2
    expected = {"0.125": 0.0, "0.25": 0.0, "0.5": 0.0, "1": 1.0, "2": 1.0, "4": 1.0, "8": 1.0}
    assert stratum["froc"] == pytest.approx(expected)
    assert stratum["froc_mean"] == pytest.approx(4 / 7)
    everything = scored.stratum_froc([True] * 3)
    assert everything["froc_mean"] == pytest.approx(scored.metrics()["froc_mean"])
    with pytest.raises(ValueError, match="2 flags for 3"):
        scored.stratum_froc([True, True])


def test_froc_interpolates_between_operating_points():
    # Two images, two references; a hit at 0.9, an FP at 0.8, a hit at 0.7:
    # points (0,0) (0,0.5) (0.5,0.5) (0.5,1): at 0.25 FP/image, linear between (0,.5) and (.5,.5).
    sens = froc([0.8], [0.9, 0.7], 2, fp_rates=[0.0, 0.25, 0.5, 1.0])
    np.testing.assert_allclose(sens, [0.5, 0.5, 1.0, 1.0])
    # A second FP at 0.75 moves the second hit to 1 FP/image: 0.5 FP/image is halfway up a ramp.
    sens = froc([0.8, 0.75], [0.9, 0.7], 2, fp_rates=[0.5, 0.75, 1.0])
    np.testing.assert_allclose(sens, [0.5, 0.5, 1.0])
    # Nothing found: sensitivity 0 at every rate; no reference: undefined.
    assert np.all(froc([0.9], [-np.inf], 1) == 0)
    assert np.isnan(froc([0.9], [], 1)).all()


def test_iou_hits_differ_from_centre_hits():
    pred = [{"boxes": [[0, 0, 4, 20]], "scores": [0.9], "labels": ["a"]}]
    ref = [{"boxes": [[0, 0, 20, 20]], "labels": ["a"]}]
    centre = detection_metrics(pred, ref, classes=["a"], n_boot=0)
    by_iou = detection_metrics(pred, ref, classes=["a"], n_boot=0, hit="iou", hit_iou=0.3)
    assert centre["froc_mean"] == 1.0  # centre (2, 10) lies in the reference
    assert by_iou["froc_mean"] == 0.0  # IoU 0.2 < 0.3
    assert by_iou["froc_hit"] == "iou>=0.3"


def test_classes_are_matched_separately_and_unknown_classes_refused():
    pred = [{"boxes": [[0, 0, 10, 10]], "scores": [0.9], "labels": ["b"]}]
    ref = [{"boxes": [[0, 0, 10, 10]], "labels": ["a"]}]
    result = detection_metrics(pred, ref, classes=["a", "b"], n_boot=0)
    assert result["per_class"]["a"]["ap50"] == 0.0  # references, no detection of the class
    assert result["per_class"]["b"]["ap50"] is None  # no reference: left out of the mean
    assert result["ap50"] == 0.0 and result["froc_mean"] == 0.0
    with pytest.raises(FormatError, match="not among"):
        detection_metrics(pred, ref, classes=["a"], n_boot=0)


def test_3d_boxes():
    pred = [
        {
            "boxes": [[0, 0, 0, 10, 10, 10], [30, 30, 30, 34, 34, 34]],
            "scores": [0.9, 0.5],
            "labels": ["n", "n"],
        }
    ]
    ref = [{"boxes": [[0, 0, 0, 10, 10, 8]], "labels": ["n"]}]
    result = detection_metrics(pred, ref, classes=["n"], n_boot=0)
    assert result["ap50"] == pytest.approx(1.0)  # IoU 0.8
    assert result["froc"]["1"] == 1.0


def test_average_precision_weights_equal_repeats():
    rng = np.random.default_rng(0)
    scores, matched = rng.random(30), rng.random(30) < 0.5
    twice = average_precision(np.r_[scores, scores], np.r_[matched, matched], 2 * matched.sum() + 4)
    weighted = average_precision(scores, matched, 2 * matched.sum() + 4, weights=np.full(30, 2.0))
    assert weighted == pytest.approx(twice, abs=0.02)  # ties placed together: within a step


def test_bootstrap_intervals_contain_the_estimate_and_resample_patients():
    rng = np.random.default_rng(1)
    preds, refs = [], []
    for _ in range(30):
        truth = rng.uniform(0, 80, (int(rng.integers(0, 3)), 2))
        ref_boxes = [[x, y, x + 12, y + 12] for x, y in truth]
        boxes = [[x + rng.normal(0, 2), y + rng.normal(0, 2), x + 12, y + 12] for x, y in truth]
        boxes += [[x, y, x + 10, y + 10] for x, y in rng.uniform(0, 80, (2, 2))]
        preds.append(
            {"boxes": boxes, "scores": rng.random(len(boxes)).tolist(), "labels": ["n"] * len(boxes)}
        )
        refs.append({"boxes": ref_boxes, "labels": ["n"] * len(ref_boxes)})
    result = detection_metrics(
        preds, refs, classes=["n"], n_boot=200, seed=0, groups=[i // 2 for i in range(30)]
    )
    for key in ("ap50", "map", "froc_mean"):
        low, high = result["ci"][key]
        assert low <= result[key] <= high and low < high
    assert set(result["ci"]["froc"]) == set(result["froc"])


def test_empty_and_mismatched_inputs():
    with pytest.raises(ValueError, match="predictions for"):
        DetectionSet([], [{"boxes": [], "labels": []}], classes=["a"])
    result = detection_metrics(
        [{"boxes": [], "scores": [], "labels": []}], [{"boxes": [], "labels": []}], classes=["a"], n_boot=10
    )
    assert result["ap50"] is None and result["froc_mean"] is None


def _coco_reference(preds, refs, classes):
    """AP and AP50 from pycocotools on the same boxes (x, y, w, h)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = {
        "images": [],
        "annotations": [],
        "categories": [{"id": i + 1, "name": c} for i, c in enumerate(classes)],
    }
    dets = []
    for image, (p, r) in enumerate(zip(preds, refs), start=1):
        gt["images"].append({"id": image, "width": 200, "height": 200})
        for box, label in zip(r["boxes"], r["labels"]):
            w, h = box[2] - box[0], box[3] - box[1]
            gt["annotations"].append(
                {
                    "id": len(gt["annotations"]) + 1,
                    "image_id": image,
                    "category_id": classes.index(label) + 1,
                    "bbox": [box[0], box[1], w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
        for box, score, label in zip(p["boxes"], p["scores"], p["labels"]):
            dets.append(
                {
                    "image_id": image,
                    "category_id": classes.index(label) + 1,
                    "score": score,
                    "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]],
                }
            )
    coco = COCO()
    coco.dataset = gt
    coco.createIndex()
    evaluator = COCOeval(coco, coco.loadRes(dets), "bbox")
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    return evaluator.stats[0], evaluator.stats[1]


def test_map_matches_pycocotools(capsys):
    pytest.importorskip("pycocotools")
    rng = np.random.default_rng(3)
    classes = ["polyp", "nodule"]
    preds, refs = [], []
    for _ in range(25):
        n = int(rng.integers(0, 4))
        xy = rng.uniform(0, 150, (n, 2))
        wh = rng.uniform(8, 40, (n, 2))
        labels = [classes[int(k)] for k in rng.integers(0, 2, n)]
        ref_boxes = [[x, y, x + w, y + h] for (x, y), (w, h) in zip(xy, wh)]
        boxes, scores, p_labels = [], [], []
        for box, label in zip(ref_boxes, labels):
            if rng.random() < 0.8:  # found, with jitter
                jitter = rng.normal(0, 0.12, 4) * (box[2] - box[0])
                boxes.append([box[0] + jitter[0], box[1] + jitter[1], box[2] + jitter[2], box[3] + jitter[3]])
                scores.append(float(rng.uniform(0.3, 1)))
                p_labels.append(label)
        for _ in range(int(rng.integers(0, 4))):  # false positives
            x, y = rng.uniform(0, 150, 2)
            boxes.append([x, y, x + 20, y + 20])
            scores.append(float(rng.uniform(0, 0.8)))
            p_labels.append(classes[int(rng.integers(0, 2))])
        preds.append({"boxes": boxes, "scores": scores, "labels": p_labels})
        refs.append({"boxes": ref_boxes, "labels": labels})
    ap, ap50 = _coco_reference(preds, refs, classes)
    capsys.readouterr()
    ours = detection_metrics(preds, refs, classes=classes, n_boot=0)
    assert ours["map"] == pytest.approx(ap, abs=1e-9)
    assert ours["ap50"] == pytest.approx(ap50, abs=1e-9)
