"""Seeded train/val/test splits: grouped by patient, stratified by class, existing splits kept."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import replace

import numpy as np

from medsight.data.manifest import SPLITS, Manifest, Sample
from medsight.errors import FormatError

__all__ = ["ensure_validation", "split_dataset"]


def split_dataset(
    manifest: Manifest,
    *,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    stratify: bool = True,
) -> tuple[Manifest, list[str]]:
    """Give every sample without a split one of train/val/test.

    All images of a patient go to the same split (samples without ``patient_id`` are
    their own group, and the notes say so). Groups are stratified by their most common
    class, so each split keeps the class balance. Samples that already have a split
    keep it; their patients' other samples join them.

    Returns
    -------
    (Manifest, list of str)
        The split manifest (a copy) and notes for the user.
    """
    if len(fractions) != 3 or min(fractions) < 0 or not np.isclose(sum(fractions), 1.0):
        raise FormatError(f"split fractions must be three non-negative numbers summing to 1, got {fractions}")
    notes = []
    samples = [replace(s) for s in manifest.samples]
    unknown = sorted({s.split for s in samples if s.split is not None and s.split not in SPLITS})
    if unknown:
        raise FormatError(f"unknown split name(s) {unknown}", hint=f"Use {', '.join(SPLITS)}")
    if all(s.split for s in samples):
        return replace(manifest, samples=samples), ["every sample already has a split; kept as it is"]

    missing_ids = sum(s.patient_id is None for s in samples)
    if missing_ids:
        notes.append(
            f"{missing_ids} of {len(samples)} samples have no patient_id: they are split image by image, "
            "so images of one patient may land in different splits"
        )
    groups: dict[str, list[Sample]] = defaultdict(list)
    for n, s in enumerate(samples):
        groups[s.patient_id if s.patient_id is not None else f"\0sample{n}"].append(s)

    rng = np.random.default_rng(seed)
    totals = Counter()  # samples per split so far, including kept ones
    todo = []
    for key, members in groups.items():
        kept = {s.split for s in members if s.split}
        if len(kept) > 1:
            notes.append(f"patient {key} already spans splits {sorted(kept)}: left as it is")
            totals.update(s.split for s in members if s.split)
            continue
        if kept:
            split = kept.pop()
            for s in members:
                s.split = split
            totals[split] += len(members)
        else:
            todo.append((key, members))

    strata: dict[str, list] = defaultdict(list)
    for _, members in todo:
        labels = [label for s in members for label in s.labels]
        stratum = Counter(labels).most_common(1)[0][0] if (stratify and labels) else ""
        strata[stratum].append(members)
    for stratum in sorted(strata):
        group_list = strata[stratum]
        order = rng.permutation(len(group_list))
        size = sum(len(g) for g in group_list)
        placed = Counter()
        for index in order:
            members = group_list[index]
            # The split furthest below its target share of this stratum takes the group.
            deficit = [fractions[i] * size - placed[split] for i, split in enumerate(SPLITS)]
            split = SPLITS[int(np.argmax(deficit))]
            for s in members:
                s.split = split
            placed[split] += len(members)
        totals.update(placed)
    counts = ", ".join(f"{split} {totals[split]}" for split in SPLITS)
    notes.append(f"split with seed {seed}: {counts}" + (" (stratified by class)" if stratify else ""))
    return replace(manifest, samples=samples), notes


def ensure_validation(
    manifest: Manifest, *, seed: int = 0, fraction: float = 0.2
) -> tuple[Manifest, list[str]]:
    """A manifest with a `val` split for model selection; the `test` split is never touched.

    Samples without a split are split as `split_dataset` does. When that leaves no `val`
    (datasets published as train/test only, such as DRIVE), a `fraction` of the `train`
    patients becomes `val`, grouped by patient and stratified by class.
    """
    if any(s.split == "val" for s in manifest):
        return manifest, []
    notes = []
    if any(s.split is None for s in manifest):
        manifest, notes = split_dataset(manifest, seed=seed)
        if any(s.split == "val" for s in manifest):
            return manifest, notes
    train = replace(manifest, samples=[replace(s, split=None) for s in manifest if s.split == "train"])
    if not len(train):
        raise FormatError("the dataset has no training samples", hint="Check the manifest and its splits")
    if len(train) < 2:
        raise FormatError("too few training samples to hold some out for validation", hint="Add a val split")
    carved, _ = split_dataset(train, fractions=(1 - fraction, fraction, 0.0), seed=seed)
    split_of = {s.key: s.split for s in carved}
    samples = [replace(s, split=split_of.get(s.key, s.split)) for s in manifest]
    n_val = sum(s.split == "val" for s in samples)
    notes.append(
        f"no val split: {n_val} of {len(train)} training samples held out for validation (seed {seed})"
    )
    return replace(manifest, samples=samples), notes
