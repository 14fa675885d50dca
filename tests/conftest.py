"""Shared fixtures: where the read-only data in ../shared/data lives."""
import os
from pathlib import Path

import pytest

from llm.scale.driver import LOOPBACK_ONLY

os.environ.setdefault(LOOPBACK_ONLY, "0")  # local Ray instances in tests stay on 127.0.0.1

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("PERSONAGEN_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA
