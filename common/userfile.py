"""Reading a file the user names: one place for every reader of one (a profile, a domain, an emotion set, a chain,
a prompt set, a run config, a JSONL input), so each refuses the same things the same way, at once, in one
UsageError line: a missing file, a directory, a FIFO, a device or a socket (opened without blocking and never read:
/dev/zero or a FIFO cannot hang or exhaust memory), a symlink loop, a file it may not read, and a file longer than
its limit (MAX_INPUT_BYTES, 16 MiB, for the model's and the prompts' files: far above any real one)."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from common.errors import UsageError

MAX_INPUT_BYTES = 16 * 2**20

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def special(mode: int) -> str | None:
    """What a file of `mode` is when it is not a regular file ("a FIFO"), else None."""
    return next((kind for test, kind in _KINDS if test(mode)), None if stat.S_ISREG(mode) else "not a regular file")


def read_user_file(path: str | Path, what: str, limit: int | None = MAX_INPUT_BYTES) -> bytes:
    """The bytes of the user's file `path`, named `what` in errors ("profile file"); at most `limit` bytes (None:
    no limit). UsageError for anything but a readable regular file within the limit."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # O_NONBLOCK: a FIFO must not block the open
    except FileNotFoundError:
        raise UsageError(f"{what} {path}: no such file") from None
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror}") from None
    info = os.fstat(fd)
    if kind := special(info.st_mode):
        os.close(fd)
        raise UsageError(f"{what} {path} is {kind}, not a regular file")
    with os.fdopen(fd, "rb") as f:
        if limit is not None and info.st_size > limit:
            raise UsageError(f"{what} {path} is larger than {limit // 2**20} MiB ({info.st_size} bytes)")
        try:
            data = f.read() if limit is None else f.read(limit + 1)
        except OSError as exc:
            raise UsageError(f"cannot read {what} {path}: {exc.strerror}") from None
    if limit is not None and len(data) > limit:  # it grew while we read it
        raise UsageError(f"{what} {path} is larger than {limit // 2**20} MiB")
    return data
