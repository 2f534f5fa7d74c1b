"""Cohorts of synthetic patients: every kind of phantom by name, deterministic by seed."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from medsight.data.synthetic import brain, chest, ct, ultrasound
from medsight.data.synthetic.case import Case
from medsight.data.synthetic.patients import make_patient

__all__ = ["KINDS", "Kind", "chosen_classes", "cohort", "get_kind"]


@dataclass(frozen=True)
class Kind:
    """A kind of phantom: how to make one case and what a cohort of it holds.

    Attributes
    ----------
    make : callable
        The single-case function (`chest_xray`, `brain_mri`, ...).
    modality : str
        DICOM modality of its images.
    ndim : int
        2 or 3 spatial dimensions.
    classes : tuple of str
        Image classes; empty for kinds whose targets are label maps only.
    timepoints : int
        Default number of visits per patient.
    ages : (int, int)
        Age range at the first visit, in years.
    prefix : str
        Start of its patient ids.
    label_names : dict of int to str
        Values of its label maps.
    sex : str or None
        Fixed sex of every patient (breast ultrasound: "F"), or None for both.
    max_days : float or None
        How long after the first visit the phantom can still be made (its changes are
        laid out with that much room), or None for no limit.
    has_boxes : bool
        Whether its cases carry boxes (possibly none: a normal image has an empty list).
    """

    make: Callable[..., Case]
    modality: str
    ndim: int
    classes: tuple[str, ...]
    timepoints: int
    ages: tuple[int, int]
    prefix: str
    label_names: dict[int, str]
    sex: str | None = None
    max_days: float | None = None
    has_boxes: bool = True

    @property
    def options(self) -> list[str]:
        """Keyword options the single-case function takes beyond those `cohort` sets."""
        taken = {"seed", "timepoint", "patient", "site_effect", "label"}
        return [p for p in inspect.signature(self.make).parameters if p not in taken]


KINDS: dict[str, Kind] = {
    "chest-xray": Kind(
        make=chest.chest_xray,
        modality="DX",
        ndim=2,
        classes=chest.CLASSES,
        timepoints=1,
        ages=(18, 90),
        prefix="CXR",
        label_names=chest.LABEL_NAMES,
    ),
    "brain-mri": Kind(
        make=brain.brain_mri,
        modality="MR",
        ndim=3,
        classes=(),
        timepoints=3,
        ages=(50, 90),
        prefix="MRI",
        label_names=brain.LABEL_NAMES,
        max_days=brain.MAX_DAYS,
        has_boxes=False,
    ),
    "body-ct": Kind(
        make=ct.body_ct,
        modality="CT",
        ndim=3,
        classes=(),
        timepoints=2,
        ages=(30, 85),
        prefix="CT",
        label_names=ct.LABEL_NAMES,
        max_days=ct.MAX_DAYS,
    ),
    "ultrasound": Kind(
        make=ultrasound.ultrasound,
        modality="US",
        ndim=2,
        classes=ultrasound.CLASSES,
        timepoints=1,
        ages=(25, 85),
        prefix="US",
        label_names=ultrasound.LABEL_NAMES,
        sex="F",
    ),
}


def get_kind(name: str) -> Kind:
    """The `Kind` called `name` (``"chest_xray"`` is accepted for ``"chest-xray"``)."""
    key = str(name).strip().lower().replace("_", "-")
    if key not in KINDS:
        close = [k for k in KINDS if key and key in k] or difflib.get_close_matches(key, KINDS, n=1)
        maybe = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown phantom kind {name!r}{maybe} (kinds: {', '.join(KINDS)})")
    return KINDS[key]


def cohort(
    kind: str,
    n: int = 20,
    *,
    seed: int = 0,
    timepoints: int | None = None,
    classes: list[str] | tuple[str, ...] | None = None,
    site_effect: float = 1.0,
    **options,
) -> Iterator[Case]:
    """Yield the cases of `n` synthetic patients, visit by visit, deterministic by `seed`.

    Parameters
    ----------
    kind : {"chest-xray", "brain-mri", "body-ct", "ultrasound"}
    n : int
        Number of patients.
    seed : int
        The same seed gives the same patients, images and ground truth.
    timepoints : int, optional
        Visits per patient (the kind's default when omitted: 1 for radiographs and
        ultrasound, 3 for brain MRI, 2 for CT). Every visit of a patient keeps its class.
    classes : sequence of str, optional
        For kinds with classes: which ones, balanced over patients (all by default).
    site_effect : float
        Strength of the sites' appearance differences; 0 turns them off.
    **options
        Passed to the single-case function (e.g. ``shape``, ``spacing``); see `Kind.options`.

    Yields
    ------
    Case
        ``n * timepoints`` cases, patient by patient, in time order. Patient ids are the
        kind's prefix and a number (``CXR-0001``); each patient has their own seed.
    """
    spec = get_kind(kind)
    n, timepoints = (
        _count(n, "n"),
        _count(spec.timepoints if timepoints is None else timepoints, "timepoints"),
    )
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        accepted = ", ".join(spec.options) or "none"
        raise ValueError(f"{kind} phantoms take no option {', '.join(unknown)}; options: {accepted}")
    labels = chosen_classes(kind, classes)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a whole number >= 0, not {seed!r}")
    if not isinstance(site_effect, (int, float)) or not np.isfinite(site_effect) or site_effect < 0:
        raise ValueError(f"site_effect must be a number >= 0 (0: no site differences), not {site_effect!r}")
    if spec.max_days is not None:
        interval = options.get(
            "interval_days", inspect.signature(spec.make).parameters["interval_days"].default
        )
        if (timepoints - 1) * interval * 1.1 > spec.max_days:  # visits may come 10 % late
            raise ValueError(
                f"{timepoints} visits {interval:g} days apart reach beyond the {spec.max_days:g} days "
                f"{kind} phantoms model; use fewer time points or a shorter interval_days"
            )
    # Checked above, generated below: a bad argument fails at the call, not at the first case.
    return _cases(spec, n, int(seed), timepoints, labels, site_effect, options)


def _cases(spec: Kind, n, seed, timepoints, labels, site_effect, options) -> Iterator[Case]:
    rng = np.random.default_rng([seed, 11])
    # Balanced classes in a random order.
    assigned = [labels[i % len(labels)] for i in rng.permutation(n)] if labels else [None] * n
    for number in range(n):
        patient_seed = int(np.random.SeedSequence([seed, number]).generate_state(1)[0])
        patient = make_patient(
            patient_seed, patient_id=f"{spec.prefix}-{number + 1:04d}", ages=spec.ages, sex=spec.sex
        )
        for timepoint in range(timepoints):
            extra = {"label": assigned[number]} if labels else {}
            yield spec.make(
                seed=patient_seed,
                timepoint=timepoint,
                patient=patient,
                site_effect=site_effect,
                **extra,
                **options,
            )


def _count(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a whole number >= 1, not {value!r}")
    return int(value)


def chosen_classes(kind: str, classes=None) -> list[str]:
    """The classes a cohort of `kind` draws from: `classes` (a list or "a,b") checked, or all."""
    spec = get_kind(kind)
    if classes is None:
        return list(spec.classes)
    if isinstance(classes, str):
        classes = [c.strip() for c in classes.split(",") if c.strip()]
    if not spec.classes:
        raise ValueError(f"{kind} phantoms have no classes (their targets are label maps)")
    wrong = [c for c in classes if c not in spec.classes]
    if wrong or not classes:
        raise ValueError(f"classes must be among {', '.join(spec.classes)}, not {', '.join(wrong) or 'none'}")
    return [c for c in spec.classes if c in classes]
