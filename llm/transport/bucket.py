"""A leaky bucket (GCRA): the admission rule of `llm.transport.limiter` (whose docstring has its proof), and of
the test server's short-period limits (llm.testserver)."""
from __future__ import annotations

import math

_SLACK = 1e-9  # units a bucket may be over when a request is admitted (rounding of the drained amounts)


class Bucket:
    """A leaky bucket of `size` units drained at `rate` units a second (both times a factor, the limiter's).
    `poured` counts every unit ever poured (an int: tokens and requests are whole), which bounds what a later
    cut may take (see llm.transport.limiter)."""

    __slots__ = ("size", "rate", "level", "t", "poured")

    def __init__(self, size: float, rate: float):
        self.size, self.rate = size, rate
        self.level = 0.0
        self.t = -math.inf
        self.poured = 0

    def drain(self, now: float, factor: float) -> None:
        if now > self.t:
            level = self.level - self.rate * factor * (now - self.t)
            self.level = level if level > 0.0 else 0.0
            self.t = now

    def wait(self, units: int, factor: float) -> float:
        """Seconds until `units` fit (after `drain`): until the level is down to `max(size - units, 0)`."""
        over = self.level - max(self.size * factor - units, 0.0)
        return over / (self.rate * factor) if over > _SLACK else 0.0

    def pour(self, units: int) -> int:
        """Pour `units`; returns `poured` after them (a share's mark)."""
        self.level += units
        self.poured += units
        return self.poured

    def cut(self, units: int, mark: int) -> bool:
        """Take up to `units` out of the share poured up to `mark`: never more than the level less everything poured
        after it (a lower bound of what is left of that share); True when anything came out."""
        taken = min(units, self.level - (self.poured - mark))
        if taken <= 0:
            return False
        self.level -= taken
        return True
