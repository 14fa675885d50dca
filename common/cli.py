"""What every personagen command line shares: an argparse parser whose errors are `UsageError`s, a runner that
turns a `UsageError` into one `error:` line on stderr and exit code 2, and argument types.

Signals: SIGTERM is handled like Ctrl-C (the stack unwinds, so atomic writes remove their temp files), exit 143
(130 for SIGINT). A signal that arrives where the exception it raises would be swallowed (inside a garbage-collector
callback such as JAX's, or a `__del__`: Python prints "Exception ignored" and goes on) is delivered again a moment
later, until it lands outside one, so it is honoured wherever it lands. A second signal while the first is still
unwinding removes the temp files still being written and exits at once.

Streams (common.streams): a closed, full or broken stdout or stderr ends every command the same way: one `error:`
line where a stream is left to write it (exit 2), otherwise the exit code alone; a closed pipe on stdout
(`... | head`) ends the command quietly, as Unix tools do (exit 141, the shell's code for SIGPIPE).
"""
import argparse
import errno
import gc
import math
import os
import signal
import sys
import threading
from collections.abc import Callable

from common.errors import UsageError
from common.files import remove_live
from common.streams import StdoutFailed, guarded_streams

EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}
REDELIVER_SECONDS = 0.05
BROKEN_PIPE = 141


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like KeyboardInterrupt so that the same clean-up runs."""


def _swallowing(frame) -> bool:
    """Whether an exception raised in `frame` would be swallowed: it runs inside a garbage-collector callback (JAX
    registers one) or a `__del__`."""
    callbacks = {getattr(callback, "__code__", None) for callback in gc.callbacks}
    while frame is not None:
        if frame.f_code in callbacks or frame.f_code.co_name == "__del__":
            return True
        frame = frame.f_back
    return False


def _handler(received: list[int]):
    def handle(signum, frame):
        if _swallowing(frame):  # deliver it again in a moment, once outside (here it could only be swallowed)
            timer = threading.Timer(REDELIVER_SECONDS, signal.pthread_kill, (threading.main_thread().ident, signum))
            timer.daemon = True
            timer.start()
            return
        if received:  # the first one is unwinding: stop now
            remove_live()
            os._exit(EXIT[signum])
        received.append(signum)
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()

    return handle


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print the usage block and exit itself
        raise UsageError(message)


def run(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> int:
    received: list[int] = []
    main_thread = threading.current_thread() is threading.main_thread()
    previous = {s: signal.signal(s, _handler(received)) for s in EXIT} if main_thread else {}
    try:
        with guarded_streams():
            return _outcome(main, argv)
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _outcome(main: Callable[[list[str] | None], int | None], argv: list[str] | None) -> int:
    """The exit code of `main(argv)`, its error said in one line on stderr."""
    try:
        code = main(argv) or 0
        sys.stdout.flush()
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 2
    except Terminated:
        print("error: terminated", file=sys.stderr)
        code = 143
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        code = 130
    except StdoutFailed as exc:
        if exc.errno == errno.EPIPE:  # the reader is gone on purpose (`... | head`)
            return BROKEN_PIPE
        print(f"error: cannot write to stdout: {exc.strerror}", file=sys.stderr)
        code = 2
    return code


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _number(text: str) -> float:
    """float(text), NaN (which no range check accepts) when it is not a number."""
    try:
        return float(text)
    except ValueError:
        return float("nan")


def non_negative(text: str) -> float:
    value = _number(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def finite_non_negative(text: str) -> float:
    """A finite number >= 0 (a temperature, a price: inf would be sent as JSON null)."""
    value = non_negative(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def seconds(text: str) -> float:
    """A finite duration > 0 (0 would disable aiohttp's timeout, inf overflows it)."""
    value = _number(text)
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds > 0, got {text!r}")
    return value


def fraction(text: str) -> float:
    value = _number(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return value


def open_fraction(text: str) -> float:
    value = _number(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}")
    return value
