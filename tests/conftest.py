"""Shared fixtures: a local Ray instance, and where the read-only data in ../shared/data lives
(tests.support.paths)."""
import os

import pytest

from llm.scale.driver import LOOPBACK_ONLY
from tests.support.paths import SHARED_DATA

os.environ.setdefault(LOOPBACK_ONLY, "0")  # local Ray instances in tests stay on 127.0.0.1


@pytest.fixture(scope="module")
def ray_instance():
    """A local Ray instance of 2 CPUs, for the tests of a module (skipped without the extra 'ray')."""
    ray = pytest.importorskip("ray", reason="the optional extra 'ray' is not installed")
    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20,
             log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def shared_data():
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA
