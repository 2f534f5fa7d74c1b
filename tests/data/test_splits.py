from collections import Counter
from dataclasses import replace

import pytest

from medsight.data import Manifest, Sample
from medsight.data.splits import ensure_validation, split_dataset
from medsight.errors import FormatError


def cohort(n_patients=60, per_patient=3, with_ids=True):
    samples = []
    for p in range(n_patients):
        label = "sick" if p % 4 == 0 else "well"  # 25% minority class
        for t in range(per_patient):
            samples.append(
                Sample(f"p{p}_{t}.png", label=label, patient_id=f"p{p}" if with_ids else None, timepoint=t)
            )
    return Manifest(samples)


def test_no_patient_crosses_splits_and_fractions_hold():
    manifest, notes = split_dataset(cohort(), seed=1)
    split_of = {}
    for s in manifest:
        assert split_of.setdefault(s.patient_id, s.split) == s.split
    counts = Counter(s.split for s in manifest)
    assert abs(counts["train"] / len(manifest) - 0.7) < 0.05
    assert abs(counts["test"] / len(manifest) - 0.15) < 0.05
    assert not any("no patient_id" in n for n in notes)


def test_stratified_class_balance_per_split():
    manifest, _ = split_dataset(cohort(), seed=2)
    for split in ("train", "val", "test"):
        labels = Counter(s.label for s in manifest if s.split == split)
        assert abs(labels["sick"] / sum(labels.values()) - 0.25) < 0.1, split


def test_seed_reproduces_and_changes():
    a, _ = split_dataset(cohort(), seed=3)
    b, _ = split_dataset(cohort(), seed=3)
    c, _ = split_dataset(cohort(), seed=4)
    assert [s.split for s in a] == [s.split for s in b]
    assert [s.split for s in a] != [s.split for s in c]


def test_existing_splits_kept_and_patients_follow():
    m = cohort(n_patients=20)
    m.samples[0].split = "test"  # patient p0's first image was already in test
    m.samples[5].split = "val"
    out, _ = split_dataset(m, seed=0)
    assert {s.split for s in out if s.patient_id == "p0"} == {"test"}
    assert {s.split for s in out if s.patient_id == "p1"} == {"val"}
    assert m.samples[1].split is None  # the input is not modified


def test_without_patient_ids_says_so_and_all_split_is_noop():
    _, notes = split_dataset(cohort(with_ids=False), seed=0)
    assert any("no patient_id" in n for n in notes)
    done, notes = split_dataset(Manifest([Sample("a.png", split="train")]))
    assert done.samples[0].split == "train" and "already" in notes[0]
    with pytest.raises(FormatError):
        split_dataset(cohort(), fractions=(0.5, 0.5, 0.5))
    with pytest.raises(FormatError, match="unknown split"):
        split_dataset(Manifest([Sample("a.png", split="training")]))


def test_ensure_validation_carves_val_from_train_only():
    samples = [
        replace(s, split="test" if s.patient_id in {"p0", "p1", "p2", "p3"} else "train") for s in cohort()
    ]
    manifest, notes = ensure_validation(Manifest(samples), seed=0)
    counts = Counter(s.split for s in manifest)
    assert counts["test"] == 12  # the test split is untouched
    assert abs(counts["val"] / (counts["val"] + counts["train"]) - 0.2) < 0.05
    split_of = {}
    for s in manifest:
        assert split_of.setdefault(s.patient_id, s.split) == s.split  # by patient
    assert "held out for validation" in notes[-1]
    again, _ = ensure_validation(manifest, seed=5)
    assert [s.split for s in again] == [s.split for s in manifest]  # an existing val is kept


def test_ensure_validation_splits_unsplit_samples_first():
    manifest, notes = ensure_validation(cohort(), seed=0)
    assert {s.split for s in manifest} == {"train", "val", "test"}
    with pytest.raises(FormatError, match="too few"):
        ensure_validation(Manifest([Sample("a.png", split="train"), Sample("b.png", split="test")]))
