"""ONNX export: torch and onnxruntime agree, the file's hash is recorded, predictors match."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from medsight.audit.provenance import sha256_file
from medsight.errors import FormatError, NotFoundError, UnsupportedError
from medsight.infer import Classifier
from medsight.infer.onnx import OnnxClassifier, export_onnx, load_predictor
from medsight.models import build_model, load_bundle, save_bundle
from tests.infer.test_evaluate import tiny_bundle


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A copy of the tiny trained bundle, exported once: (folder, manifest, export record)."""
    model, manifest = tiny_bundle(tmp_path_factory)
    folder = tmp_path_factory.mktemp("onnx") / "model"
    shutil.copytree(model, folder)
    return folder, manifest, export_onnx(folder)


def _test_images(manifest):
    from medsight.data import read_manifest

    m = read_manifest(manifest)
    return [m.load_image(s) for s in m if s.split == "test"]


def _random_bundle(folder, normalize: dict, *, ndim: int = 2, size: int = 16):
    """An untrained bundle (no training needed to compare two runtimes)."""
    import torch

    network = {
        "name": "resnet",
        "spatial_dims": ndim,
        "in_channels": 1,
        "num_classes": 3,
        "depth": 10,
        "width": 0.125,
        "small_input": True,
    }
    torch.manual_seed(0)
    plan = {
        "task": "classify",
        "classes": ["a", "b", "c"],
        "multilabel": False,
        "network": network,
        "preprocess": {"ndim": ndim, "channels": 1, "size": [size] * ndim, "normalize": normalize},
        "calibration": {"temperature": 1.7, "threshold": 0.5},
    }
    return save_bundle(
        folder, state_dict=build_model(network).state_dict(), plan=plan, card={}, labels=["a", "b", "c"]
    )


def test_export_records_hash_and_keeps_the_bundle_valid(exported):
    folder, _, record = exported
    assert (folder / "model.onnx").is_file()
    assert json.loads((folder / "onnx.json").read_text()) == record
    assert record["file"] == "model.onnx" and record["sha256"] == sha256_file(folder / "model.onnx")
    assert record["opset"] == 17 and record["input"]["shape"] == ["batch", 1, 32, 32]
    assert record["verified"]["max_abs_diff"] <= 1e-4
    hashes = json.loads((folder / "hashes.json").read_text())
    assert record["bundle_sha256"] == {name: hashes[name] for name in ("weights.safetensors", "plan.json")}
    load_bundle(folder)  # still verifies: the export touched no bundle file


def test_onnx_file_carries_classes_and_calibration(exported):
    import onnx

    folder, _, _ = exported
    proto = onnx.load(str(folder / "model.onnx"))
    meta = {p.key: p.value for p in proto.metadata_props}
    plan = json.loads((folder / "plan.json").read_text())
    assert json.loads(meta["classes"]) == ["square", "disc"]
    assert json.loads(meta["calibration"]) == plan["calibration"]
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


def test_torch_and_onnxruntime_agree_on_the_same_inputs(exported):
    folder, manifest, _ = exported
    torch_engine, onnx_engine = Classifier.load(folder), OnnxClassifier.load(folder)
    from medsight.tasks.classify.preprocess import prepare

    images = _test_images(manifest)
    real = np.stack([prepare(im, torch_engine.bundle.plan["preprocess"]) for im in images])
    noise = np.random.default_rng(3).uniform(0, 255, (5, 1, 32, 32)).astype(np.float32)
    for inputs in (real, noise, real[:1]):  # batch sizes 16, 5, 1: the batch axis is dynamic
        a, b = torch_engine.logits(inputs), onnx_engine.logits(inputs)
        assert a.shape == b.shape == (len(inputs), 2)
        assert np.max(np.abs(a - b)) <= 1e-4
    probs_torch, probs_onnx = torch_engine.predict_images(images), onnx_engine.predict_images(images)
    assert np.max(np.abs(probs_torch - probs_onnx)) <= 1e-5
    assert torch_engine.decide(probs_torch) == onnx_engine.decide(probs_onnx)
    truth = [("square", "disc")[int(im.metadata["path"].rsplit("/", 1)[-1][:2]) % 2] for im in images]
    assert np.mean(np.array(onnx_engine.decide(probs_onnx)) == np.array(truth)) >= 0.75


def test_load_predictor_chooses_the_engine(exported):
    folder, manifest, _ = exported
    assert type(load_predictor(folder)) is Classifier
    onnx_engine = load_predictor(folder, engine="onnx")
    assert isinstance(onnx_engine, OnnxClassifier)
    paths = [im.metadata["path"] for im in _test_images(manifest)]
    rows, expected = onnx_engine.predict_paths(paths), load_predictor(folder).predict_paths(paths)
    assert [r["prediction"] for r in rows] == [r["prediction"] for r in expected]
    assert [r["p_disc"] for r in rows] == pytest.approx([r["p_disc"] for r in expected], abs=1e-5)
    with pytest.raises(UnsupportedError, match="engine"):
        load_predictor(folder, engine="tensorrt")


def test_evaluate_with_the_onnx_engine_matches_torch(exported):
    from medsight.infer.evaluate import evaluate_classifier

    folder, manifest, _ = exported
    a = evaluate_classifier(folder, manifest, n_boot=30)
    b = evaluate_classifier(folder, manifest, n_boot=30, engine="onnx")
    assert b["engine"] == "onnx" and b["confusion_matrix"] == a["confusion_matrix"]
    assert b["auc"] == pytest.approx(a["auc"]) and b["ci"]["auc"] == pytest.approx(a["ci"]["auc"])


@pytest.mark.parametrize("ndim", [2, 3])
def test_ct_normalisation_is_inside_the_graph(tmp_path, ndim):
    folder = _random_bundle(
        tmp_path / "ct", {"kind": "ct", "clip": [-100.0, 300.0]}, ndim=ndim, size=16 if ndim == 2 else 8
    )
    record = export_onnx(folder)
    assert record["input"]["shape"][2:] == ([16] * 2 if ndim == 2 else [8] * 3)
    torch_engine, onnx_engine = Classifier.load(folder), OnnxClassifier.load(folder)
    shape = (4, 1, *record["input"]["shape"][2:])
    raw = np.random.default_rng(0).uniform(-1000, 1000, shape).astype(np.float32)  # beyond the clip
    assert np.max(np.abs(torch_engine.logits(raw) - onnx_engine.logits(raw))) <= 1e-4
    # Clipped inside the graph: values beyond the window give the same output as the window's edge.
    assert np.allclose(onnx_engine.logits(raw), onnx_engine.logits(np.clip(raw, -100, 300)), atol=1e-5)
    probs = onnx_engine.probabilities(onnx_engine.logits(raw))  # temperature 1.7 applies outside
    assert np.allclose(probs, torch_engine.probabilities(torch_engine.logits(raw)), atol=1e-5)


def test_changed_or_stale_exports_are_refused(tmp_path):
    folder = _random_bundle(tmp_path / "m", {"kind": "zscore", "mean": 0.0, "std": 1.0})
    with pytest.raises(NotFoundError, match="no ONNX export"):
        OnnxClassifier.load(folder)
    export_onnx(folder)
    data = bytearray((folder / "model.onnx").read_bytes())
    data[-1] ^= 1
    (folder / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(FormatError, match="does not match the hash"):
        OnnxClassifier.load(folder)
    export_onnx(folder)
    OnnxClassifier.load(folder)
    # Same weights, another normalisation: the graph has the old one baked in, so it is stale.
    _random_bundle(folder, {"kind": "zscore", "mean": 5.0, "std": 2.0})
    with pytest.raises(FormatError, match="other weights or another plan"):
        OnnxClassifier.load(folder)


def test_non_classifier_is_refused(tmp_path):
    folder = _random_bundle(tmp_path / "m", {"kind": "zscore", "mean": 0.0, "std": 1.0})
    bundle = load_bundle(folder)
    save_bundle(
        folder,
        state_dict=bundle.state_dict,
        plan={**bundle.plan, "task": "segment"},
        card={},
        labels=bundle.labels,
    )
    with pytest.raises(UnsupportedError, match="not a classifier"):
        export_onnx(folder)
    assert not (folder / "model.onnx").exists()


@pytest.mark.parametrize("opset", [13, 20])
def test_opsets_offered_export_and_others_are_refused(tmp_path, opset):
    folder = _random_bundle(tmp_path / "m", {"kind": "zscore", "mean": 0.0, "std": 1.0})
    assert export_onnx(folder, opset=opset)["opset"] == opset
    with pytest.raises(UnsupportedError, match="opset 99"):
        export_onnx(folder, tmp_path / "other.onnx", opset=99)
    assert not (tmp_path / "other.onnx").exists()


def test_cli_export_to_another_path(exported, tmp_path):
    from typer.testing import CliRunner

    import medsight.cli.export  # noqa: F401  registers the command (also imported by medsight.cli)
    from medsight.cli import app

    folder = tmp_path / "model"
    shutil.copytree(exported[0], folder)  # this test repoints and removes the export
    out = tmp_path / "deploy" / "tiny.onnx"
    out.parent.mkdir()
    run = CliRunner().invoke(app, ["export", "onnx", str(folder), "--out", str(out), "--json"])
    assert run.exit_code == 0, run.output
    record = json.loads(run.stdout)
    assert record["file"] == str(out.resolve()) and record["sha256"] == sha256_file(out)
    assert (out.parent / "tiny.onnx.provenance.json").is_file()
    inputs = np.random.default_rng(0).uniform(0, 255, (3, 1, 32, 32)).astype(np.float32)
    onnx_engine = OnnxClassifier.load(folder)  # now the file at --out, as onnx.json says
    assert np.max(np.abs(onnx_engine.logits(inputs) - Classifier.load(folder).logits(inputs))) <= 1e-4
    out.unlink()
    with pytest.raises(NotFoundError, match="missing"):
        OnnxClassifier.load(folder)
    run = CliRunner().invoke(app, ["export", "onnx", str(tmp_path / "nowhere")])
    assert run.exit_code != 0 and not (tmp_path / "nowhere").exists()
