"""Atomic file output: a file appears whole at its path or not at all (temp file + fsync + os.replace).

Only a regular file (or nothing) at the path is replaced: a device, FIFO or socket there (`--out /dev/null`) is
written in place, since a rename would put a regular file where the node was (a FIFO waits at most READER_WAIT
seconds for a reader, then is refused: never a hang). A write the disk refuses (full,
read-only, no permission) is a `UsageError` naming the path, with the temp file removed. The temp files being
written are listed in `LIVE`, so a process that must die at once (`common.cli`'s second signal) removes them too.
"""
from __future__ import annotations

import errno
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from common.errors import UsageError, WriteRefused


LIVE: set[str] = set()  # temp files being written right now
READER_WAIT = 10.0  # seconds an output that is a FIFO waits for its reader
REFUSED = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}


def refused(path, exc: OSError) -> WriteRefused:
    """The user-facing form of a write the system refused."""
    return WriteRefused(path, exc.strerror or str(exc))


@contextmanager
def atomic_binary(path: str | Path | None) -> Iterator:
    """A binary file object that becomes `path` only if the block finishes; stdout when path is None; the node
    itself, written in place, when `path` is a device, FIFO or socket."""
    if path is None:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"output path {path} is a directory")
    if path.exists() and not path.is_file():
        with _in_place(path) as out:
            yield out
        return
    if not path.parent.is_dir():
        raise UsageError(f"output directory {path.parent} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise refused(path, exc) from None
    LIVE.add(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)  # mkstemp's 0600 is for the temp file, not for the result
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        os.unlink(tmp)
        if exc.errno in REFUSED:
            raise refused(path, exc) from None
        raise
    except BaseException:
        os.unlink(tmp)
        raise
    finally:
        LIVE.discard(tmp)


def _opened_in_place(path: Path) -> int:
    """A descriptor writing to the node `path`; a FIFO waits at most READER_WAIT seconds for its reader (opened
    without blocking, again and again: never a hang), then is a UsageError."""
    deadline = time.monotonic() + READER_WAIT
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno in REFUSED:
                raise refused(path, exc) from None
            if exc.errno != errno.ENXIO:  # ENXIO: a FIFO that no one reads yet
                raise
            if time.monotonic() >= deadline:
                raise UsageError(f"{path} is a FIFO with no reader (waited {READER_WAIT:g} s): start its reader "
                                 "first") from None
            time.sleep(0.05)
            continue
        os.set_blocking(fd, True)
        return fd


@contextmanager
def _in_place(path: Path) -> Iterator:
    fd = _opened_in_place(path)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
    except OSError as exc:
        if exc.errno in REFUSED:
            raise refused(path, exc) from None
        raise


def remove_live() -> None:
    """Remove every temp file still being written (for a process about to exit without unwinding)."""
    for tmp in list(LIVE):
        try:
            os.unlink(tmp)
        except OSError:
            pass
        LIVE.discard(tmp)


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_binary(path) as out:
        out.write(data)


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def json_bytes(obj) -> bytes:
    """Indented JSON (NumPy arrays and scalars allowed) with a final newline: how every JSON file is written."""
    import orjson  # here, not at the top: `common.cli` imports this module before it handles signals

    return orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY) + b"\n"


def write_json(path: str | Path, obj) -> None:
    write_bytes(path, json_bytes(obj))


def write_png(path: str | Path, fig, dpi: int = 150) -> None:
    """A matplotlib figure as PNG; the figure is closed afterwards."""
    import matplotlib.pyplot as plt

    try:
        with atomic_binary(path) as out:
            fig.savefig(out, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)


def output_dir(path: str | Path | None, flag: str = "--out") -> Path | None:
    """The directory `path`, created if missing; None for None. UsageError when it exists as a file or cannot be
    made."""
    if path is None:
        return None
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UsageError(f"{flag} {p} exists and is not a directory")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise refused(p, exc) from None
    return p


@contextmanager
def parents_made(path: str | Path) -> Iterator[None]:
    """The missing directories above the file `path`, made for the block and removed again, if still empty, when
    the block fails (a run refused before it wrote anything leaves no directory behind). UsageError when one of
    them exists as a file."""
    missing = []
    for parent in Path(path).parents:
        if parent.is_dir():
            break
        if parent.exists():
            raise UsageError(f"cannot write {path}: {parent} is not a directory")
        missing.append(parent)
    try:
        for directory in reversed(missing):
            directory.mkdir()
    except OSError as exc:
        raise refused(path, exc) from None
    try:
        yield
    except BaseException:
        for directory in missing:
            try:
                directory.rmdir()
            except OSError:  # not empty: something was written there, keep it
                break
        raise


@contextmanager
def fresh_output_dir(path: str | Path, flag: str = "--out") -> Iterator[Path]:
    """The directory `path` for the block, made (with its missing parents) if missing and removed again when the
    block fails with it still empty (a run that fails before its first answer leaves nothing behind)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {path} exists and is not a directory")
    with parents_made(path / "-"):
        yield path
