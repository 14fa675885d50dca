"""JAX's persistent compilation cache, shared by every command that samples (`model.sample`, `model.dialogue`,
`llm.generate`): compiled programs are kept under `CACHE_DIR` (env `PERSONAGEN_CACHE`) across runs."""
from __future__ import annotations

import os
from pathlib import Path

CACHE_DIR = Path(os.environ.get("PERSONAGEN_CACHE", Path.home() / ".cache" / "personagen"))


def enable_compilation_cache() -> None:
    import jax

    jax.config.update("jax_compilation_cache_dir", str(CACHE_DIR / "jax"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
