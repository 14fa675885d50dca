"""What every personagen command line shares: an argparse parser whose errors are `UsageError`s, a runner that
turns a `UsageError` into one `error:` line on stderr and exit code 2, and argument types.

Signals: SIGTERM is handled like Ctrl-C (the stack unwinds, so atomic writes remove their temp files), exit 143
(130 for SIGINT). A second signal while the first is still unwinding (or was swallowed, as inside a JAX callback)
removes the temp files still being written and exits at once. A closed stdout (`... | head`) ends the command
quietly, as Unix tools do (exit 141, the shell's code for SIGPIPE).
"""
import argparse
import math
import os
import signal
import sys
import threading
from collections.abc import Callable

from common.errors import UsageError
from common.files import remove_live

EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}
BROKEN_PIPE = 141


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like KeyboardInterrupt so that the same clean-up runs."""


def _handler(received: list[int]):
    def handle(signum, _frame):
        if received:  # the first one is unwinding or was swallowed: stop now
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
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more reaches the closed pipe
        code = BROKEN_PIPE
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    return code


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


MAX_N = 2**32  # record ids are uint32 counters of the sampler's keys


def count(text: str) -> int:
    """A number of records (--n): a whole number in [1, 2**32]."""
    n = positive_int(text)
    if n > MAX_N:
        raise argparse.ArgumentTypeError(f"at most 2**32 (ids are 32-bit counters), got {text}")
    return n


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
