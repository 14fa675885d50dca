"""JSON Lines: one reader for every input file, and the append-only results journal (`Appender`), its torn-line
recovery (`recover`) and its one-writer lock (`locked`)."""
from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson

from common.errors import UsageError
from common.files import REFUSED, refused
from common.userfile import read_user_file, special


def read_text(path: Path) -> str:
    """A UTF-8 text file's contents (any length: a data set); UsageError when it is missing, not a regular file
    (see `common.userfile`) or not UTF-8."""
    try:
        return read_user_file(path, "file", limit=None).decode("utf-8")
    except UnicodeDecodeError as e:
        raise UsageError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def lines(text: str) -> list[str]:
    """`text` cut at its line feeds (a CR before one dropped) and nowhere else: str.splitlines would also cut at
    U+2028, U+0085 and the other separators that a JSON string or a text may hold unescaped."""
    return [line.removesuffix("\r") for line in text.split("\n")]


def read_objects(path: str | Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for every non-blank line of `path`; UsageError for a line that is not an object."""
    path = Path(path)
    for n, line in enumerate(lines(read_text(path)), 1):
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise UsageError(f"{path}:{n}: not valid JSON") from None
        if not isinstance(obj, dict):
            raise UsageError(f"{path}:{n}: expected a JSON object")
        yield n, obj


OURS = b'{"id":'  # how every result line starts (orjson keeps the record's key order; "id" comes first)


def recover(path: str | Path, ids=None, fields: tuple[str, ...] = ("id",)) -> dict[int, dict]:
    """Finished results in the journal `path` by id. Every whole line must be a JSON object with `fields` (else
    UsageError naming the line); with `ids` (a container of the run's ids), a line whose id is not in it or repeats
    an earlier line's is refused too. Only once the file is known to be a journal is a torn last line (a crash
    mid-write: a tail without newline that starts like a result line) cut off; any other tail is refused."""
    return {result["id"]: result for result in results(path, ids, fields, seen=set())}


def results(path: str | Path, ids=None, fields: tuple[str, ...] = ("id",), seen=None) -> Iterator[dict]:
    """The results of the journal `path` one at a time, in file order, checked as `recover` says (`seen`, a set of
    the ids found so far such as a `common.idset.IdSet`, is filled here; with `ids` it refuses repeats), the torn
    tail cut off once the last line was read. Memory holds one line."""
    path = Path(path)
    if not path.exists():
        return
    if ids is not None and seen is None:
        seen = set()
    end = lineno = found = 0
    tail = b""
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, 1):
            if not line.endswith(b"\n"):
                tail, lineno = line, lineno - 1
                break
            end += len(line)
            result = _result(line, fields)
            if result is None:
                raise UsageError(f"{path}:{lineno} is not a result line; give another --out")
            if ids is not None and (result["id"] not in ids or result["id"] in seen):
                why = "repeats an earlier line's id" if result["id"] in seen else "has an id outside this run"
                raise UsageError(f"{path}:{lineno} {why} ({result['id']}); give another --out")
            if seen is not None:
                seen.add(result["id"])
            found += 1
            yield result
    if tail:
        if not OURS.startswith(tail[: len(OURS)]) or (not found and len(tail) < len(OURS)):
            raise UsageError(f"{path}:{lineno + 1} is not a result line; give another --out")
        os.truncate(path, end)


def _result(line: bytes, fields: tuple[str, ...]) -> dict | None:
    """The result on a journal line, None when the line is not one (not an object, a field missing, no int id)."""
    try:
        result = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    ok = isinstance(result, dict) and all(k in result for k in fields) and type(result.get("id")) is int
    return result if ok else None


@contextmanager
def locked(path: str | Path) -> Iterator[Path]:
    """Hold an advisory lock (`flock`, not waiting) on the journal `path` for the block; UsageError when another
    process holds it. Yields the lock file's path.

    The lock is the file's, not its name's: the lock file RESOLVED.lock lies beside the path with its symlinks and
    `..` resolved (it holds the owner's pid and is removed on exit), and a journal that exists is locked itself too,
    so a run reaching it through a symlink, a hard link or another spelling of the path is refused like one naming
    it. (A journal made during the run is locked by its `Appender`.) A journal is read back and appended to: a
    directory, FIFO or device there is refused at once."""
    try:
        kind = special(os.stat(path).st_mode)
    except FileNotFoundError:
        kind = None
    if kind:
        raise UsageError(f"{path} is {kind}: a results journal must be a regular file (it is read back and "
                         "appended to)")
    lock = Path(f"{os.path.realpath(path)}.lock")
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise refused(lock, exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 32).decode(errors="replace").strip()
            os.close(fd)
            raise UsageError(f"{path} is being written by another run (process {owner or '?'}, which holds "
                             f"{lock}); wait for it to end") from None
        if _same_file(fd, lock):  # else its holder removed it between our open and flock: lock the new one
            break
        os.close(fd)
    try:
        journal = _locked_file(path)
    except BaseException:
        os.unlink(lock)
        os.close(fd)
        raise
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield lock
    finally:
        if journal is not None:
            os.close(journal)
        try:
            os.unlink(lock)  # while holding it: a process that opened it meanwhile finds it gone (`_same_file`)
        except FileNotFoundError:
            pass
        os.close(fd)


def _locked_file(path: str | Path) -> int | None:
    """A descriptor holding `flock` on the regular file `path` (None when there is none); UsageError when another
    process holds it (a run writing the same file under another name)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # O_NONBLOCK: a FIFO there must not block the open
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    _hold(fd, path)
    return fd


def _hold(fd: int, path: str | Path) -> None:
    """flock the file open on `fd` (not waiting); UsageError (fd closed) when another process holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise UsageError(f"{path} is being written by another run (under another name: a link to the same file); "
                         "wait for it to end") from None


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    fst = os.fstat(fd)
    return (fst.st_dev, fst.st_ino) == (st.st_dev, st.st_ino)


class Appender:
    """Appends one whole line per write (a single write(2) on an O_APPEND descriptor), fsyncs at most
    every `sync_every` seconds and on close. The file is created (with the umask's permissions) at the first
    write, so a run that fails before its first result leaves none; a file it creates it holds locked (see `locked`)
    until closed. A write the disk refuses (full, quota) is cut back to the last whole line and raised as a
    `WriteRefused`: the journal stays valid and resumable."""

    def __init__(self, path: str | Path, sync_every: float = 1.0):
        self.path = Path(path)
        self._fd: int | None = None
        self._size = 0  # bytes of whole lines in the file
        self._sync_every = sync_every
        self._synced = time.monotonic()

    def _open(self) -> int:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
        try:
            try:
                fd = os.open(self.path, flags | os.O_EXCL, 0o666)
                _hold(fd, self.path)  # a file made now is locked as `locked` locks one that existed before
            except FileExistsError:
                fd = os.open(self.path, flags, 0o666)
        except OSError as exc:
            raise refused(self.path, exc) from None
        self._fd = fd
        self._size = os.fstat(fd).st_size
        return fd

    def write(self, obj: dict) -> None:
        fd = self._open() if self._fd is None else self._fd
        data = orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE)
        line = memoryview(data)
        try:
            while line:
                line = line[os.write(fd, line) :]
        except OSError as exc:
            if exc.errno not in REFUSED:
                raise
            try:
                os.ftruncate(fd, self._size)  # whole lines only (if this fails too, `recover` cuts the torn tail)
            except OSError:
                pass
            raise refused(self.path, exc) from None
        self._size += len(data)
        if time.monotonic() - self._synced >= self._sync_every:
            self._sync(fd)
            self._synced = time.monotonic()

    def _sync(self, fd: int) -> None:
        try:
            os.fsync(fd)
        except OSError as exc:
            if exc.errno not in REFUSED:
                raise
            raise refused(self.path, exc) from None

    def close(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            self._sync(fd)
        finally:
            os.close(fd)

    def __enter__(self) -> Appender:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
