"""The standard streams of a command, guarded (`guarded_streams`, which `common.cli.run` holds around every command),
so that a closed, full or broken stdout or stderr ends every command the same way: with one `error:` line where a
stream is left to write it, otherwise with the exit code alone.

- stdout: a write or flush the system refuses raises `StdoutFailed`, which `run` turns into one `error:` line on
  stderr and exit 2 (`> /dev/full`), or, for a broken pipe (`... | head`: the reader is gone on purpose), into
  exit 141 and silence, as Unix tools do. A stdout closed before the command started fails at the first write.
- stderr: a write or flush that fails is dropped (a progress bar or a summary cannot stop a run), so the command
  goes on and its exit code alone says how it ended. A stderr closed before the command started is /dev/null.
- A standard descriptor that is closed at start is reopened on /dev/null, so no file the command opens takes its
  number; one whose stream failed is pointed at /dev/null, so nothing more (nor Python's flush at exit, which would
  turn the exit code into 120) reaches it.
"""
from __future__ import annotations

import errno
import io
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager


class StdoutFailed(OSError):
    """A write to stdout that the system refused (errno and strerror of the refusal)."""


def _retire(stream) -> None:
    """Point the descriptor under `stream` (when it is stdout's or stderr's) at /dev/null."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError, AttributeError):  # not a descriptor (a test's capture): nothing to do
        return
    if fd in (1, 2):
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, fd)
        os.close(null)


class _Stdout:
    """stdout, or its buffer, whose refused writes raise StdoutFailed."""

    def __init__(self, stream):
        self._stream = stream

    def _refused(self, exc: OSError) -> StdoutFailed:
        _retire(self._stream)
        return StdoutFailed(exc.errno, exc.strerror)

    def write(self, data):
        try:
            return self._stream.write(data)
        except OSError as exc:
            raise self._refused(exc) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            raise self._refused(exc) from None

    @property
    def buffer(self) -> _Stdout:
        return _Stdout(self._stream.buffer)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


class _Stderr:
    """stderr, whose failed writes are dropped."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, data):
        try:
            return self._stream.write(data)
        except OSError:
            _retire(self._stream)
            return len(data)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError:
            _retire(self._stream)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


class _Closed(io.RawIOBase):
    """What stdout writes to when it was closed before the command started."""

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        raise OSError(errno.EBADF, "it was closed when the command started")


def _reserve_closed_descriptors() -> None:
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)


@contextmanager
def guarded_streams() -> Iterator[None]:
    """sys.stdout and sys.stderr guarded for the block (see the module docstring), restored after it."""
    saved = sys.stdout, sys.stderr
    _reserve_closed_descriptors()
    out = sys.stdout if sys.stdout is not None else io.TextIOWrapper(io.BufferedWriter(_Closed()))
    err = sys.stderr if sys.stderr is not None else open(os.devnull, "w")  # kept open: the process's stderr
    sys.stdout, sys.stderr = _Stdout(out), _Stderr(err)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
