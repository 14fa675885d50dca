"""The bottom layer's file output and command runner under faults: devices, full disks, unwritable places,
closed pipes and signals."""
import errno
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from common import cli, files
from common.errors import UsageError

REPO = Path(__file__).resolve().parents[1]


def test_a_fifo_at_the_path_is_written_in_place_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    files.write_bytes(fifo, b"hello\n")
    reader.join(10)
    assert got == [b"hello\n"]
    assert fifo.is_fifo() and sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


def test_a_full_disk_is_one_usage_error_and_no_file_is_left(tmp_path, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "fsync", full)
    with pytest.raises(UsageError, match="cannot write .*out.json: No space left on device"):
        files.write_json(tmp_path / "out.json", {"a": 1})
    assert list(tmp_path.iterdir()) == [] and not files.LIVE


def test_an_unwritable_directory_is_one_usage_error(tmp_path, monkeypatch):
    def denied(**kw):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(files.tempfile, "mkstemp", denied)
    with pytest.raises(UsageError, match="cannot write .*x.txt: Permission denied"):
        files.write_text(tmp_path / "x.txt", "x")


def test_the_command_says_a_full_disk_in_one_line(tmp_path, monkeypatch, capsys):
    from model.sample import main

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "fsync", full)
    code = cli.run(main, ["--n", "50", "--out", str(tmp_path / "p.jsonl")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: cannot write") and "No space" in err
    assert list(tmp_path.iterdir()) == []


def test_a_closed_pipe_ends_the_command_quietly():
    proc = subprocess.Popen([sys.executable, "-m", "model.sample", "--n", "200000"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert len(proc.stdout.read(100)) == 100
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(120) == cli.BROKEN_PIPE
    assert err == b""


def test_sigterm_mid_write_removes_the_temp_file_and_exits_143(tmp_path):
    out = tmp_path / "big.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "model.sample", "--n", "5000000", "--out", str(out)], cwd=REPO,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not [p for p in tmp_path.iterdir() if p.name.startswith(".big.jsonl.") and p.stat().st_size > 0]:
        assert proc.poll() is None and time.monotonic() < deadline, "no temp file appeared"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 143
    assert proc.stderr.read() == b"error: terminated\n"
    assert list(tmp_path.iterdir()) == []


def test_a_second_signal_removes_live_temp_files_and_exits_at_once(tmp_path, monkeypatch):
    tmp = tmp_path / ".x.tmp"
    tmp.write_bytes(b"partial")
    monkeypatch.setattr(files, "LIVE", {str(tmp)})

    def exit_now(code):
        raise SystemExit(code)

    monkeypatch.setattr(cli.os, "_exit", exit_now)
    handle = cli._handler([])
    with pytest.raises(cli.Terminated):
        handle(signal.SIGTERM, None)
    assert tmp.exists()  # the first signal unwinds: the writer removes its own temp file
    with pytest.raises(SystemExit) as stop:
        handle(signal.SIGINT, None)
    assert stop.value.code == 130 and not tmp.exists()


def test_run_restores_the_signal_handlers_it_replaced():
    before = signal.getsignal(signal.SIGTERM)
    assert cli.run(lambda argv: 0) == 0
    assert signal.getsignal(signal.SIGTERM) is before
