"""Shipped data files written out for editing (`python -m model.export`, `python -m llm.prompts export`): the file
as the installed package holds it, to stdout or atomically to a path, so a user edits a copy and passes its path
back, wherever the package was installed."""
from __future__ import annotations

from pathlib import Path

from common.errors import UsageError
from common.files import atomic_binary


def names(directory: Path, suffix: str) -> list[str]:
    """The shipped files of `directory` ending in `suffix`, by name."""
    return sorted(p.name.removesuffix(suffix) for p in directory.glob(f"*{suffix}"))


def export(directory: Path, suffix: str, name: str, out: str | None, what: str) -> None:
    """Write the shipped `what` called `name` (DIRECTORY/NAME.SUFFIX) to `out`, or to stdout when None."""
    shipped = names(directory, suffix)
    if name not in shipped:
        raise UsageError(f"no shipped {what} {name!r} (shipped: {', '.join(shipped)})")
    with atomic_binary(out) as f:
        f.write((directory / f"{name}{suffix}").read_bytes())
