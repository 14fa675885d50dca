"""A stand-in for the MiniLM embedder in tests that need vectors but not meaning."""
import hashlib

import numpy as np


class HashEmbedder:
    """Unit vectors in `dim` dimensions drawn from each text's SHA-256 (same text, same vector); takes and ignores
    the embedder's arguments."""

    dim = 16

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, texts):
        seeds = [int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little") for t in texts]
        x = np.array([np.random.default_rng(s).normal(size=self.dim) for s in seeds], np.float32)
        x = x.reshape(-1, self.dim)
        return x / np.linalg.norm(x, axis=1, keepdims=True)
