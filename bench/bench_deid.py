"""Benchmark: de-identify 512x512 CT slices, MedSight's full Basic Profile versus dicognito.

Writes N seeded CT-like slices (int16 HU, Explicit VR Little Endian) with realistic PHI
(patient, study, staff, institution, dates, a private block), then times, in the same run
on a warm page cache, each writing a complete de-identified copy of the folder:

(a) ``medsight.deid.deidentify_tree(src, out, key=..., jobs=J)``: Table E.1-1, keyed UIDs,
    pseudonyms, private tags, the pixel text check, atomic writes, the audit log;
(b) dicognito (``Anonymizer().anonymize`` then ``save_as``) in J worker processes, and in
    one (its command line's own way).

dicognito is installed into a folder under the system's temporary folder when it is not
importable (``pip install --target``), never into the project's environment. Prints one
JSON line: files per second and the ratio MedSight / dicognito.

    python bench/bench_deid.py                # 200 slices, 2 jobs
    python bench/bench_deid.py --files 10     # smoke check
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

try:
    import medsight  # noqa: F401
except ImportError:  # running from a checkout without an install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _machine import machine as common_machine
from bench_dicom_load import ct_affine, ct_phantom

from medsight.image import Image

DICOGNITO = Path(tempfile.gettempdir()) / "medsight-bench-dicognito"
KEY = bytes(range(32))


def ensure_dicognito() -> str:
    """Import dicognito, installing it into `DICOGNITO` first if needed; its version."""
    if DICOGNITO.is_dir():
        sys.path.insert(0, str(DICOGNITO))  # installed by an earlier run: no pip each time
    try:
        import dicognito
    except ImportError:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--target",
                str(DICOGNITO),
                "dicognito",
            ],
            check=True,
        )
        if str(DICOGNITO) not in sys.path:
            sys.path.insert(0, str(DICOGNITO))
        import dicognito
    from importlib import metadata

    try:
        return metadata.version("dicognito")
    except metadata.PackageNotFoundError:
        return getattr(dicognito, "__version__", "unknown")


def write_slices(folder: Path, n: int, seed: int) -> list[Path]:
    """`n` 512x512 CT slices of one patient, with PHI in the usual places."""
    from pydicom import dcmread

    from medsight.io import write_dicom_series

    volume = Image(ct_phantom((512, 512, n), seed)[None], ct_affine(), metadata={"modality": "CT"})
    files = write_dicom_series(
        volume,
        folder,
        modality="CT",
        patient={
            "PatientName": "Lindqvist^Ingrid^M",
            "PatientID": "RVT4471302",
            "PatientBirthDate": "19530417",
        },
        series_description="CT CHEST WITHOUT CONTRAST",
        rescale=(1.0, -1024.0),
    )
    for path in files:
        ds = dcmread(path)
        ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = "20240312"
        ds.StudyTime = "101523"
        ds.AccessionNumber, ds.StudyID = "RVT24019283", "40213"
        ds.ReferringPhysicianName, ds.OperatorsName = "Okafor^Samuel^^Dr", "Brennan^Orla"
        ds.InstitutionName, ds.StationName = "Riverton General Hospital", "RVTCT02"
        ds.PatientAddress, ds.DeviceSerialNumber = "17 Heron Way, Riverton", "SN448120"
        ds.StudyDescription = "CT CHEST LUNG NODULE FOLLOW-UP"
        ds.private_block(0x0029, "BENCH PRIVATE", create=True).add_new(
            0x01, "LO", "Lindqvist Ingrid RVT4471302"
        )
        ds.save_as(path, enforce_file_format=True)
    return files


def _dicognito_chunk(task: tuple[list[str], str]) -> int:
    from dicognito.anonymizer import Anonymizer
    from pydicom import dcmread

    paths, out = task
    anonymizer = Anonymizer(seed="medsight-bench")  # one per worker: the same mapping in each
    for path in paths:
        ds = dcmread(path)
        anonymizer.anonymize(ds)
        ds.save_as(Path(out) / Path(path).name, enforce_file_format=True)
    return len(paths)


def run_dicognito(files: list[Path], out: Path, jobs: int) -> float:
    out.mkdir()
    chunks = [([str(f) for f in files[i::jobs]], str(out)) for i in range(jobs)]
    start = time.perf_counter()
    if jobs == 1:
        _dicognito_chunk(chunks[0])
    else:
        extra = os.pathsep.join([str(DICOGNITO), *sys.path])  # workers find dicognito too
        os.environ["PYTHONPATH"] = extra
        with ProcessPoolExecutor(jobs) as pool:
            list(pool.map(_dicognito_chunk, chunks))
    return time.perf_counter() - start


def run_medsight(src: Path, out: Path, jobs: int, root: Path) -> tuple[float, dict]:
    from medsight.deid import deidentify_tree

    start = time.perf_counter()
    result = deidentify_tree(
        src, out, key=KEY, jobs=jobs, audit_log=root / f"{out.name}.jsonl", progress=None
    )
    return time.perf_counter() - start, result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200, help="CT slices")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes for both tools")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    version = ensure_dicognito()
    with tempfile.TemporaryDirectory(prefix="medsight-bench-deid-") as tmp:
        root = Path(tmp)
        files = write_slices(root / "src", args.files, args.seed)
        size = sum(f.stat().st_size for f in files)  # reading them all also warms the cache
        for f in files:
            f.read_bytes()
        # Untimed warm-up on two files: imports, lazy tables, the process pool's start.
        (root / "warm").mkdir()
        for f in files[:2]:
            (root / "warm" / f.name).write_bytes(f.read_bytes())
        run_medsight(root / "warm", root / "warm-ms", args.jobs, root)
        run_dicognito(files[:2], root / "warm-dg", 1)
        ms_s, ms_result = run_medsight(root / "src", root / "ms", args.jobs, root)
        dg_s = run_dicognito(files, root / "dg", args.jobs)
        dg1_s = run_dicognito(files, root / "dg1", 1)
    n = len(files)
    result = {
        "benchmark": "deid_ct_slices",
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "files": n,
        "shape": [512, 512],
        "bytes": size,
        "jobs": args.jobs,
        "medsight_s": round(ms_s, 3),
        "medsight_files_per_s": round(n / ms_s, 2),
        "medsight_written": ms_result["written"],
        "medsight_quarantined": ms_result["quarantined"],
        "dicognito_s": round(dg_s, 3),
        "dicognito_files_per_s": round(n / dg_s, 2),
        "dicognito_1proc_files_per_s": round(n / dg1_s, 2),
        "ratio_medsight_over_dicognito": round(dg_s / ms_s, 3),
        "dicognito_version": version,
        "machine": common_machine(("numpy", "pydicom", "scipy")),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
