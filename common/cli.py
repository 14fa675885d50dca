"""What every personagen command line shares: an argparse parser whose errors are `UsageError`s, a runner that
turns a `UsageError` into one `error:` line on stderr and exit code 2, and argument types.

Signals: SIGTERM is handled like Ctrl-C (the stack unwinds, so atomic writes remove their temp files), exit 143
(130 for SIGINT). A signal that arrives where the exception it raises would be swallowed (inside a garbage-collector
callback such as JAX's, or a `__del__`: Python prints "Exception ignored" and goes on) or could crash the process
(inside the loading of a C extension module) is delivered again a moment later, until it lands outside one, so it
is honoured wherever it lands. A second signal while the first is still
unwinding removes the temp files still being written and exits at once.

Streams (common.streams): a closed, full or broken stdout or stderr ends every command the same way: one `error:`
line where a stream is left to write it (exit 2), otherwise the exit code alone; a closed pipe on stdout
(`... | head`) ends the command quietly, as Unix tools do (exit 141, the shell's code for SIGPIPE).
"""
import argparse
import errno
import gc
import importlib.machinery
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
SAID = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated"}
REDELIVER_SECONDS = 0.05
BROKEN_PIPE = 141


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like KeyboardInterrupt so that the same clean-up runs."""


def _unsafe(frame) -> bool:
    """Whether raising in `frame` would lose the exception or crash: it runs inside a garbage-collector callback
    (JAX registers one) or a `__del__` (Python swallows what they raise), or inside the loading of a C extension
    module (an exception there can leave it half made: a segfault)."""
    callbacks = {getattr(callback, "__code__", None) for callback in gc.callbacks}
    while frame is not None:
        if frame.f_code in callbacks or frame.f_code.co_name == "__del__":
            return True
        if frame.f_code.co_name in ("create_module", "exec_module") and isinstance(
                frame.f_locals.get("self"), importlib.machinery.ExtensionFileLoader):
            return True
        frame = frame.f_back
    return False


class _Handler:
    """The SIGINT and SIGTERM handler of one `run`. The first signal raises (Terminated, KeyboardInterrupt), so the
    stack unwinds; one that lands where that exception would be swallowed or crash (`_unsafe`) is delivered again
    REDELIVER_SECONDS later, by a timer thread (one delivery pending at a time); a second signal while the first
    unwinds removes the temp files still being written and exits at once."""

    def __init__(self):
        self.received: list[int] = []
        self._deferred: int | None = None  # a signal waiting to be delivered again
        self._timer: threading.Timer | None = None

    def __call__(self, signum: int, frame) -> None:
        if _unsafe(frame):
            if self._deferred is None:
                self._deferred = signum
                self._timer = threading.Timer(REDELIVER_SECONDS, self._again)
                self._timer.daemon = True
                self._timer.start()
            return
        self.cancel()
        if self.received:  # the first one is unwinding: stop now
            remove_live()
            os._exit(EXIT[signum])
        self.received.append(signum)
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()

    def _again(self) -> None:
        signum, self._deferred = self._deferred, None
        if signum is not None:
            signal.pthread_kill(threading.main_thread().ident, signum)

    def cancel(self) -> int | None:
        """Stop a pending delivery; the signal it was for (None: there was none)."""
        if self._timer is not None:
            self._timer.cancel()
        signum, self._deferred = self._deferred, None
        return signum


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print the usage block and exit itself
        raise UsageError(message)


def run(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> int:
    handler = _Handler()
    main_thread = threading.current_thread() is threading.main_thread()
    previous = {s: signal.signal(s, handler) for s in EXIT} if main_thread else {}
    try:
        with guarded_streams():
            code = _outcome(main, argv)
            if (late := handler.cancel()) is not None:  # it came while the command was ending: honoured still
                print(f"error: {SAID[late]}", file=sys.stderr)
                code = EXIT[late]
            return code
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
    except KeyboardInterrupt as exc:  # Terminated too
        signum = signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT
        print(f"error: {SAID[signum]}", file=sys.stderr)
        code = EXIT[signum]
    except StdoutFailed as exc:
        if exc.errno == errno.EPIPE:  # the reader is gone on purpose (`... | head`)
            return BROKEN_PIPE
        print(f"error: cannot write to stdout: {exc.strerror}", file=sys.stderr)
        code = 2
    return code


def group(parser: argparse.ArgumentParser, title: str):
    """The parser's help group titled `title`, made if it has none yet."""
    return next((g for g in parser._action_groups if g.title == title), None) or parser.add_argument_group(title)


def first_paragraph(doc: str) -> str:
    """A command's description: the first paragraph of its module's docstring, whole (argparse reflows it)."""
    return " ".join(doc.strip().split("\n\n")[0].split())


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
