"""Packages whose public names are imported on first use, so importing a package (or one of its light modules)
never pulls in the heavy modules (JAX, NumPyro) that some of its names live in."""
from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_exports(package: str, names: dict[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """A package's module-level `__getattr__` and `__dir__`: `names` maps each public name to the module that
    defines it (absolute, or relative to `package` when it starts with a dot).

        __getattr__, __dir__ = lazy_exports(__name__, {"load_chain": ".chain"})
    """
    def __getattr__(name: str) -> object:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(names[name], package), name)

    def __dir__() -> list[str]:
        return sorted(set(importlib.import_module(package).__dict__) | set(names))

    return __getattr__, __dir__
