"""The loop's time budget, on a fake clock: set-up time counts, and time is kept for the work after."""

import json

import pytest
import torch

from medsight.train import loop

TRAIN_S, VALIDATE_S = 10.0, 5.0  # fake seconds per epoch of training and per validation pass


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


class SlowBatches(loop.TensorBatches):
    def __init__(self, clock):
        super().__init__(torch.randn(8, 1, 4, 4), torch.zeros(8, dtype=torch.long), 8)
        self.clock = clock

    def epoch(self, generator):
        yield from super().epoch(generator)
        self.clock.now += TRAIN_S


def epochs_run(tmp_path, monkeypatch, *, spent_s=0.0, final_validations=0, epochs=3) -> int:
    clock = Clock()
    monkeypatch.setattr(loop.time, "perf_counter", clock)

    def validate(model, resize):
        clock.now += VALIDATE_S
        return {"val_auc": 0.5}

    plan = {
        "epochs": epochs,
        "seed": 0,
        "device": "cpu",
        "time_budget_min": 1.0,  # 60 fake seconds
        "optimizer": {"lr": 1e-3, "weight_decay": 0.0},
        "schedule": {"warmup_fraction": 0.1},
        "selection": {"metric": "val_auc"},
        "final_validations": final_validations,
        "planning": {"epochs_estimated": epochs},
    }
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
    loop.fit(
        model,
        batches=SlowBatches(clock),
        loss_fn=torch.nn.CrossEntropyLoss(),
        validate=validate,
        plan=plan,
        out_dir=tmp_path,
        progress=False,
        spent_s=spent_s,
    )
    return len((tmp_path / loop.HISTORY).read_text().splitlines())


@pytest.mark.parametrize(
    ("spent_s", "final_validations", "expected"),
    [
        (0.0, 0, 4),  # 15 s epochs: re-fitted up from 3 to 60 // 15
        (15.0, 0, 3),  # set-up took an epoch's worth of the budget
        (0.0, 3, 3),  # 3 validation passes after training (15 s) are kept free
    ],
)
def test_epochs_fit_the_budget_net_of_set_up_and_final_work(
    tmp_path, monkeypatch, spent_s, final_validations, expected
):
    assert epochs_run(tmp_path, monkeypatch, spent_s=spent_s, final_validations=final_validations) == expected
    state = json.loads((tmp_path / loop.STATE).read_text())["state"]
    assert state["epoch"] == expected


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_training_runs_at_the_plans_precision_and_keeps_float32_weights(tmp_path, precision):
    seen = []

    def loss_fn(logits, targets):
        seen.append(logits.dtype)
        return torch.nn.functional.cross_entropy(logits.float(), targets)

    plan = {
        "epochs": 2,
        "seed": 0,
        "device": "cpu",
        "precision": precision,
        "optimizer": {"lr": 1e-2, "weight_decay": 0.0},
        "schedule": {"warmup_fraction": 0.1},
        "selection": {"metric": "val_acc"},
    }
    x = torch.randn(64, 16)
    y = (x[:, 0] > 0).long()  # learnable: the sign of the first feature
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))

    def validate(model, resize):
        return {"val_acc": float((model(x).argmax(1) == y).float().mean())}

    batches = loop.TensorBatches(x, y, 16, steps_per_epoch=40)
    result = loop.fit(
        model,
        batches=batches,
        loss_fn=loss_fn,
        validate=validate,
        plan=plan,
        out_dir=tmp_path,
        progress=False,
    )
    assert set(seen) == {getattr(torch, precision)}
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert result.best_metrics["val_acc"] > 0.9


def test_precision_resolves_per_device_and_refuses_what_the_device_cannot_do():
    from medsight.errors import FormatError
    from medsight.models.precision import resolve_precision

    assert resolve_precision("auto", "cuda") == "float32"  # inference on GPUs: not yet measured
    assert resolve_precision("auto", "cuda", training=True) == "float16"
    assert resolve_precision(None, "cuda") == "float16" and resolve_precision(None, "cpu") == "float32"
    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    assert resolve_precision("auto", "cpu") == ("bfloat16" if native else "float32")
    with pytest.raises(FormatError, match="CUDA"):
        resolve_precision("float16", "cpu")
    with pytest.raises(FormatError, match="half"):
        resolve_precision("half", "cpu")
