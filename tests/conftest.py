"""Shared fixtures."""
import os
from pathlib import Path

import pytest
import torch

from neuro_erc.cli import build_parser

# The test models are tiny: one thread is faster than two, and immune to the busy-wait
# slowdowns of an oversubscribed OpenMP pool when something else is using the cores.
torch.set_num_threads(1)

# Import every command module now, before any test monkeypatches what they import by name
# (a module first imported inside a patch would keep the patched function for good).
build_parser()

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only real data (``$NEURO_ERC_SHARED_DATA``, else ``shared/data`` beside the repo); skip when absent."""
    path = Path(os.environ.get("NEURO_ERC_SHARED_DATA") or REPO_ROOT.parent / "shared" / "data")
    if not path.is_dir():
        pytest.skip(f"real data not found at {path} (set NEURO_ERC_SHARED_DATA to run this test)")
    return path
