"""A limiter's levels kept across restarts, so that a run killed with SIGKILL and rerun keeps the limits of
llm.transport.limiter in every window, the restart's too. The store is a `Ledger` (`Cache.ledger`: a row in the
request cache's SQLite file, written at once).

`Claims` saves the buckets' levels before any admission that the last save does not cover, together with a claim of
a quarter bucket or a quarter second's worth more (so a save every quarter second or quarter burst at most, not one
an admission). A new limiter on the same ledger starts from the saved levels drained at the nominal rate for the
time since, plus the whole claim as if poured at its start. That is at least the level an uninterrupted limiter
would have: the saved levels are exact, the nominal rate drains no slower than the limiter did, and whatever of the
claim was admitted before the kill was admitted after the save and has had no longer to drain. The proof of the
limits rests on the level alone, so they hold across the restart as within one run.
"""
from __future__ import annotations

import math
from typing import Protocol

from .bucket import Bucket


class Ledger(Protocol):
    """Where a limiter keeps its levels across restarts."""

    def load(self) -> tuple[dict, float] | None:
        """The last saved state and its age in seconds (None: nothing saved)."""

    def save(self, state: dict) -> None:
        """Keep `state` durably before returning."""


class Claims:
    """The units a limiter admits under its last save: `spend` saves anew (first) when they are not covered."""

    def __init__(self, ledger: Ledger, buckets: tuple[Bucket | None, Bucket | None], now: float):
        self._ledger, self._buckets = ledger, buckets
        self._covered = [-1, -1]  # requests, tokens the last claim still covers (none yet: save first)
        saved = ledger.load()
        if saved is not None:
            state, age = saved
            for bucket, level, claim in zip(buckets, state["levels"], state["claims"]):
                if bucket is not None:
                    bucket.level = max(0.0, level - bucket.rate * age) + claim
                    bucket.t = now

    def spend(self, requests: int, tokens: int) -> None:
        """Count an admission's units (the buckets drained to now, not yet poured)."""
        covered = self._covered
        covered[0] -= requests
        covered[1] -= tokens
        if covered[0] < 0 or covered[1] < 0:
            self._save((requests, tokens))

    def _save(self, units: tuple[int, int]) -> None:
        """Save the levels and a claim covering `units` and a quarter bucket or second's worth more."""
        levels, claims, covered = [], [], []
        for bucket, needed in zip(self._buckets, units):
            claim = 0 if bucket is None else max(needed, math.ceil(max(bucket.size, bucket.rate) / 4))
            levels.append(0.0 if bucket is None else bucket.level)
            claims.append(claim)
            covered.append(math.inf if bucket is None else claim - needed)
        self._ledger.save({"levels": levels, "claims": claims})
        self._covered = covered
