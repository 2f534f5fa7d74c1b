"""De-identify a folder: every file in, a de-identified tree out, an audit row for each file.

Output layout, named only from replaced UIDs and keyed digests (no PHI in any path)::

    OUT/<Study Instance UID>/<Series Instance UID>/<SOP Instance UID>.dcm
    OUT/volumes/<keyed digest of the input path>.nii.gz (or .nii, .nrrd, .nhdr)

Each input file is written (de-identified), quarantined (suspected burned-in text and the
Clean Pixel Data option off: not written) or rejected (not DICOM, truncated, readable only
with ``force``, no SOP Instance UID, a DICOMDIR: not written). Nothing is ever copied as is.

Re-running on the same folders finishes an interrupted run with the same result: output is a
pure function of the input, the key and the options, so every file is processed again and
rewritten (atomically) with the same bytes; temporary files a killed run left behind are
removed. The audit log (JSON lines, one row per input file, sorted by input path) is written
once, atomically, when the run ends, so it never holds duplicate rows. It names the input
files, whose paths may themselves carry PHI, so by default it is written beside OUT
(``OUT.deid_audit.jsonl``), not inside it. A re-identification table (original values and
their replacements) is written only when asked, and never inside OUT.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import warnings
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

from medsight.deid.keys import keyed_digest, read_key
from medsight.deid.profile import Profile
from medsight.errors import MedsightError, NotFoundError

__all__ = ["AUDIT_SUFFIX", "deidentify_tree"]

AUDIT_SUFFIX = ".deid_audit.jsonl"
_HEADER_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr")
_DICOMDIR = "1.2.840.10008.1.3.10"
# Objects whose pixels are labels or dose values, not pictures: no text can be burned into
# them, and searching a segmentation's frames for text only finds label edges.
_NOT_PICTURES = {
    "1.2.840.10008.5.1.4.1.1.66.4": "Segmentation",
    "1.2.840.10008.5.1.4.1.1.66.7": "Label Map Segmentation",
    "1.2.840.10008.5.1.4.1.1.481.2": "RT Dose",
}
_TEMP = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp")  # medsight.io.atomic_path's temporary names
_UNDEFINED = 0xFFFFFFFF


def deidentify_tree(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    key: bytes | str | os.PathLike,
    options: Iterable[str] = (),
    jobs: int = 1,
    reid_table: str | os.PathLike | None = None,
    audit_log: str | os.PathLike | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """De-identify every file under `src` into `dst` (see the module docstring).

    Parameters
    ----------
    src, dst : path
        Input folder (never modified) and output folder (created; must not overlap `src`).
    key : bytes or path
        The secret, or the key file that holds it (`medsight.deid.keys.read_key`).
    options : iterable of str
        Names from `medsight.deid.profile.OPTIONS`.
    jobs : int
        Worker processes (1: in this process).
    reid_table : path, optional
        Write the re-identification table (CSV: kind, original, replacement) here; outside `dst`.
    audit_log : path, optional
        Where the audit log goes; by default beside `dst`, named ``<dst>.deid_audit.jsonl``.
    progress : callable, optional
        Called as ``progress(done, total)`` after each file.

    Returns
    -------
    dict
        ``files``, ``written``, ``quarantined``, ``rejected`` (counts), ``output``,
        ``audit_log`` and ``reid_table`` (paths, as text).
    """
    src, dst = Path(src), Path(dst)
    secret = key if isinstance(key, bytes) else read_key(key)
    profile = Profile(frozenset(options))
    audit = Path(audit_log) if audit_log is not None else dst.parent / (dst.name + AUDIT_SUFFIX)
    _check_paths(src, dst, reid_table, jobs)
    dst.mkdir(parents=True, exist_ok=True)
    _remove_temporaries(dst)
    inputs = sorted(path.relative_to(src).as_posix() for path in src.rglob("*") if path.is_file())
    tasks = [(src, rel, dst, secret, profile, reid_table is not None) for rel in inputs]
    results = []
    for done, result in enumerate(_run(tasks, jobs), start=1):
        results.append(result)
        if progress is not None:
            progress(done, len(tasks))
    rows = [row for row, _ in results]
    _mark_duplicates(rows)
    _write_audit(audit, rows)
    if reid_table is not None:
        _write_reid(Path(reid_table), [mapping for _, mapping in results])
    counts = Counter(row["status"] for row in rows)
    return {
        "files": len(rows),
        **{status: counts[status] for status in ("written", "quarantined", "rejected")},
        "output": str(dst),
        "audit_log": str(audit),
        "reid_table": None if reid_table is None else str(reid_table),
    }


def _check_paths(src: Path, dst: Path, reid_table, jobs: int) -> None:
    if not src.is_dir():
        raise NotFoundError("input folder not found", path=src)
    if jobs < 1:
        raise MedsightError(f"--jobs must be at least 1, not {jobs}")
    inside = lambda path, folder: path.resolve().is_relative_to(folder.resolve())  # noqa: E731
    if inside(dst, src) or inside(src, dst):
        raise MedsightError(
            "input and output folders overlap", path=dst, hint="Choose an output folder outside the input"
        )
    if reid_table is not None and inside(Path(reid_table), dst):
        raise MedsightError(
            "the re-identification table must not be inside the output folder",
            path=reid_table,
            hint="It links pseudonyms back to patients: keep it apart from the de-identified data",
        )


def _remove_temporaries(dst: Path) -> None:
    """Temporary files of a run that was killed before it could clean up."""
    for path in dst.rglob(".*"):
        if path.is_file() and _TEMP.match(path.name):
            path.unlink()


def _run(tasks: list, jobs: int):
    if jobs == 1 or len(tasks) < 2:
        yield from map(_one, tasks)
        return
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=jobs, mp_context=_worker_context()) as pool:
        yield from pool.map(_one, tasks, chunksize=4)


def _worker_context():
    """Not fork: the caller may run threads (a progress bar), which fork would copy mid-lock.

    A forkserver imports this module (pydicom, numpy) once and forks each worker from itself:
    a spawned worker would import them anew (0.3-0.5 s of CPU each, as long as de-identifying
    100 slices), and a later run in the same process reuses the server.
    Spawn where there is no forkserver (Windows).
    """
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])  # no effect once the server runs
    return context


def _one(task) -> tuple[dict, dict]:
    """De-identify one input file: its audit row, and what it replaced (when asked)."""
    src, rel, dst, key, profile, want_mapping = task
    row = {"input": rel, "output": None, "status": "rejected", "actions": {}, "reasons": []}
    mapping: dict = {}
    try:
        if rel.lower().endswith(_HEADER_SUFFIXES):
            _header_file(src / rel, dst, rel, key, row)
        else:
            _dicom_file(src / rel, dst, key, profile, row, mapping)
    except MedsightError as exc:
        row.update(status="rejected", output=None, reasons=[exc.problem])
    except Exception as exc:  # an input pydicom or a decoder chokes on: reported, never copied
        row.update(
            status="rejected", output=None, reasons=[f"not de-identified ({type(exc).__name__}: {exc})"]
        )
    return row, (mapping if want_mapping else {})


def _header_file(path: Path, dst: Path, rel: str, key: bytes, row: dict) -> None:
    from medsight.deid.headers import deidentify_header_file

    suffix = next(s for s in _HEADER_SUFFIXES if rel.lower().endswith(s))
    out = dst / "volumes" / (keyed_digest(key, "path", rel)[:10].hex() + suffix)
    out.parent.mkdir(exist_ok=True)
    row["actions"] = {action: 1 for action in deidentify_header_file(path, out)}
    row["status"], row["output"] = "written", out.relative_to(dst).as_posix()


def _dicom_file(path: Path, dst: Path, key: bytes, profile: Profile, row: dict, mapping: dict) -> None:
    from medsight.deid import pixels
    from medsight.deid.dataset import deidentify_dataset
    from medsight.deid.uids import UIDMap

    ds = _read(path)
    uids = UIDMap(key)
    record = deidentify_dataset(ds, key=key, options=profile, uids=uids)
    row["actions"] = dict(sorted(record.actions.items()))
    out = dst / ds.StudyInstanceUID / ds.SeriesInstanceUID / f"{ds.SOPInstanceUID}.dcm"
    row["output"] = out.relative_to(dst).as_posix()

    # Burned-in text is suspected in the files at risk (declared, or a modality or SOP class
    # that carries it: `burned_in_risk`). Under Clean Pixel Data their text is searched for and
    # masked; otherwise a suspected file stays out, as does one that declares text with none
    # found to mask. Files not at risk (CT, MR slices) are not searched: the detector's false
    # alarms would quarantine them, at 0.17 s a frame.
    clean = "clean-pixel-data" in profile.options
    risk = pixels.burned_in_risk(ds)
    declared = str(ds.get("BurnedInAnnotation", "")).upper() == "YES"
    suspected = bool(risk) or declared
    picture = "PixelData" in ds and ds.SOPClassUID not in _NOT_PICTURES
    regions = pixels.find_text_regions(ds) if picture and suspected and clean else []
    if regions:
        pixels.mask_regions(ds, regions)
        row["actions"]["pixel regions masked"] = len(regions)
    elif suspected and (not clean or declared):
        advice = "use --option clean-pixel-data to mask it" if not clean else "none found to mask"
        row["reasons"] = [*([risk] if risk else []), f"burned-in text suspected: not written ({advice})"]
        row["status"], row["output"] = "quarantined", None
        out.unlink(missing_ok=True)  # written by an earlier run with other options
        return
    elif risk:
        row["reasons"] = [f"{risk}; no text found in the pixels"]
    _write(ds, out)
    row["status"] = "written"
    if record.patient:
        mapping["patient"] = [(record.patient, record.pseudonym, record.date_offset)]
    mapping["uid"] = sorted(uids.replaced.items())


def _write(ds, out: Path) -> None:
    """Write `ds` atomically onto `out`, not flushed to disk file by file: the fsyncs cost more
    than de-identifying the file (1 ms on an idle disk, 30-150 ms on a busy one), and a run is
    re-run rather than resumed: after a power cut the same command rewrites every file."""
    from medsight.io import atomic_path

    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out, durable=False) as tmp:
        ds.save_as(tmp, enforce_file_format=True)


def _read(path: Path):
    """Read `path` strictly, or say why it is left out (a `MedsightError`)."""
    from pydicom import dcmread
    from pydicom.dataelem import RawDataElement
    from pydicom.errors import InvalidDicomError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tolerant reading; the output is checked on writing
        try:
            ds = dcmread(path)
        except InvalidDicomError:
            raise MedsightError(_why_not_part10(path)) from None
        except Exception as exc:
            raise MedsightError(f"unreadable or truncated DICOM ({type(exc).__name__}: {exc})") from None
    # pydicom reads a truncated file without a word: check each value is as long as it says,
    # and that the last one ends where the file does.
    tags = list(ds.keys())
    for tag in tags:
        raw = ds.get_item(tag)
        if isinstance(raw, RawDataElement) and raw.length != _UNDEFINED and raw.value is not None:
            if len(raw.value) != raw.length:
                raise MedsightError(f"truncated: element {tag} is cut short")
            if tag == tags[-1] and raw.value_tell + raw.length < path.stat().st_size:
                raise MedsightError("truncated: the file ends inside a data element header")
    if "Rows" in ds and not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise MedsightError("truncated: an image without pixel data")
    if ds.file_meta.get("MediaStorageSOPClassUID") == _DICOMDIR:
        raise MedsightError("a DICOMDIR (it lists input files by path): build a new one for the output")
    missing = [k for k in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID") if not ds.get(k)]
    if missing:
        raise MedsightError(f"no {', '.join(missing)}: not a composite DICOM object")
    return ds


def _why_not_part10(path: Path) -> str:
    from pydicom import dcmread

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            forced = dcmread(path, force=True)
        readable = "SOPClassUID" in forced
    except Exception:
        readable = False
    if readable:
        return "readable only with force=True (no DICOM file meta header): rewrite it as a Part 10 file first"
    return "not a DICOM file"


def _mark_duplicates(rows: list[dict]) -> None:
    """Two inputs with one SOP Instance UID share an output file: say so on both rows."""
    by_output: dict[str, list[dict]] = {}
    for row in rows:
        if row["status"] == "written":
            by_output.setdefault(row["output"], []).append(row)
    for same in by_output.values():
        for row in same if len(same) > 1 else ():
            others = ", ".join(r["input"] for r in same if r is not row)
            row["reasons"].append(f"same SOP Instance UID as {others}: one output file for both")


def _write_audit(path: Path, rows: list[dict]) -> None:
    from medsight.io import atomic_path

    if not path.parent.is_dir():
        raise NotFoundError("folder for the audit log does not exist", path=path.parent)
    with atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps(row, sort_keys=True) + "\n" for row in rows), encoding="utf-8")


def _write_reid(path: Path, mappings: list[dict]) -> None:
    """kind, original, replacement: patient -> pseudonym, patient -> date offset, UID -> UID."""
    from medsight.io import atomic_path

    rows = set()
    for mapping in mappings:
        for patient, alias, offset in mapping.get("patient", ()):
            rows.add(("patient", patient, alias))
            if offset is not None:
                rows.add(("date-offset-days", patient, str(offset)))
        rows.update(("uid", old, new) for old, new in mapping.get("uid", ()))
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(("kind", "original", "replacement"))
    writer.writerows(sorted(rows))
    with atomic_path(path) as tmp:
        os.chmod(tmp, 0o600)
        tmp.write_text(text.getvalue(), encoding="utf-8")
