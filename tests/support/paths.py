"""Where the tests find the checkout, its toy profile and the shared read-only data (../shared/data, or
$PERSONAGEN_DATA)."""
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOY_PROFILE = REPO / "tests" / "support" / "profiles" / "toy.json"
SHARED_DATA = Path(os.environ.get("PERSONAGEN_DATA", REPO.parent / "shared" / "data"))
