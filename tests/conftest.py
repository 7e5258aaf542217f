"""Shared fixtures: real datasets through HAPPYHOUSE_DATA, the shipped bundle.

Tests that need real data fail loudly under CI=true when it is missing (CI
must never silently skip them) and skip with a clear reason elsewhere.
"""

import os
from pathlib import Path

import pytest

from happyhouse.daemon.datasets import DATA_ENV, data_root as _data_root


def _missing(reason: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: real-data tests must run; CI sets {DATA_ENV}=../shared/datasets)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = _data_root()
    if root is None:
        _missing(f"{DATA_ENV} is not set to the shared datasets folder")
    return root


@pytest.fixture(scope="session")
def happy_house_h5(data_root) -> Path:
    path = data_root / "happy-house" / "test_happy.h5"
    if not path.is_file():
        _missing(f"{path} is missing")
    return path


@pytest.fixture(scope="session")
def genki_root(data_root) -> Path:
    path = data_root / "genki4k-train"
    if not path.is_dir():
        _missing(f"{path} is missing")
    return path


@pytest.fixture(scope="session")
def smile_root(data_root) -> Path:
    path = data_root / "smilesmiled"
    if not path.is_dir():
        _missing(f"{path} is missing")
    return path


def pytest_collection_modifyitems(config, items):
    hardware = os.environ.get("HAPPYHOUSE_HARDWARE") == "1"
    soak = os.environ.get("HAPPYHOUSE_SOAK") == "1"
    for item in items:
        if "hardware" in item.keywords and not hardware:
            item.add_marker(pytest.mark.skip(reason="hardware test: set HAPPYHOUSE_HARDWARE=1 on a Pi"))
        if "soak" in item.keywords and not soak:
            item.add_marker(pytest.mark.skip(reason="soak test: set HAPPYHOUSE_SOAK=1"))
