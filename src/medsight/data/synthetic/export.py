"""Write a synthetic cohort to a folder: images, masks, a manifest and the ground truth.

Layout of `out`::

    manifest.json     the dataset (medsight.data.read_manifest), paths relative to `out`
    truth.json        every case's exact ground truth (volumes, rates, lesions), by image path
    images/           CXR-0001_t0.png, MRI-0001_t2.nii.gz, ... (formats "png" and "nifti")
    dicom/CT-0001/t1/ one DICOM series per image (format "dicom")
    masks/            label maps: PNG for "png", NIfTI otherwise (DICOM SEG is not written)
    phi.json          format "dicom" only: the PHI written into each series' headers, by
                      keyword, and its distinctive values (to search raw files for)

Every file is written atomically and the manifest last, so a folder without
``manifest.json`` is an interrupted export.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from medsight.data.manifest import Manifest, Sample, write_manifest
from medsight.data.synthetic.cohort import chosen_classes, cohort, get_kind
from medsight.errors import MissingDependencyError, UnsupportedError
from medsight.io import atomic_path, write

__all__ = ["FORMATS", "export_cohort"]

FORMATS = ("nifti", "png", "dicom")


def export_cohort(
    kind: str,
    out: str | os.PathLike,
    *,
    n: int = 20,
    seed: int = 0,
    format: str | None = None,
    timepoints: int | None = None,
    classes: list[str] | tuple[str, ...] | str | None = None,
    site_effect: float = 1.0,
    transfer_syntax: str = "explicit",
    progress: Callable[[int, int], None] | None = None,
    **options,
) -> Path:
    """Make a cohort with `cohort` and write it to the new or empty folder `out`.

    Parameters
    ----------
    kind, n, seed, timepoints, classes, site_effect, **options
        As for `cohort`.
    out : str or PathLike
        Created if missing; must not hold any file yet.
    format : {"nifti", "png", "dicom"}, optional
        Default: "png" for 2D kinds (8-bit; radiographs through their full 12-bit
        window, so site differences survive), "nifti" for 3D ones. NIfTI keeps the
        geometry of 2D images too (as one slice). "dicom" writes real series with fake
        PHI (see `medsight.data.synthetic.phi`) and lists it in ``phi.json``.
    transfer_syntax : str
        For "dicom": see `medsight.io.write_dicom_series`.
    progress : callable, optional
        Called as ``progress(done, total)`` after each image.

    Returns
    -------
    Path
        The manifest, ``out / "manifest.json"``.
    """
    spec = get_kind(kind)
    kind = kind.strip().lower().replace("_", "-")  # as get_kind accepted it
    format = format or ("png" if spec.ndim == 2 else "nifti")
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {format!r}")
    if format == "png" and spec.ndim == 3:
        raise ValueError(f"{kind} images are 3D and PNG holds 2D images; use format 'nifti' or 'dicom'")
    if format == "dicom":
        _check_dicom(transfer_syntax)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UnsupportedError(
            "is not a new or empty folder", path=out, hint="Write each cohort to its own new folder"
        )
    cases = cohort(
        kind, n, seed=seed, timepoints=timepoints, classes=classes, site_effect=site_effect, **options
    )
    total = n * (spec.timepoints if timepoints is None else timepoints)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    (out / ("dicom" if format == "dicom" else "images")).mkdir(exist_ok=True)

    samples, truth, phi = [], {}, {}
    for done, case in enumerate(cases, start=1):
        name = f"{case.patient.patient_id}_t{case.timepoint}"
        suffix = ".png" if format == "png" else ".nii.gz"
        mask = f"masks/{name}{suffix}"
        write(case.mask, out / mask)
        if format == "dicom":
            from medsight.data.synthetic._dicom import write_case_dicom

            image = f"dicom/{case.patient.patient_id}/t{case.timepoint}"
            phi[image] = write_case_dicom(case, out / image, seed=seed, transfer_syntax=transfer_syntax)
        else:
            image = f"images/{name}{suffix}"
            write(case.image, out / image)
        samples.append(
            Sample(
                image=image,
                label=case.label,
                mask=mask,
                boxes=case.boxes if spec.has_boxes else None,
                patient_id=case.patient.patient_id,
                timepoint=case.timepoint,
                attributes=case.attributes,
            )
        )
        truth[image] = {"patient_id": case.patient.patient_id, "timepoint": case.timepoint, **case.truth}
        if progress is not None:
            progress(done, total)

    about = {"kind": kind, "seed": seed, "site_effect": site_effect, "format": format}
    _write_json(out / "truth.json", {**about, "cases": truth})
    if format == "dicom":
        # Distinctive values (6 characters or more) can be searched for in raw bytes; "F" cannot.
        values = sorted({v for fields in phi.values() for v in fields.values() if len(v) >= 6})
        _write_json(out / "phi.json", {**about, "series": phi, "values": values})
    manifest = Manifest(
        samples=samples,
        root=out,
        name=f"synthetic-{kind}",
        classes=chosen_classes(kind, classes) or None,  # the label space, even if a class drew no one
        label_names=dict(spec.label_names),
        source=f"medsight.data.synthetic: {kind}, seed {seed}, site effect {site_effect:g}",
    )
    return write_manifest(manifest, out / "manifest.json")


def _check_dicom(transfer_syntax: str) -> None:
    """Fail before writing anything, not halfway through the cohort."""
    import importlib.util

    from medsight.io.dicom._write import TRANSFER_SYNTAXES

    if importlib.util.find_spec("pydicom") is None:
        raise MissingDependencyError(
            "writing DICOM needs the package pydicom", hint="pip install 'medsight[dicom]'"
        )
    if transfer_syntax not in TRANSFER_SYNTAXES:
        raise ValueError(
            f"transfer_syntax must be one of {', '.join(TRANSFER_SYNTAXES)}, not {transfer_syntax!r}"
        )


def _write_json(path: Path, data: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
