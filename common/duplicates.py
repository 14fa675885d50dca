"""Duplicate texts: what counts as one (`DedupSpec`, written `exact` or `near[:THRESHOLD]`) and the index that
finds them (`index_for`), shared by generation (`llm.generate --dedup`) and evaluation (`eval.duplicates`).

- exact: two texts are duplicates when their normal forms (common.normalise: NFKC, case folding, whitespace
  collapsed) are equal. The index keeps a 16-byte digest per text.
- near: two texts are duplicates when the Jaccard similarity of their sets of character SHINGLE-grams (of the normal
  form) is at least the threshold (default THRESHOLD), as estimated by MinHash signatures of PERMUTATIONS
  permutations (standard error about 0.04 at 0.7, so a pair near the threshold may fall either side); candidates
  come from a MinHash LSH index (datasketch), which now and then misses one (a false negative). Character shingles need no word splitting, so the same
  rule holds for Japanese. The index keeps a signature (PERMUTATIONS 32-bit values) and LSH bucket entries per text.

An index holds texts under a scope (an emotion, or "" for all): `find(text, scope)` returns the key of a text of
the scope that `text` duplicates (the lowest, when several), else None; `offer(key, text, scope)` is `find`, adding
`text` under `key` when it finds none. The answer depends only on what was added before, not on when: the same
offers in the same order give the same answers.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from zlib import crc32

import numpy as np

from common.hashing import digest
from common.normalise import normalise

EXACT, NEAR = "exact", "near"
# near: the default Jaccard threshold. In CARER train (16,000 real texts) 0.31% are near copies of an earlier text at
# 0.7 ("i am feeling very shaky" / "... shaky today"; 0.19% exact), 0.59% at 0.6, where texts of other meaning start
# to pair ("i feel a little bit weird" / "... brave"), 1.6% at 0.5
THRESHOLD = 0.7
SHINGLE = 5  # near: characters per shingle
PERMUTATIONS = 128  # near: MinHash permutations
LSH_WEIGHTS = (0.2, 0.8)  # near: the LSH bands chosen to weigh false negatives 4 times false positives
LSH_HIGHEST = 0.99  # near: the LSH's threshold at most this (datasketch has no bands for 1); candidates then checked


@dataclass(frozen=True)
class DedupSpec:
    """`exact`, or `near` with its Jaccard `threshold` in (0, 1]."""

    mode: str
    threshold: float | None = None

    @classmethod
    def parse(cls, text: str) -> DedupSpec:
        """`exact`, `near` or `near:THRESHOLD`; ValueError with the reason otherwise."""
        mode, sep, value = str(text).partition(":")
        if mode == EXACT and not sep:
            return cls(EXACT)
        if mode != NEAR:
            raise ValueError(f"expected exact, near or near:THRESHOLD, got {text!r}")
        if not sep:
            return cls(NEAR, THRESHOLD)
        try:
            threshold = float(value)
        except ValueError:
            threshold = float("nan")
        if not 0 < threshold <= 1:
            raise ValueError(f"near:THRESHOLD needs a Jaccard similarity in (0, 1], got {value!r}")
        return cls(NEAR, threshold)

    def __str__(self) -> str:
        return EXACT if self.mode == EXACT else f"{NEAR}:{self.threshold:g}"


class ExactIndex:
    """Texts by the digest of their normal form, per scope."""

    def __init__(self):
        self._keys: dict[tuple[str, bytes], int] = {}

    def find(self, text: str, scope: str = "") -> int | None:
        return self._keys.get((scope, digest(normalise(text))[:16]))

    def offer(self, key: int, text: str, scope: str = "") -> int | None:
        found = self._keys.setdefault((scope, digest(normalise(text))[:16]), key)
        return None if found == key else found


def shingles(text: str, size: int = SHINGLE) -> list[bytes]:
    """The distinct character `size`-grams of `text`'s normal form (the whole form when shorter), UTF-8 encoded, in
    no particular order."""
    form = normalise(text)
    return [g.encode() for g in {form[i:i + size] for i in range(max(1, len(form) - size + 1))}]


class NearIndex:
    """MinHash signatures and an LSH index per scope (see the module docstring)."""

    def __init__(self, threshold: float = THRESHOLD):
        from datasketch import MinHash

        self.threshold = threshold
        self._lsh: dict = {}
        self._signatures: dict[int, np.ndarray] = {}
        # the scheme named: a new default would change the answers; CRC-32 hashes the shingles (C, 5x faster than
        # the default SHA-1 here; the permutations spread its values); the permutations drawn once, not per text
        self._minhash = partial(MinHash, num_perm=PERMUTATIONS, seed=1, scheme="affine32", hashfunc=crc32)
        self._minhash = partial(self._minhash, permutations=self._minhash().permutations)

    def signature(self, text: str):
        m = self._minhash()
        m.update_batch(shingles(text))
        return m

    def find(self, text: str, scope: str = "") -> int | None:
        return self._find(self.signature(text), scope)

    def offer(self, key: int, text: str, scope: str = "") -> int | None:
        from datasketch import MinHashLSH

        m = self.signature(text)
        if (found := self._find(m, scope)) is not None:
            return found
        if (lsh := self._lsh.get(scope)) is None:
            lsh = self._lsh[scope] = MinHashLSH(threshold=min(self.threshold, LSH_HIGHEST), num_perm=PERMUTATIONS,
                                                weights=LSH_WEIGHTS)
        lsh.insert(key, m, check_duplication=False)
        self._signatures[key] = m.hashvalues
        return None

    def _find(self, m, scope: str) -> int | None:
        lsh = self._lsh.get(scope)
        hits = [k for k in lsh.query(m) if np.count_nonzero(self._signatures[k] == m.hashvalues)
                >= self.threshold * PERMUTATIONS] if lsh is not None else []
        return min(hits, default=None)


def index_for(spec: DedupSpec) -> ExactIndex | NearIndex:
    """An empty index for `spec`."""
    return ExactIndex() if spec.mode == EXACT else NearIndex(spec.threshold)
