"""Study and rewrite the attribute priors of a profile, exactly (`python -m model.priors`, see `__main__`).

- `report`: target vs effective marginals, TV, mass removed per rule; `joint`: exact two-way tables;
- `calibrate`: tilt tables so the post-mask marginals match the targets;
- `learn`: learn P(implausible | attributes) from validation records, fold it into the profile, and write each
  persona's risk model (the `plausibility` section);
- `sensitivity`: entropy and expected distinct personas as one prior is tempered;
- `simulate`: a local validator with a known hidden rule, to measure `learn`;
- `targets` (the census targets and TV) and `markdown` (the reports' tables), which they share.
"""
from common.lazy import lazy_exports

__all__ = ["main"]

__getattr__, __dir__ = lazy_exports(__name__, {"main": ".__main__"})
