"""The CPU as the code sees it: the cores this process may use (what sizes the embedded server's threads,
llm.transport.embedded, and the report's worker threads, eval.parallel), and whether it has AMX."""
from __future__ import annotations

import os
from pathlib import Path


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def has_amx(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether the CPU advertises Intel AMX (`amx_tile`/`amx_int8`/`amx_bf16`), where llama.cpp's AMX matrix path
    segfaults (llama.cpp issue 20824); False where the kernel tells nothing."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return False
    return any(line.startswith("flags") and {"amx_tile", "amx_int8", "amx_bf16"} & set(line.split())
               for line in text.splitlines())
