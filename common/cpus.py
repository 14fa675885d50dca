"""The cores this process may use: what sizes the embedded model's servers (llm.transport.embedded) and the
report's worker threads (eval.parallel)."""
from __future__ import annotations

import os


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)
