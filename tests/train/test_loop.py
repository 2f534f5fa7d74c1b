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
