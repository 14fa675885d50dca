"""The named baselines that are our own code as it was: a module, or the whole tree, of this repository at a
commit, read from git."""
from __future__ import annotations

import subprocess
import sys
import tempfile
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEFORE_26 = "772d52f9367d40d9e5d26b3816dab59f57fa2aff"  # the last commit before issue 26's limits, leases and resume


def from_git(commit: str, path: str) -> types.ModuleType:
    """The module at `path` (e.g. "llm/transport/limiter.py") as it was at `commit`, loaded under the name
    "<stem>_at_<commit[:7]>" (its own imports resolve to today's modules)."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{commit}:{path}"], capture_output=True, text=True,
                            check=True).stdout
    name = f"{Path(path).stem}_at_{commit[:7]}"
    module = sys.modules[name] = types.ModuleType(name)  # dataclasses look their module up
    exec(compile(source, f"{commit[:7]}:{path}", "exec"), module.__dict__)
    return module


@contextmanager
def tree(commit: str) -> Iterator[Path]:
    """A temporary directory holding the repository's files at `commit` (run a command there with PYTHONPATH
    set to it)."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        yield Path(tmp)
