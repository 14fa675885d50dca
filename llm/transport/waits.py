"""Waits a server asks for: `Retry-After` (seconds or an HTTP date), `retry-after-ms`, `x-ratelimit-reset-*`
('20ms', '1.5s', '6m0s'); and which of them a client honours.

A wait is honoured only when it is a finite number of seconds no longer than the client's `max_wait` (default
MAX_WAIT, `--max-wait`): a server asking for more (a huge number, `inf`, `1e309`, a far-future date, huge
milliseconds) or for something unreadable would otherwise stall a run indefinitely. Such a wait is a fault: the
request is retried under the normal backoff, never waited out (see `Client`).
"""
from __future__ import annotations

import email.utils
import math
import re
import time

MAX_WAIT = 120.0  # seconds

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)?")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
UNREADABLE = math.nan  # what the readers below give for a header that is there but unreadable


def parse_duration(value: str | None) -> float | None:
    """'20ms', '1.5s', '6m0s', '2' (seconds) -> seconds; None when absent, UNREADABLE when not a duration."""
    if value is None:
        return None
    parts = _DURATION.findall(value.strip())
    if not parts or "".join(n + u for n, u in parts) != value.strip():
        return UNREADABLE
    return sum(float(n) * _UNIT[u or None] for n, u in parts)


def retry_after(headers) -> float | None:
    """Seconds the server asks us to wait: retry-after-ms, or Retry-After in seconds or as an HTTP date; None when
    it says nothing, UNREADABLE when it says something else."""
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return float(ms) / 1000
        except ValueError:
            return UNREADABLE
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        try:
            return email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, OverflowError):
            return UNREADABLE


def honoured(seconds: float, max_wait: float) -> bool:
    """Whether a wait the server asked for is one to wait out (a past date, a negative number: no wait at all)."""
    return math.isfinite(seconds) and seconds <= max_wait
