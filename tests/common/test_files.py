"""The bottom layer's file output and command runner under faults: devices, full disks, unwritable places,
closed pipes, closed or full standard streams, and signals."""
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
from tests.support.confined import confined
from common.errors import UsageError
from tests.support.paths import REPO



def test_a_fifo_at_the_path_is_written_in_place_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
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


@pytest.mark.slow
def test_a_closed_pipe_ends_the_command_quietly():
    proc = subprocess.Popen([sys.executable, "-m", "model.sample", "--n", "200000"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert len(proc.stdout.read(100)) == 100
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(120) == cli.BROKEN_PIPE
    assert err == b""


@pytest.mark.parametrize("signum, code, said", [(signal.SIGTERM, 143, b"terminated"),
                                               (signal.SIGINT, 130, b"interrupted")])
@pytest.mark.slow
def test_a_signal_mid_write_removes_the_temp_file_and_exits_with_its_code(tmp_path, signum, code, said):
    out = tmp_path / "big.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "model.sample", "--n", "5000000", "--out", str(out)], cwd=REPO,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not [p for p in tmp_path.iterdir() if p.name.startswith(".big.jsonl.") and p.stat().st_size > 0]:
        assert proc.poll() is None and time.monotonic() < deadline, "no temp file appeared"
        time.sleep(0.05)
    proc.send_signal(signum)
    assert proc.wait(60) == code
    assert proc.stderr.read() == b"error: " + said + b"\n"
    assert list(tmp_path.iterdir()) == []


def test_a_second_signal_removes_live_temp_files_and_exits_at_once(tmp_path, monkeypatch):
    tmp = tmp_path / ".x.tmp"
    tmp.write_bytes(b"partial")
    monkeypatch.setattr(files, "LIVE", {str(tmp)})

    def exit_now(code):
        raise SystemExit(code)

    monkeypatch.setattr(cli.os, "_exit", exit_now)
    handle = cli._Handler()
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


# ---- issue 26: signals wherever they land, and every standard stream closed, full or broken ----------------------

def test_a_signal_inside_a_garbage_collector_callback_is_not_swallowed():
    """In a fresh interpreter (libraries other tests loaded run gc callbacks and threads of their own)."""
    script = """
import gc, os, signal, sys
from common import cli

armed = [True]

def callback(phase, info):  # as JAX's: Python swallows what a gc callback raises ("Exception ignored in")
    if phase == "start" and armed:
        armed.clear()
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(10_000):  # the handler runs in here
            pass

def main(argv):
    gc.collect()
    for _ in range(30_000_000):  # ... and is delivered again out here
        pass
    return 0

gc.callbacks.append(callback)
sys.exit(cli.run(main))
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 143 and proc.stderr == "error: terminated\n", proc.stderr


@pytest.mark.parametrize("signum, code, said", [(signal.SIGTERM, 143, "terminated"),
                                               (signal.SIGINT, 130, "interrupted")])
@pytest.mark.slow
def test_a_signal_early_in_a_run_ends_it_with_its_code_and_leaves_no_partial_file(tmp_path, signum, code, said):
    from llm.testing.faults import Faults, spawned

    out = tmp_path / "out.jsonl"
    with spawned(Faults(latency=(0.2, 0.3))) as url:
        proc = subprocess.Popen([sys.executable, "-m", "llm.generate", "--n", "40", "--out", str(out), "--domain",
                                 "sns", "--base-url", url, "--model", "test-model", "--quiet"], cwd=REPO,
                                stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while not (tmp_path / "out.jsonl.lock").exists():  # the run has begun: sampling, compiling, connecting
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.01)
        proc.send_signal(signum)
        assert proc.wait(120) == code
    assert proc.stderr.read() == f"error: {said}\n".encode()
    left = sorted(p.name for p in tmp_path.iterdir())
    assert not [name for name in left if name.endswith((".tmp", ".lock"))], left
    assert not out.exists() or out.read_bytes().endswith(b"\n")


def _child(argv: list[str], closed: tuple[int, ...] = (), **kw) -> subprocess.CompletedProcess:
    return subprocess.run(confined([sys.executable, "-m", *argv], closed=closed), cwd=REPO, **kw)


@pytest.mark.slow
def test_a_full_or_closed_stdout_is_one_line_and_exit_2():
    with open("/dev/full", "wb") as full:
        done = _child(["model.sample", "--n", "10"], stdout=full, stderr=subprocess.PIPE, text=True)
    assert done.returncode == 2 and done.stderr == "error: cannot write to stdout: No space left on device\n"
    done = _child(["model.sample", "--n", "10"], closed=(1,), stderr=subprocess.PIPE, text=True)
    assert done.returncode == 2
    assert done.stderr == "error: cannot write to stdout: it was closed when the command started\n"


@pytest.mark.slow
@pytest.mark.parametrize("stderr", ["full", "closed"])
def test_a_failing_stderr_leaves_the_exit_code_alone_to_tell(tmp_path, stderr):
    from llm.testing.faults import Faults, spawned

    def child(argv: list[str]) -> subprocess.CompletedProcess:
        with open("/dev/full", "wb") as full:
            return _child(argv, stdout=subprocess.PIPE, **({"stderr": full} if stderr == "full" else {"closed": (2,)}))

    assert child(["model.sample", "--n", "5", "--profile", "nope"]).returncode == 2
    assert child(["eval.report"]).returncode == 2
    out = tmp_path / "out.jsonl"
    with spawned(Faults()) as url:  # no --quiet: a progress bar and a summary on the failing stderr
        done = child(["llm.generate", "--n", "3", "--out", str(out), "--domain", "sns", "--base-url", url, "--model",
                      "test-model", "--no-validate"])
    assert done.returncode == 0 and out.read_bytes().count(b"\n") == 3


def handles(pid: int, signum: int) -> bool:
    """Whether process `pid` catches `signum` (a handler of its own installed: /proc's SigCgt mask)."""
    status = Path(f"/proc/{pid}/status").read_text()
    mask = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), 16)
    return bool(mask >> (signum - 1) & 1)


def test_ctrl_c_right_after_model_sample_starts_is_one_line():
    proc = subprocess.Popen([sys.executable, "-m", "model.sample", "--n", "3000000"], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not handles(proc.pid, signal.SIGTERM):  # `run` is in charge (its handlers installed: SIGTERM caught)...
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)  # ... and JAX is still being imported (seconds): under those handlers
    assert proc.wait(120) == 130 and proc.stderr.read() == b"error: interrupted\n"
