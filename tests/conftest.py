"""Shared fixtures: where the read-only data in ../shared/data lives."""
import os
from pathlib import Path

import pytest

from llm.scale.driver import LOOPBACK_ONLY

os.environ.setdefault(LOOPBACK_ONLY, "0")  # local Ray instances in tests stay on 127.0.0.1

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("PERSONAGEN_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="module")
def ray_instance():
    """A local Ray instance of 2 CPUs, for the tests of a module (skipped without the extra 'ray')."""
    ray = pytest.importorskip("ray", reason="the optional extra 'ray' is not installed")
    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20,
             log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA
