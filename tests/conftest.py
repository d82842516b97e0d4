"""Shared fixtures."""
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only real data (``$NEURO_ERC_SHARED_DATA``, else ``shared/data`` beside the repo); skip when absent."""
    path = Path(os.environ.get("NEURO_ERC_SHARED_DATA") or REPO_ROOT.parent / "shared" / "data")
    if not path.is_dir():
        pytest.skip(f"real data not found at {path} (set NEURO_ERC_SHARED_DATA to run this test)")
    return path
