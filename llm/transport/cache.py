"""Durable request cache: one SQLite table in WAL mode, keyed by a hash of the full request
(`common.hashing.content_hash` of the request and its scope, see `Client`), and a second one keeping each
endpoint's limiter state across restarts (`Cache.ledger`, see llm.transport.limiter); the batch ledger and the
spend of a run (llm.transport.batch, llm.transport.spend) keep their tables in the same file."""
from __future__ import annotations

import asyncio
import os
import sqlite3
import tempfile
import time
from pathlib import Path

import orjson

from common.errors import UsageError, WriteRefused
from common.files import refused

BUSY_SECONDS = 60.0  # how long a statement waits for another process's transaction (a cache shared by two runs)
_TABLE = "CREATE TABLE responses (key TEXT PRIMARY KEY, response BLOB NOT NULL)"
_LIMITS = "CREATE TABLE limits (name TEXT PRIMARY KEY, saved REAL NOT NULL, state BLOB NOT NULL)"
OURS = {"responses", "limits", "batches", "spend"}  # the tables a cache file of ours may hold


def _digest(key: str) -> bytes:
    """A key as kept in memory: a hex digest as its 32 bytes, anything else as UTF-8."""
    try:
        return bytes.fromhex(key)
    except ValueError:
        return key.encode()


class CacheDamaged(UsageError):
    """The cache file is not a sound SQLite request cache (`PRAGMA quick_check` failed, or not a database)."""


def _problem(path: str, exc: sqlite3.Error) -> UsageError:
    """What an SQLite error on the cache file means to the user: a damaged file, one another process holds, or a
    write the system refused (the disk full: SQLite says so, or says "disk I/O error" and the disk has no room)."""
    code = (getattr(exc, "sqlite_errorcode", None) or sqlite3.SQLITE_ERROR) & 0xFF
    if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return CacheDamaged(f"request cache {path} is damaged ({exc})")
    if _busy(exc):
        return UsageError(f"request cache {path} was held by another process for over {BUSY_SECONDS:g} s")
    full = code == sqlite3.SQLITE_FULL or (code == sqlite3.SQLITE_IOERR and _no_room(path))
    return WriteRefused(f"request cache {path}", "the disk is full" if full else str(exc))


def _no_room(path: str) -> bool:
    try:
        return os.statvfs(Path(path).parent).f_bavail == 0
    except OSError:
        return False


def _usable(path: str) -> None:
    """UsageError unless `path` can be a cache file: a regular file or nothing, in a directory that takes new files
    (SQLite makes PATH-wal and PATH-shm beside it), writable when it exists."""
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"request cache {path} is a directory")
    if p.exists() and not p.is_file():
        raise UsageError(f"request cache {path} is not a regular file")
    if not p.parent.is_dir():
        raise UsageError(f"request cache {path}: no such directory {p.parent}")
    try:
        if p.exists():
            os.close(os.open(p, os.O_RDWR))
        fd, probe = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise refused(f"request cache {path}", exc) from None


def _busy(exc: sqlite3.Error) -> bool:
    return (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _opened(path: str) -> sqlite3.Connection:
    """A connection to the cache file `path`, checked (`CacheDamaged`; an SQLite file with other tables is refused
    before anything in it changes), in WAL mode, with the table. Two processes opening a new file at once both
    read it, then both want it exclusively (to switch it to WAL, to create the table): SQLite answers one of them
    "busy" at once rather than let them wait on each other, so the opening is tried again, for up to
    BUSY_SECONDS."""
    deadline = time.monotonic() + BUSY_SECONDS
    while True:
        conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_SECONDS)
        try:
            problem = conn.execute("PRAGMA quick_check").fetchone()[0]
            if problem != "ok":
                conn.close()
                raise CacheDamaged(f"request cache {path} is damaged ({problem})")
            tables = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'"))
            if set(tables) - OURS or tables.get("responses", _TABLE) != _TABLE:
                conn.close()
                raise UsageError(f"{path} is not a request cache (an SQLite file with tables "
                                 f"{', '.join(sorted(tables)) or 'of another kind'}); it is left as it is: give "
                                 "another cache file")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            for table in (_TABLE, _LIMITS):
                conn.execute(table.replace("TABLE", "TABLE IF NOT EXISTS", 1))
            return conn
        except sqlite3.Error as exc:
            conn.close()
            if not (_busy(exc) and time.monotonic() < deadline):
                raise _problem(path, exc) from None
        time.sleep(0.02)


class Cache:
    """Completed responses by request key. `Cache(":memory:")` for a throwaway one.

    The file is checked at once: a directory, a special file, a missing or read-only directory, a read-only file
    is a UsageError; an existing file is opened and checked (`PRAGMA quick_check`, our one table) before anything
    is asked: a damaged one raises `CacheDamaged`, an SQLite file of another schema is refused unchanged, a disk
    too full to open it is a `WriteRefused`. A new file is created (mode 0600, as are its -wal and -shm files:
    prompts and answers may be private) at the first `put`, so a run that fails its checks leaves nothing behind.
    WAL mode with synchronous=NORMAL survives a killed process (not a power cut).

    Writes are batched: `put` keeps the response in memory (where `get` finds it at once) and, inside a
    running event loop, schedules one commit of everything put during this loop iteration; outside one it
    commits at once. `flush` commits now: whoever makes a result durable elsewhere (the JSONL appender)
    flushes first, so a response is on disk before anything that depends on it (see llm.engine.slots).

    A commit the system refuses (disk full, I/O error) is kept as `failed`: from then on responses are kept in
    memory only (`unstored` counts them), `flush` raises `failed`, and `close` tries once more. (A scheduled
    commit does not raise: the client checks `failed` before it sends anything.)

    The keys in the file are read once when it is opened, so a miss costs no query. Two processes may share a
    cache file (each waits up to BUSY_SECONDS for the other's commit), but responses another process adds
    meanwhile are not seen: they are asked for again.
    """

    def __init__(self, path: str | Path = ":memory:"):
        self.path = str(path)
        self.failed: WriteRefused | None = None  # the first commit the system refused
        self._conn: sqlite3.Connection | None = None
        self._pending: dict[str, bytes] = {}  # put, not yet committed
        self._known: set[bytes] = set()  # keys in the table (as digests), read when the file is opened
        self._scheduled: asyncio.AbstractEventLoop | None = None  # the loop a flush is scheduled on
        if self.path != ":memory:":
            _usable(self.path)
            if os.path.exists(self.path):
                self._open()  # an existing file is checked now, before anything is asked

    @property
    def unstored(self) -> int:
        """Responses put that are not on disk (after a refused commit)."""
        return len(self._pending) if self.failed else 0

    @property
    def _db(self) -> sqlite3.Connection:
        return self._open() if self._conn is None else self._conn

    def _open(self) -> sqlite3.Connection:
        if self.path != ":memory:" and not os.path.exists(self.path):
            try:  # not O_EXCL: another process may make it at the same time; SQLite gives -wal, -shm its mode
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
            except OSError as exc:
                raise refused(f"request cache {self.path}", exc) from None
        self._conn = _opened(self.path)
        self._known = {_digest(k) for (k,) in self._conn.execute("SELECT key FROM responses")}
        return self._conn

    def get(self, key: str) -> dict | None:
        raw = self._pending.get(key)
        if raw is None:
            if self._conn is None and not os.path.exists(self.path):  # nothing stored yet: no file until a put
                return None
            db = self._db
            if _digest(key) not in self._known:  # a miss costs no query (and no WAL read lock)
                return None
            row = db.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
            if row is None:
                return None
            raw = row[0]
        return orjson.loads(raw)

    def put(self, key: str, response: dict) -> None:
        self._pending[key] = orjson.dumps(response)
        if self.failed:
            return  # kept in memory: the disk refused the last commit
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        if self._scheduled is not loop:
            self._scheduled = loop
            loop.call_soon(self._flush_soon)

    def _flush_soon(self) -> None:
        try:
            self.flush()
        except WriteRefused:
            pass  # kept as `failed`, raised by the next flush; the client sends nothing more

    def flush(self) -> None:
        """Commit every pending response, in one transaction; `failed` once the system refused a commit."""
        self._scheduled = None
        if self.failed:
            raise self.failed
        self._commit()

    def _commit(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        try:
            db = self._db
            if len(pending) == 1:  # autocommit: one statement, one transaction
                db.execute("INSERT OR REPLACE INTO responses VALUES (?, ?)", next(iter(pending.items())))
            else:
                with db:  # python's sqlite3 wraps this in BEGIN ... COMMIT (ROLLBACK on error)
                    db.execute("BEGIN")
                    db.executemany("INSERT OR REPLACE INTO responses VALUES (?, ?)", pending.items())
        except BaseException as exc:
            self._pending = {**pending, **self._pending}
            problem = _problem(self.path, exc) if isinstance(exc, sqlite3.Error) else exc
            if isinstance(problem, WriteRefused):
                self.failed = problem
                raise problem from None
            raise
        self._known.update(map(_digest, pending))

    def connection(self) -> sqlite3.Connection:
        """The open connection (the file created and checked if need be): other tables of the same file use it
        (the batch ledger and the spend of llm.transport.batch and llm.transport.spend)."""
        return self._db

    def ledger(self, name: str) -> _Ledger:
        """Where the limiter of endpoint `name` keeps its state (`llm.transport.levels.Ledger`), in this file."""
        return _Ledger(self, name)

    def __len__(self) -> int:
        self.flush()
        return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        """Commit what is pending (once more after a refused commit: what still fails stays `unstored`), close."""
        try:
            if self.failed:
                try:
                    self._commit()
                except WriteRefused:
                    pass
            else:
                self.flush()
        finally:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class _Ledger:
    """One limiter's saved state in a cache file: saved at once (its own transaction), stamped with the wall clock
    (the age survives a restart; a clock set back counts as no time passed)."""

    def __init__(self, cache: Cache, name: str):
        self._cache, self._name = cache, name

    def load(self) -> tuple[dict, float] | None:
        cache = self._cache
        if cache._conn is None and not os.path.exists(cache.path):
            return None
        row = cache._db.execute("SELECT saved, state FROM limits WHERE name = ?", (self._name,)).fetchone()
        return None if row is None else (orjson.loads(row[1]), max(0.0, time.time() - row[0]))

    def save(self, state: dict) -> None:
        self._cache._db.execute("INSERT OR REPLACE INTO limits VALUES (?, ?, ?)",
                                (self._name, time.time(), orjson.dumps(state)))
