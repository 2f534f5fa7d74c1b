"""The one training loop: batches from an in-memory cache, augmentation, checkpoints, history.

Task specifics come in as arguments (the loss, how to validate), never as subclasses.
After every epoch the loop appends a line to ``history.jsonl``, keeps the weights that
score best on validation (``best.safetensors``) and writes a checkpoint; a run killed at
any moment resumes from its last finished epoch. It stops early when the next epoch
would overrun the time budget.

Progressive resizing (``plan["progressive"]``): the first epochs train on batches scaled
down to a smaller input size, which costs a fraction of a full-size epoch and gets the
network to a good solution sooner; later epochs train at the full size. Validation runs at
the size the epoch trained at, and only full-size epochs can become the kept model.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from medsight.io._atomic import atomic_path
from medsight.models.precision import autocast, resolve_precision
from medsight.train.checkpoint import STATE, load_checkpoint, save_checkpoint

__all__ = ["FitResult", "TensorBatches", "augmenter", "fit", "load_best", "seeded_model", "use_device"]

HISTORY = "history.jsonl"
BEST = "best.safetensors"


@dataclass
class FitResult:
    best_epoch: int
    best_metrics: dict
    epochs_run: int
    elapsed_s: float
    stopped_by_budget: bool

    def record(self, plan: dict, *, setup_s: float) -> dict:
        """The model card's ``training`` section."""
        import platform

        return {
            "best_epoch": self.best_epoch,
            "epochs_run": self.epochs_run,
            "elapsed_s": round(self.elapsed_s, 1),
            "setup_s": round(setup_s, 2),  # reading, planning, caching: before epoch 1
            "stopped_by_time_budget": self.stopped_by_budget,
            "device": plan["device"],
            "seed": plan["seed"],
            "python": platform.python_version(),
        }


def use_device(device: str) -> None:
    """Check that `device` exists; on a CPU use every core (torch may count physical ones only)."""
    import torch

    from medsight.errors import FormatError

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise FormatError(
            "--device cuda asked for, but torch sees no CUDA device",
            hint="Use --device cpu, or install a CUDA build of torch (TORCH_SPEC)",
        )
    if device == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)


class TensorBatches:
    """Shuffled batches of cached tensors ``inputs (N, C, *spatial)`` and `targets`.

    The last partial batch is dropped: a batch of one breaks BatchNorm. `steps_per_epoch`
    (optional) sets an epoch's length independently of the data's: fresh shuffles follow each
    other, so a small dataset still gives epochs long enough to validate sparingly.
    """

    def __init__(self, inputs, targets, batch_size: int, steps_per_epoch: int | None = None):
        self.inputs, self.targets, self.batch_size = inputs, targets, int(batch_size)
        self.steps_per_epoch = int(steps_per_epoch or max(1, len(inputs) // self.batch_size))
        self.input_size = tuple(inputs.shape[2:])

    def epoch(self, generator):
        import torch

        per_pass = max(1, len(self.inputs) // self.batch_size)
        order = torch.randperm(len(self.inputs), generator=generator)
        for step in range(self.steps_per_epoch):
            if step and step % per_pass == 0:
                order = torch.randperm(len(self.inputs), generator=generator)
            at = step % per_pass
            index = order[at * self.batch_size : (at + 1) * self.batch_size]
            yield self.inputs[index], self.targets[index]


def fit(
    model,
    *,
    batches,
    loss_fn: Callable,
    validate: Callable[[object, Callable | None], dict],
    plan: dict,
    out_dir: Path,
    prepare_batch: Callable | None = None,
    augment: Callable | None = None,
    resume: bool = False,
    progress: bool = True,
    spent_s: float = 0.0,
) -> FitResult:
    """Train `model` on the batches `batches` deals out, epoch after epoch.

    Parameters
    ----------
    batches
        ``batches.steps_per_epoch``, ``batches.input_size`` (spatial) and
        ``batches.epoch(generator)``, an iterator of ``(inputs, targets)`` CPU tensors
        (`TensorBatches`, or a patch sampler).
    loss_fn : callable
        ``loss_fn(logits, targets) -> scalar tensor``.
    validate : callable
        ``validate(model, resize) -> {"val_auc": ..., ...}``; the plan's ``selection.metric`` is
        maximised. `resize` is None, or during progressive resizing a function that scales a
        batch of inputs to the epoch's size.
    plan : dict
        Uses ``epochs``, ``optimizer``, ``schedule``, ``seed``, ``device``, ``time_budget_min``,
        ``selection`` and optionally ``precision`` (`models.precision.resolve_precision`),
        ``progressive``
        (``{"size": [...], "fraction": f}``: the first ``f * epochs`` epochs at that size) and
        ``final_validations`` (the work after training, in validation passes: time kept free).
    prepare_batch : callable, optional
        Applied to each batch of inputs on the device before augmentation (normalisation).
    augment : callable, optional
        ``augment(inputs, targets, generator) -> (inputs, targets)`` on the device.
    spent_s : float
        Seconds of the time budget already spent before training (reading, planning).
    """
    import torch

    from medsight.models.weights import save_weights

    device = torch.device(plan.get("device", "cpu"))
    model.to(device)
    epochs = int(plan["epochs"])
    steps_per_epoch = batches.steps_per_epoch
    opt_spec = plan["optimizer"]
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=opt_spec["lr"], weight_decay=opt_spec["weight_decay"]
    )

    def schedule(total_epochs: int):
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=opt_spec["lr"],
            total_steps=total_epochs * steps_per_epoch,
            pct_start=plan["schedule"].get("warmup_fraction", 0.1),
        )

    if resume and (out_dir / STATE).is_file():  # a resumed run keeps the epoch count it settled on
        epochs = int(json.loads((out_dir / STATE).read_text())["state"].get("epochs", epochs))
    scheduler = schedule(epochs)
    # The plan's precision: float16 needs loss scaling (its range is narrow); bfloat16 has
    # float32's range and trains without it.
    precision = resolve_precision(plan.get("precision"), device, training=True)
    scaler = torch.amp.GradScaler("cuda", enabled=precision == "float16")
    generator = torch.Generator().manual_seed(int(plan.get("seed", 0)))
    torch.manual_seed(int(plan.get("seed", 0)))
    metric = plan["selection"]["metric"]
    budget_s = float(plan.get("time_budget_min") or 1e9) * 60 - spent_s
    progressive = plan.get("progressive") or {}
    small_epochs = 0
    full_size = list(batches.input_size)
    if progressive and math.prod(progressive["size"]) < math.prod(full_size):
        # From the plan's epoch count, not a re-fitted one, so a resumed run agrees; the last
        # epoch is always full size.
        small_epochs = min(round(progressive["fraction"] * int(plan["epochs"])), int(plan["epochs"]) - 1)
    # The epoch whose measured time re-fits the epoch count: the second full-size one
    # (the first pays for warm-up), or the first full-size one after a small-size phase.
    refit_epoch = small_epochs + 1 if small_epochs else 2
    out_dir.mkdir(parents=True, exist_ok=True)

    state = {
        "epoch": 0,
        "epochs": epochs,
        "elapsed_s": 0.0,
        "best": None,
        "best_epoch": 0,
        "best_metrics": {},
    }
    if resume and (out_dir / STATE).is_file():
        state = load_checkpoint(
            out_dir, model=model, optimizer=optimizer, scheduler=scheduler, generator=generator
        )
    _trim_history(out_dir / HISTORY, state["epoch"])

    bar = _progress(progress, epochs, state["epoch"])
    start = time.perf_counter() - state["elapsed_s"]
    last_epoch_s, reserve_s, stopped = 0.0, 0.0, False
    try:
        epoch = state["epoch"]
        while epoch < epochs:
            epoch += 1
            elapsed = time.perf_counter() - start
            resize = _resizer(progressive["size"]) if epoch <= small_epochs else None
            if epoch > max(1, small_epochs + 1) and elapsed + last_epoch_s + reserve_s > budget_s:
                stopped = True
                break
            epoch_start = time.perf_counter()
            model.train()
            total = 0.0
            for step, (x, y) in enumerate(batches.epoch(generator)):
                x = x.to(device, non_blocking=True)
                y = y.to(device, non_blocking=True)
                if prepare_batch is not None:
                    x = prepare_batch(x)
                if resize is not None:
                    x = resize(x)
                if augment is not None:
                    x, y = augment(x, y, generator)
                with autocast(device, precision):
                    loss = loss_fn(model(x), y)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                total += float(loss.detach())
                if bar:
                    bar.update(step=step + 1, steps=steps_per_epoch, loss=total / (step + 1))
            model.eval()
            validate_start = time.perf_counter()
            with torch.no_grad():
                metrics = validate(model, resize)
            # Time kept free for what follows training (calibration, post-processing choice).
            reserve_s = float(plan.get("final_validations", 0)) * (time.perf_counter() - validate_start)
            last_epoch_s = time.perf_counter() - epoch_start
            elapsed = time.perf_counter() - start
            line = {
                "epoch": epoch,
                "elapsed_s": round(elapsed, 2),
                "train_loss": round(total / steps_per_epoch, 6),
                "input_size": list(progressive["size"] if resize else full_size),
                **{k: round(float(v), 6) for k, v in metrics.items()},
            }
            _append(out_dir / HISTORY, line)
            score = metrics.get(metric)
            selectable = resize is None and score is not None
            if selectable and (state["best"] is None or score > state["best"]):
                state.update(best=float(score), best_epoch=epoch, best_metrics=line)
                with atomic_path(out_dir / BEST) as tmp:
                    save_weights(model.state_dict(), tmp)
            fitted = epochs
            if epoch == min(refit_epoch, epochs) and plan.get("time_budget_min"):
                # The measured time of a full-size epoch (the first pays for warm-up) re-fits the
                # count to the budget, with a schedule that still anneals within it: fewer epochs
                # when they overrun; more (up to 3x) when the count is the plan's own estimate,
                # not one the user set.
                estimated = int(plan["epochs"]) == plan.get("planning", {}).get("epochs_estimated")
                cap = epochs * 3 if estimated else epochs
                fitted = min(cap, epoch + max(0, int((budget_s - reserve_s - elapsed) / last_epoch_s)))
            if fitted != epochs:
                epochs = fitted
                with warnings.catch_warnings():  # stepping a fresh scheduler to where we are
                    warnings.simplefilter("ignore", UserWarning)
                    scheduler = schedule(epochs)
                    for _ in range(epoch * steps_per_epoch):
                        scheduler.step()
                if bar:
                    bar.retotal(epochs)
            state.update(epoch=epoch, epochs=epochs, elapsed_s=elapsed)
            save_checkpoint(
                out_dir,
                model=model,
                optimizer=optimizer,
                scheduler=scheduler,
                generator=generator,
                state=state,
            )
            if bar:
                bar.epoch_done(epoch, line, metric)
    finally:
        if bar:
            bar.close()
    return FitResult(state["best_epoch"], state["best_metrics"], state["epoch"], state["elapsed_s"], stopped)


def seeded_model(plan: dict):
    """The plan's network, initialised from the plan's seed: planning times candidate networks,
    which leaves the global random state depending on how many the machine's speed let it try."""
    import torch

    from medsight.models import build_model

    torch.manual_seed(int(plan.get("seed", 0)))
    return build_model(plan["network"])


def load_best(model, out_dir: Path, device) -> None:
    """Put the weights of the best validation epoch into `model`, on `device`, in eval mode."""
    from safetensors.torch import load_file

    from medsight.models.weights import load_weights

    load_weights(model, load_file(str(out_dir / BEST)), path=out_dir / BEST)
    model.to(device).eval()


def augmenter(pipeline, *, masks: bool) -> Callable:
    """`fit`'s ``augment`` from an augmentation pipeline: images alone, or images with label maps."""
    from medsight.data.augment import Batch

    def augment(x, y, generator):
        if not masks:
            return pipeline(Batch(x), generator=generator)[0].image, y
        out = pipeline(Batch(x, mask=y), generator=generator)[0]
        return out.image, out.mask

    return augment


def _resizer(size: list[int]) -> Callable:
    """Scale a batch ``(B, C, *spatial)`` to `size` (anti-aliased in 2D, where torch offers it)."""
    import torch.nn.functional as F

    size = [int(v) for v in size]
    mode = "bilinear" if len(size) == 2 else "trilinear"
    return lambda x: F.interpolate(x, size=size, mode=mode, align_corners=False, antialias=len(size) == 2)


def _append(path: Path, line: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _trim_history(path: Path, last_epoch: int) -> None:
    """Keep the lines of finished (checkpointed) epochs only: a resumed run writes the rest."""
    if not path.is_file():
        return
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    kept = [ln for ln in lines if json.loads(ln).get("epoch", 0) <= last_epoch]
    if kept != lines:
        with atomic_path(path) as tmp:
            tmp.write_text("".join(k + "\n" for k in kept), encoding="utf-8")


class _Progress:
    """A rich progress bar: epoch, loss, validation metric, time left."""

    def __init__(self, epochs: int, done: int):
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}/{task.total}"),
            BarColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            transient=False,
        )
        self.task = self.progress.add_task("train", total=epochs, completed=done, epoch=done + 1, info="")
        self.progress.start()
        self.last = ""

    def update(self, *, step: int, steps: int, loss: float) -> None:
        self.progress.update(self.task, info=f"step {step}/{steps} loss {loss:.4f} {self.last}")

    def epoch_done(self, epoch: int, line: dict, metric: str) -> None:
        value = line.get(metric)
        self.last = f"{metric} {value:.4f}" if value is not None else ""
        total = self.progress.tasks[0].total
        self.progress.update(self.task, completed=epoch, epoch=min(epoch + 1, int(total)), info=self.last)

    def retotal(self, epochs: int) -> None:
        self.progress.update(self.task, total=epochs)

    def close(self) -> None:
        self.progress.stop()


def _progress(enabled: bool, epochs: int, done: int):
    return _Progress(epochs, done) if enabled else None
