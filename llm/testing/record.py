"""What the fault server saw (`Record`: every arrival, answer and status), and the window counts that check a limit
from the server's side (`max_in_window`, `over_limit`)."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


def max_in_window(events: list[tuple[float, int]], window: float) -> int:
    """Largest sum of weights of events whose times lie in one half-open interval of length `window`."""
    events = sorted(events)
    best = total = start = 0
    for t, w in events:
        total += w
        while events[start][0] <= t - window:
            total -= events[start][1]
            start += 1
        best = max(best, total)
    return best


def over_limit(times: list[float], window: float, limit: int) -> int:
    """How many arrivals found `limit` or more earlier arrivals in the window ending at them."""
    times, start, over = sorted(times), 0, 0
    for i, t in enumerate(times):
        while times[start] <= t - window:
            start += 1
        over += i - start >= limit
    return over


def _per_window(times: list[float], all_times: list[float], window: float) -> list[int]:
    """Counts of `times` in consecutive windows from the first arrival; the last, partial window left out."""
    if not all_times:
        return []
    first, last = min(all_times), max(all_times)
    counts = [0] * int((last - first) // window)
    for t in times:
        k = int((t - first) // window)
        if k < len(counts):
            counts[k] += 1
    return counts


@dataclass
class Record:
    arrivals: list[float] = field(default_factory=list)  # every POST, whatever happened to it
    served: list[tuple[float, int, str]] = field(default_factory=list)  # (arrival, tokens, kind) of 200s
    completed: Counter = field(default_factory=Counter)  # body hash -> 200 responses
    statuses: Counter = field(default_factory=Counter)
    limited: int = 0  # 429s of the enforced limits (not the injected ones)
    bodies: list[dict] = field(default_factory=list)  # every parsed request body, in arrival order

    def summary(self, window: float, rpm: int | None) -> dict:
        return {
            "arrivals": len(self.arrivals),
            "over_limit": over_limit(self.arrivals, window, rpm) if rpm else 0,
            "served": len(self.served),
            "kinds": dict(Counter(kind for _, _, kind in self.served)),  # "text", "validation", "score" answers
            "max_requests_in_window": max_in_window([(t, 1) for t in self.arrivals], window),
            "max_tokens_in_window": max_in_window([(t, n) for t, n, _ in self.served], window),
            "repeated_completions": sum(c - 1 for c in self.completed.values() if c > 1),
            "statuses": dict(self.statuses),
            "limited": self.limited,
            "per_window": _per_window(self.arrivals, self.arrivals, window),
            "served_per_window": _per_window([t for t, _, _ in self.served], self.arrivals, window),
        }
