"""Shared test set-up: the real benchmark files in ../shared/data (or $PIVOTRL_DATA_DIR)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _data_dir() -> Path | None:
    value = os.environ.get("PIVOTRL_DATA_DIR")
    path = Path(value) if value else REPO.parent / "shared" / "data"
    return path if (path / "mgsm").is_dir() else None


DATA_DIR = _data_dir()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if DATA_DIR is None:
        if os.environ.get("CI"):
            # In CI the data must be there: a skipped data test would hide a broken set-up.
            raise RuntimeError("benchmark data not found: expected ../shared/data or $PIVOTRL_DATA_DIR")
        pytest.skip("benchmark data (../shared/data) not available on this machine")
    return DATA_DIR
