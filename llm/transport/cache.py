"""Durable request cache: one SQLite table in WAL mode, keyed by a hash of the full request
(`common.hashing.content_hash` of the request and its scope, see `Client`), and a second one keeping each
endpoint's limiter state across restarts (`Cache.ledger`, see llm.transport.limiter)."""
from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from pathlib import Path

import orjson

from common.errors import UsageError


def _digest(key: str) -> bytes:
    """A key as kept in memory: a hex digest as its 32 bytes, anything else as UTF-8."""
    try:
        return bytes.fromhex(key)
    except ValueError:
        return key.encode()


class CacheDamaged(UsageError):
    """The cache file is not a sound SQLite request cache (`PRAGMA quick_check` failed, or not a database)."""


def _opened(path: str) -> sqlite3.Connection:
    """A connection to the cache file `path`, checked (`CacheDamaged`), in WAL mode, with the table."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        problem = conn.execute("PRAGMA quick_check").fetchone()[0]
        if problem == "ok":
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, response BLOB NOT NULL)")
            conn.execute("CREATE TABLE IF NOT EXISTS limits (name TEXT PRIMARY KEY, saved REAL NOT NULL, "
                         "state BLOB NOT NULL)")
            conn.execute("SELECT key, response FROM responses LIMIT 1").fetchall()
            return conn
    except sqlite3.DatabaseError as exc:
        problem = str(exc)
    conn.close()
    raise CacheDamaged(f"request cache {path} is damaged ({problem})")


class Cache:
    """Completed responses by request key. `Cache(":memory:")` for a throwaway one.

    An existing file is opened and checked (`PRAGMA quick_check`) at once: a damaged one raises `CacheDamaged`
    before anything is asked. A new file is created (mode 0600, as are its -wal and -shm files: prompts and answers
    may be private) at the first `put`, so a run that fails its checks leaves nothing behind. WAL mode
    with synchronous=NORMAL survives a killed process (not a power cut).

    Writes are batched: `put` keeps the response in memory (where `get` finds it at once) and, inside a
    running event loop, schedules one commit of everything put during this loop iteration; outside one it
    commits at once. `flush` commits now: whoever makes a result durable elsewhere (the JSONL appender)
    flushes first, so a response is on disk before anything that depends on it (see llm.engine.slots).
    The keys in the file are read once when it is opened, so a miss costs no query; a cache file is meant for
    one process at a time (responses another process adds meanwhile are not seen: they are asked for again).
    """

    def __init__(self, path: str | Path = ":memory:"):
        self.path = str(path)
        self._conn: sqlite3.Connection | None = None
        self._pending: dict[str, bytes] = {}  # put, not yet committed
        self._known: set[bytes] = set()  # keys in the table (as digests), read when the file is opened
        self._scheduled: asyncio.AbstractEventLoop | None = None  # the loop a flush is scheduled on
        if self.path != ":memory:" and os.path.exists(self.path):
            self._open()  # an existing file is checked now, before anything is asked (`CacheDamaged`)

    @property
    def _db(self) -> sqlite3.Connection:
        return self._open() if self._conn is None else self._conn

    def _open(self) -> sqlite3.Connection:
        if self.path != ":memory:" and not os.path.exists(self.path):
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # SQLite gives -wal, -shm its mode
        self._conn = _opened(self.path)
        self._known = {_digest(k) for (k,) in self._conn.execute("SELECT key FROM responses")}
        return self._conn

    def connection(self) -> sqlite3.Connection:
        """The open connection (the file created and checked if need be): other tables of the same file use it
        (the batch ledger and the spend of llm.transport.batch and llm.transport.spend)."""
        return self._db

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
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        if self._scheduled is not loop:
            self._scheduled = loop
            loop.call_soon(self.flush)

    def flush(self) -> None:
        """Commit every pending response, in one transaction."""
        self._scheduled = None
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        db = self._db
        self._known.update(map(_digest, pending))
        try:
            if len(pending) == 1:  # autocommit: one statement, one transaction
                db.execute("INSERT OR REPLACE INTO responses VALUES (?, ?)", next(iter(pending.items())))
            else:
                with db:  # python's sqlite3 wraps this in BEGIN ... COMMIT (ROLLBACK on error)
                    db.execute("BEGIN")
                    db.executemany("INSERT OR REPLACE INTO responses VALUES (?, ?)", pending.items())
        except BaseException as exc:
            self._pending = {**pending, **self._pending}
            if isinstance(exc, sqlite3.OperationalError) and exc.sqlite_errorcode == sqlite3.SQLITE_FULL:
                raise UsageError(f"cannot write request cache {self.path}: the disk is full") from None
            raise

    def ledger(self, name: str) -> _Ledger:
        """Where the limiter of endpoint `name` keeps its state (`llm.transport.levels.Ledger`), in this file."""
        return _Ledger(self, name)

    def __len__(self) -> int:
        self.flush()
        return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        self.flush()
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
