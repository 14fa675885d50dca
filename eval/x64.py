"""Run a function with JAX 64-bit types enabled, without flipping the process-wide setting for other packages."""
import functools

import jax


def x64(fn):
    """Decorator: call (and trace) `fn` inside `jax.enable_x64(True)`; float32 inputs stay float32."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with jax.enable_x64(True):
            return fn(*args, **kwargs)
    return wrapper
