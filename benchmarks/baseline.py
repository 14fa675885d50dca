"""The named baselines that are our own code as it was: a module of this repository read from git at a commit."""
from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def from_git(commit: str, path: str) -> types.ModuleType:
    """The module at `path` (e.g. "llm/transport/limiter.py") as it was at `commit`, loaded under the name
    "<stem>_at_<commit[:7]>" (its own imports resolve to today's modules)."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{commit}:{path}"], capture_output=True, text=True,
                            check=True).stdout
    name = f"{Path(path).stem}_at_{commit[:7]}"
    module = sys.modules[name] = types.ModuleType(name)  # dataclasses look their module up
    exec(compile(source, f"{commit[:7]}:{path}", "exec"), module.__dict__)
    return module
