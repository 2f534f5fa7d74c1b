"""Shared fixtures: the real-data folder (tests marked `realdata` skip without it); `run_cli`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_data_dir() -> Path | None:
    path = Path(os.environ.get("MEDSIGHT_SHARED_DATA", _DEFAULT))
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (or $MEDSIGHT_SHARED_DATA); skips the test when absent."""
    path = shared_data_dir()
    if path is None:
        pytest.skip("real data folder ../shared/data is absent (set MEDSIGHT_SHARED_DATA)")
    return path


def pytest_collection_modifyitems(config, items):
    # In CI the real data must be there: a silent skip would hide a broken set-up.
    realdata = any("realdata" in item.keywords for item in items)
    if os.environ.get("CI") == "true" and shared_data_dir() is None and realdata:
        raise pytest.UsageError("CI=true but ../shared/data is missing: realdata tests cannot run")


def run_cli(*argv) -> None:
    """Run the ``medsight`` command line in this process; it must exit successfully."""
    from medsight.cli import main

    with pytest.raises(SystemExit) as done:
        main([str(a) for a in argv])
    assert done.value.code in (0, None)
