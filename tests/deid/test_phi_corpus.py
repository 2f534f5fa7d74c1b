"""Thousands of PHI tokens planted everywhere PHI hides; after de-identification none is left.

The corpus (`medsight.data.synthetic.phi_corpus`) puts distinctive tokens in names, IDs,
free text, nested sequences, private tags and the file meta, unusual dates in every date
attribute, and tokens burned into ultrasound and screen-capture pixels. Every output byte
(file contents and paths) is searched for every token and date; burned-in tokens must be
blanked in the output pixels or their file quarantined.
"""

import json
import re

import numpy as np
import pytest

pytest.importorskip("pydicom")

from medsight.data.synthetic.phi_corpus import write_phi_corpus  # noqa: E402
from medsight.deid import deidentify_tree  # noqa: E402

KEY = bytes(range(32))
_TOKEN_RUN = re.compile(rb"[A-Z0-9]{10,}")
_DIGIT_RUN = re.compile(rb"[0-9]{8,}")


def _substrings(blob: bytes, run: re.Pattern, width: int) -> set[bytes]:
    """Every `width`-long piece of every run of `run` in `blob`: a linear-time token search."""
    found = set()
    for match in run.finditer(blob):
        text = match.group()
        found.update(text[i : i + width] for i in range(len(text) - width + 1))
    return found


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("phi")
    planted = write_phi_corpus(root / "in", seed=3)
    result = deidentify_tree(
        root / "in",
        root / "out",
        key=KEY,
        options=["clean-pixel-data"],
        reid_table=root / "reid.csv",
        audit_log=root / "audit.jsonl",
        progress=None,
    )
    audit = [json.loads(line) for line in (root / "audit.jsonl").read_text().splitlines()]
    return root, planted, result, audit


def test_corpus_holds_at_least_2000_distinct_tokens_in_every_kind_of_place(corpus):
    _, planted, _, _ = corpus
    assert len(set(planted["tokens"])) >= 2000
    places = " ".join(planted["where"].values())
    for place in ("PatientName", "PatientID", "ImageComments", "Sequence>", "private", "file meta"):
        assert place in places
    assert max(where.count(">") for where in planted["where"].values()) >= 2
    assert len(set(planted["dates"])) == len(planted["dates"]) >= 300
    assert sum(len(p) for p in planted["pixels"].values()) >= 10


def test_every_file_is_accounted_for(corpus):
    root, _, result, audit = corpus
    inputs = sorted(p.relative_to(root / "in").as_posix() for p in (root / "in").rglob("*") if p.is_file())
    assert sorted(row["input"] for row in audit) == inputs
    assert result["rejected"] == 0, [row for row in audit if row["status"] == "rejected"]
    assert result["written"] > 0


def test_no_planted_token_or_date_in_any_output_byte(corpus):
    root, planted, _, _ = corpus
    blob = bytearray()
    for path in sorted((root / "out").rglob("*")):
        blob += path.relative_to(root / "out").as_posix().encode() + b"\n"
        if path.is_file():
            blob += path.read_bytes() + b"\n"
    blob = bytes(blob).upper()
    tokens = {t.encode() for t in planted["tokens"]}
    leaked = sorted(t.decode() for t in tokens & _substrings(blob, _TOKEN_RUN, 10))
    where = [planted["where"][t] for t in leaked]
    assert not leaked, f"{len(leaked)} tokens leaked, e.g. from {sorted({w.split(':', 1)[1] for w in where})}"
    dates = {d.encode() for d in planted["dates"]}
    assert not sorted(dates & _substrings(blob, _DIGIT_RUN, 8)), "planted dates leaked"
    phantom = [v for v in planted["phantom"] if v.upper().encode() in blob]
    assert not phantom, f"the phantom's own PHI leaked: {phantom[:5]}"


def test_burned_in_tokens_are_blanked_or_their_file_quarantined(corpus):
    root, planted, _, audit = corpus
    from pydicom import dcmread

    rows = {row["input"]: row for row in audit}
    for rel, placed in planted["pixels"].items():
        row = rows[rel]
        if row["status"] == "quarantined":
            assert row["output"] is None and row["reasons"]
            continue
        assert row["status"] == "written", row
        ds = dcmread(root / "out" / row["output"])
        assert ds.BurnedInAnnotation == "NO"
        frames = ds.pixel_array.reshape(-1, ds.Rows, ds.Columns, int(ds.SamplesPerPixel))
        for item in placed:
            r0, c0, r1, c1 = item["box"]
            region = frames[:, r0:r1, c0:c1]
            assert np.ptp(region) == 0, f"{rel}: burned-in token at {item['box']} not blanked"
