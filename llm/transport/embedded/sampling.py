"""Choosing the next token of one request: greedy at temperature 0, else temperature and nucleus (`top_p`)
sampling drawn from the request's own generator (numpy PCG64 seeded by the request's `seed`, 0 when it has
none). The draw uses only the row's logits and that generator, so a request samples the same tokens whatever
else is in its batch."""
from __future__ import annotations

import numpy as np


class Sampler:
    def __init__(self, temperature: float = 1.0, top_p: float = 1.0, seed: int = 0):
        self.temperature, self.top_p = temperature, top_p
        self.rng = np.random.Generator(np.random.PCG64(seed))

    def __call__(self, logits: np.ndarray) -> int:
        """The next token for one row of logits (tokens the grammar forbids already at -inf)."""
        if self.temperature == 0:
            return int(np.argmax(logits))  # the first of equal maxima
        z = np.asarray(logits, dtype=np.float64) / self.temperature
        p = np.exp(z - z.max())
        if self.top_p < 1.0:
            order = np.argsort(-p, kind="stable")
            cum = np.cumsum(p[order])
            keep = order[:int(np.searchsorted(cum, self.top_p * cum[-1])) + 1]
            kept = np.zeros_like(p)
            kept[keep] = p[keep]
            p = kept
        cdf = np.cumsum(p)
        return int(min(np.searchsorted(cdf, self.rng.random() * cdf[-1], side="right"), len(p) - 1))
