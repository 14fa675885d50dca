"""Reaps the local Ray instance of a driver that died without shutting it down (kill -9, an abort).

`watch()` starts `python -m llm.scale.watchdog` in a session of its own and hands it the Ray processes the driver
started (pid and start time each, read from /proc, so a pid reused later is left alone). The watchdog then blocks
reading its stdin, whose other end only the driver holds: however the driver ends, the pipe closes, and the
watchdog stops those processes and everything below them (SIGTERM, then SIGKILL after `GRACE` seconds). A driver
that ended cleanly has shut Ray down already, so there is nothing left but what its shutdown missed. Without /proc
(not Linux) there is nothing to watch.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

GRACE = 3.0


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks since boot) of a live process, None when it is gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else (int(fields[1]), int(fields[19]))


def _processes() -> dict[int, tuple[int, int]]:
    """Every live process: pid -> (parent, start time)."""
    found = {}
    for name in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if name.isdigit() and (stat := _stat(int(name))) is not None:
            found[int(name)] = stat
    return found


def _below(roots: set[int], table: dict[int, tuple[int, int]]) -> set[int]:
    """`roots` and all their descendants among `table`."""
    found, grew = set(roots), True
    while grew:
        more = {pid for pid, (parent, _) in table.items() if parent in found} - found
        found |= more
        grew = bool(more)
    return found


def ray_processes() -> list[tuple[int, int]]:
    """(pid, start time) of this process's descendants that are Ray's (its services and workers)."""
    table = _processes()
    ours = []
    for pid in _below({os.getpid()}, table) - {os.getpid()}:
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if command.startswith("ray::") or "/ray/" in command:
            ours.append((pid, table[pid][1]))
    return ours


def watch() -> subprocess.Popen | None:
    """Start the watchdog over the Ray processes below this one; close its `stdin` when done (or just die)."""
    processes = ray_processes()
    if not processes:
        return None
    dog = subprocess.Popen([sys.executable, "-m", "llm.scale.watchdog"], stdin=subprocess.PIPE,
                           start_new_session=True)
    dog.stdin.write(json.dumps(processes).encode() + b"\n")
    dog.stdin.flush()
    return dog


def reap(processes: list[tuple[int, int]], grace: float = GRACE) -> set[int]:
    """Stop the recorded processes still alive (same pid, same start time) and their descendants; returns the
    pids signalled."""
    table = _processes()
    roots = {pid for pid, started in processes if table.get(pid, (0, None))[1] == started}
    targets = _below(roots, table)

    def alive() -> set[int]:
        return {pid for pid in targets if (_stat(pid) or (0, None))[1] == table[pid][1]}

    _signal(targets, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    _signal(alive(), signal.SIGKILL)
    return targets


def _signal(pids: set[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def main() -> None:
    processes = [tuple(p) for p in json.loads(sys.stdin.buffer.readline())]
    sys.stdin.buffer.read()  # until the driver's end closes: it ended, one way or another
    reap(processes)


if __name__ == "__main__":
    main()
