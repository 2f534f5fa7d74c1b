"""Evaluation of a classifier: metrics with patient-level bootstrap CIs, outputs, CLI, calibration.

A tiny network is trained once per session (`tiny_bundle`, shared with tests/models) on
bright discs against dark squares, so a working pipeline must score far above chance.
"""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image as PILImage

from medsight.data import Manifest, Sample, read_manifest, write_manifest
from medsight.errors import FormatError, UnsupportedError
from medsight.infer.evaluate import (
    METRICS,
    evaluate_classifier,
    evaluate_predictions,
    prediction_arrays,
    write_evaluation,
)

CLASSES = ["square", "disc"]
_CACHE: dict = {}


def tiny_dataset(folder) -> object:
    """56 PNGs 32 x 32, two per patient (one of each class): train 28, val 12, test 16."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:32, :32]
    samples = []
    for i in range(56):
        label = CLASSES[i % 2]
        array = rng.normal(40, 8, (32, 32))
        if label == "disc":
            cy, cx = rng.integers(12, 20, 2)
            array[(yy - cy) ** 2 + (xx - cx) ** 2 < 49] += 160
        else:
            y0, x0 = rng.integers(6, 14, 2)
            array[y0 : y0 + 12, x0 : x0 + 12] -= 30
        PILImage.fromarray(np.clip(array, 0, 255).astype(np.uint8)).save(folder / f"{i:02d}.png")
        split = "train" if i < 28 else "val" if i < 40 else "test"
        samples.append(Sample(image=f"{i:02d}.png", label=label, patient_id=f"p{i // 2:02d}", split=split))
    return write_manifest(Manifest(samples, root=folder, classes=CLASSES), folder / "manifest.json")


def tiny_bundle(tmp_path_factory) -> tuple:
    """(bundle folder, manifest path), trained once per test session (a few seconds)."""
    if "bundle" not in _CACHE:
        from medsight.train.classify import train_classifier

        root = tmp_path_factory.mktemp("tiny_classifier")
        (root / "data").mkdir()
        manifest = tiny_dataset(root / "data")
        # A generous budget lets the planner accept the first network it times (a tight one
        # times candidate after candidate); the overrides then fix a tiny network and 6 epochs.
        overrides = [
            "epochs=6",
            "network.width=0.125",
            "network.depth=10",
            "preprocess.size=[32,32]",
            "progressive=null",  # the same training whichever candidate the planner timed first
        ]
        train_classifier(manifest, root / "model", budget_min=5, progress=False, overrides=overrides)
        _CACHE["bundle"] = (root / "model", manifest)
    return _CACHE["bundle"]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return tiny_bundle(tmp_path_factory)


@pytest.fixture(scope="module")
def result(bundle):
    model, manifest = bundle
    return evaluate_classifier(model, manifest, split="test", n_boot=200, seed=0)


def _synthetic(n: int, seed: int = 0, separation: float = 1.5):
    """Binary predictions of an imperfect model (AUC about 0.98 at the default separation)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    score = 1 / (1 + np.exp(-(rng.normal(0, 1, n) + separation * (2 * y - 1))))
    return y, np.stack([1 - score, score], 1)


def _width(result: dict, name: str) -> float:
    low, high = result["ci"][name]
    return high - low


def test_easy_split_scores_far_above_chance(result):
    assert result["n"] == 16 and result["split"] == "test"
    assert result["auc"] >= 0.9
    assert result["accuracy"] >= 0.75 and result["balanced_accuracy"] >= 0.75  # chance: 0.5
    assert result["classes"] == CLASSES and result["positive_class"] == "disc"
    matrix = np.array(result["confusion_matrix"])
    assert matrix.shape == (2, 2) and matrix.sum() == 16 and np.trace(matrix) >= 12
    assert result["class_counts"] == {"square": 8, "disc": 8}
    assert 0 <= result["ece"] <= 1


def test_binary_decision_uses_the_calibrated_threshold(bundle, result):
    plan = json.loads((bundle[0] / "plan.json").read_text())
    assert result["decision"] == "threshold"
    assert result["threshold"] == pytest.approx(plan["calibration"]["threshold"])
    y, probs = prediction_arrays(result)
    decided = probs[:, 1] >= result["threshold"]
    assert int(np.sum(decided & (y == 1))) == result["confusion_matrix"][1][1]
    assert [row["prediction"] for row in result["predictions"]] == [CLASSES[d] for d in decided.astype(int)]


def test_predictions_match_the_classifier(bundle, result):
    from medsight.infer import Classifier

    rows = Classifier.load(bundle[0]).predict_paths([row["path"] for row in result["predictions"]])
    assert [r["prediction"] for r in rows] == [r["prediction"] for r in result["predictions"]]
    assert np.allclose([r["p_disc"] for r in rows], [r["p_disc"] for r in result["predictions"]], atol=1e-5)


def test_resamples_patients_when_every_sample_has_one(result):
    assert result["resampled"] == "patients" and result["n_patients"] == 8
    assert result["notes"] == []


def test_intervals_contain_the_estimate(result):
    y, probs = _synthetic(120)
    synthetic = evaluate_predictions(y, probs, classes=["a", "b"], n_boot=300)
    for res in (result, synthetic):
        assert set(res["ci"]) == set(METRICS)
        # ECE is biased upward on resamples (fewer distinct cases per bin), so its
        # percentile interval need not cover the estimate; the other metrics' do.
        for name in set(METRICS) - {"ece"}:
            low, high = res["ci"][name]
            assert low - 1e-9 <= res[name] <= high + 1e-9, name
    assert _width(synthetic, "accuracy") > 0


def test_intervals_narrow_with_more_data():
    small = evaluate_predictions(*_synthetic(100), classes=["a", "b"], n_boot=400)
    large = evaluate_predictions(*_synthetic(400), classes=["a", "b"], n_boot=400)
    for name in ("auc", "accuracy", "sensitivity"):
        assert _width(large, name) < 0.7 * _width(small, name), name  # about 1/2 expected


def test_images_of_one_patient_are_resampled_together():
    y, probs = _synthetic(80, seed=1, separation=0.6)  # AUC about 0.8: wide intervals
    y2, probs2 = np.repeat(y, 2), np.repeat(probs, 2, axis=0)  # every patient imaged twice
    patients = np.repeat([f"p{i}" for i in range(80)], 2)
    grouped = evaluate_predictions(y2, probs2, classes=["a", "b"], groups=patients, n_boot=600)
    loose = evaluate_predictions(y2, probs2, classes=["a", "b"], n_boot=600)
    assert grouped["resampled"] == "patients" and grouped["n_patients"] == 80
    assert loose["resampled"] == "images" and loose["n_patients"] is None
    # 80 independent patients, not 160 independent images: intervals about sqrt(2) wider.
    for name in ("auc", "accuracy"):
        assert _width(grouped, name) > 1.2 * _width(loose, name), name


def test_resamples_images_and_says_so_without_patient_ids(bundle, tmp_path):
    model, manifest_path = bundle
    manifest = read_manifest(manifest_path)
    manifest.samples = [replace(s, patient_id=None) if s.key == "50.png" else s for s in manifest]
    result = evaluate_classifier(model, manifest, n_boot=20)
    assert result["resampled"] == "images" and result["n_patients"] is None
    assert any("patient_id" in note for note in result["notes"])


def test_multiclass_and_multilabel_metrics():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 90)
    z = rng.normal(0, 1, (90, 3))
    z[np.arange(90), y] += 1.5
    probs = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    res = evaluate_predictions(y, probs, classes=["a", "b", "c"], n_boot=50)
    assert res["decision"] == "argmax" and res["threshold"] is None
    assert res["accuracy"] == pytest.approx(np.mean(probs.argmax(1) == y))
    assert np.trace(res["confusion_matrix"]) == np.sum(probs.argmax(1) == y)
    assert res["sensitivity"] == pytest.approx(np.mean([v["sensitivity"] for v in res["per_class"].values()]))
    targets = rng.integers(0, 2, (60, 2))
    scores = np.clip(targets * 0.8 + rng.uniform(0, 0.2, (60, 2)), 0, 1)  # separable labels
    res = evaluate_predictions(targets, scores, classes=["x", "y"], multilabel=True, n_boot=50)
    assert res["auc"] == pytest.approx(1.0) and res["accuracy"] == pytest.approx(1.0)
    assert np.array(res["confusion_matrix"]).shape == (2, 2, 2)


def test_undefined_auc_is_null_not_nan():
    y = np.zeros(10, int)
    probs = np.tile([0.8, 0.2], (10, 1))
    res = evaluate_predictions(y, probs, classes=["a", "b"], n_boot=20)
    assert res["auc"] is None and res["accuracy"] == 1.0
    json.loads(json.dumps(res, allow_nan=False))  # strict JSON: NaN would raise


def test_writes_metrics_predictions_and_plots(result, tmp_path):
    from medsight.report import evaluation_plots

    written = write_evaluation(result, tmp_path / "eval") + evaluation_plots(result, tmp_path / "eval")
    names = sorted(p.name for p in written)
    assert names == sorted(
        ["metrics.json", "predictions.csv", "roc.png", "pr.png", "reliability.png", "confusion.png"]
    )
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["auc"] == result["auc"] and "predictions" not in metrics
    with open(tmp_path / "eval" / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 16
    assert list(rows[0]) == ["path", "patient", "truth", "prediction", "p_square", "p_disc"]
    assert all(abs(float(r["p_square"]) + float(r["p_disc"]) - 1) < 1e-5 for r in rows)
    for path in written:
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            with PILImage.open(path) as im:
                im.verify()
                assert min(im.size) >= 200
    assert not [p for p in (tmp_path / "eval").iterdir() if p.name.startswith(".")]  # no temporary left


def test_cli_json_and_out_folder(bundle, tmp_path):
    from typer.testing import CliRunner

    import medsight.cli.evaluate  # noqa: F401  registers the command (also imported by medsight.cli)
    from medsight.cli import app

    model, manifest = bundle
    out = tmp_path / "eval"
    run = CliRunner().invoke(
        app, ["evaluate", str(model), str(manifest), "--json", "--n-boot", "50", "--out", str(out)]
    )
    assert run.exit_code == 0, run.output
    data = json.loads(run.stdout)
    assert isinstance(data["auc"], float) and isinstance(data["accuracy"], float)
    assert set(data["ci"]) == set(METRICS) and all(len(v) == 2 for v in data["ci"].values())
    assert data["n"] == 16 and data["split"] == "test" and data["resampled"] == "patients"
    assert data["classes"] == CLASSES and len(data["confusion_matrix"]) == 2 and "ece" in data
    for name in ("metrics.json", "predictions.csv", "roc.png", "pr.png", "reliability.png", "confusion.png"):
        assert (out / name).is_file(), name
    record = json.loads((out / "provenance.json").read_text())
    assert record["parameters"]["n_boot"] == 50
    listed = {p["path"].rsplit("/", 1)[-1] for p in record["outputs"][0]["files"]}
    assert {"metrics.json", "predictions.csv", "roc.png"} <= listed


def test_cli_error_is_one_line(bundle, capsys):
    import medsight.cli.evaluate  # noqa: F401
    from medsight.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", str(bundle[0]), str(bundle[1]), "--split", "holdout"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "holdout" in err and "test (16)" in err


def test_clear_errors_for_unusable_inputs(bundle, tmp_path):
    from medsight.models import load_bundle, save_bundle

    model, manifest_path = bundle
    manifest = read_manifest(manifest_path)
    with pytest.raises(FormatError, match="splits here are"):
        evaluate_classifier(model, manifest, split="validation")
    unsplit = replace(manifest, samples=[replace(s, split=None) for s in manifest])
    with pytest.raises(FormatError, match="not split"):
        evaluate_classifier(model, unsplit)
    relabelled = replace(
        manifest, samples=[replace(s, label="triangle") if s.key == "44.png" else s for s in manifest]
    )
    with pytest.raises(FormatError, match=r"triangle.*44\.png"):
        evaluate_classifier(model, relabelled)
    loaded = load_bundle(model)
    other = save_bundle(
        tmp_path / "segmenter",
        state_dict=loaded.state_dict,
        card=loaded.card,
        plan={**loaded.plan, "task": "segment"},
        labels=loaded.labels,
    )
    with pytest.raises(UnsupportedError, match="not a classifier"):
        evaluate_classifier(other, manifest)
    broken = tmp_path / "broken"
    shutil.copytree(model, broken)
    (broken / "data").mkdir()
    shutil.copy(manifest_path.parent / "44.png", broken / "data" / "44.png")
    (broken / "data" / "44.png").write_bytes(b"not a png")
    bad = replace(
        manifest,
        root=broken / "data",
        samples=[
            replace(s, image=str(manifest_path.parent / s.key)) if s.key != "44.png" else s for s in manifest
        ],
    )
    with pytest.raises(FormatError, match=r"1 image\(s\).*44\.png"):
        evaluate_classifier(model, bad)


def test_temperature_scaling_lowers_the_ece_of_an_overconfident_model():
    from medsight.tasks.classify.metrics import expected_calibration_error
    from medsight.train.calibrate import fit_temperature

    rng = np.random.default_rng(0)
    n, k = 4000, 3
    predicted = rng.integers(0, k, n)
    correct = rng.random(n) < 0.75  # right 75% of the time ...
    y = np.where(correct, predicted, (predicted + rng.integers(1, k, n)) % k)
    logits = rng.normal(0, 0.3, (n, k))
    logits[np.arange(n), predicted] += np.log(0.99 / 0.005)  # ... but 99% sure

    def softmax(z):
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    fit, held = slice(0, n // 2), slice(n // 2, n)
    temperature = fit_temperature(logits[fit], y[fit])
    before = expected_calibration_error(y[held], softmax(logits[held]))
    after = expected_calibration_error(y[held], softmax(logits[held] / temperature))
    assert temperature > 1.5
    assert before > 0.2 and after < before / 4
    assert np.array_equal(softmax(logits[held] / temperature).argmax(1), logits[held].argmax(1))
