"""The persona + scenario model: one NumPyro function over a `persona` plate, and how to run it fast.

`persona_model(profile, n)` is a plain NumPyro model: every attribute is a `numpyro.sample` site whose
distribution is a `TableCategorical` indexed by its parents' sampled codes. Run it under any handler (`seed`,
`trace`, `substitute`, enumeration). `sample_codes` runs it jitted under `inverse_cdf`, a handler that feeds each
site caller-supplied uniforms: record i's uniforms come from `fold_in(fold_in(PRNGKey(seed), i), attempt)`, so
record i is the same whatever n, chunking or sharding, and `attempt` k gives slot i an independent replacement.
"""
from __future__ import annotations

from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
from numpyro.primitives import Messenger

from model.distributions import TableCategorical, cdf_table
from model.profile import Profile, log_probs

CHUNK = 1 << 18  # personas per jitted call: bounds memory and the number of compiled shapes
MIN_BUCKET = 1 << 10


class _Tables:
    """Per attribute: the flattened [R, K] log table and CDF (NumPy, so no tracer is ever cached) and the strides
    that turn parent codes into a row index."""

    def __init__(self, profile: Profile):
        self.order = profile.order
        self.parents, self.strides, self.log_table, self.cdf = {}, {}, {}, {}
        for name, a in profile.attributes.items():
            sizes = [profile.attributes[p].size for p in a.parents]
            self.parents[name] = a.parents
            self.strides[name] = [int(np.prod(sizes[i + 1:])) for i in range(len(sizes))]
            self.log_table[name] = log_probs(a).reshape(-1, a.size)
            self.cdf[name] = cdf_table(a.probs.reshape(-1, a.size))


@lru_cache(maxsize=8)
def _tables(profile: Profile) -> _Tables:
    return _Tables(profile)


def persona_model(profile: Profile, n: int) -> dict[str, jnp.ndarray]:
    """Sample stage 1-3 attributes for a plate of n personas; returns {attribute: int codes [n]}."""
    t = _tables(profile)
    codes: dict[str, jnp.ndarray] = {}
    with numpyro.plate("persona", n):
        for name in t.order:
            rows = sum((codes[p] * s for p, s in zip(t.parents[name], t.strides[name])), jnp.zeros(n, jnp.int32))
            fn = TableCategorical(jnp.asarray(t.log_table[name]), jnp.asarray(t.cdf[name]), rows)
            codes[name] = numpyro.sample(name, fn)
    return codes


class inverse_cdf(Messenger):
    """Handler: draw every unobserved `TableCategorical` site from `uniforms[name]` (shape = the site's batch)."""

    def __init__(self, fn=None, uniforms=None):
        self.uniforms = uniforms
        super().__init__(fn)

    def process_message(self, msg):
        if msg["type"] == "sample" and msg["value"] is None and not msg["is_observed"]:
            msg["value"] = msg["fn"].icdf(self.uniforms[msg["name"]])


def record_uniforms(seed: int, ids: jnp.ndarray, attempt: int, count: int) -> jnp.ndarray:
    """[len(ids), count] uniforms; row i depends only on (seed, ids[i], attempt)."""
    root = jax.random.PRNGKey(seed)

    def one(i):
        key = jax.random.fold_in(jax.random.fold_in(root, i), attempt)
        return jax.random.uniform(key, (count,))

    return jax.vmap(one)(ids)


@lru_cache(maxsize=8)
def _compiled(profile: Profile):
    order = profile.order

    @jax.jit
    def run(seed, ids, attempt):
        u = record_uniforms(seed, ids, attempt, len(order))
        uniforms = {name: u[:, j] for j, name in enumerate(order)}
        tr = numpyro.handlers.trace(inverse_cdf(persona_model, uniforms=uniforms)).get_trace(profile, ids.shape[0])
        codes = jnp.stack([tr[name]["value"] for name in order], axis=1)
        log_prob = sum(tr[name]["fn"].log_prob(tr[name]["value"]) for name in order)
        return codes, log_prob

    return run


def _bucket(n: int) -> int:
    return max(MIN_BUCKET, 1 << (n - 1).bit_length())


def sample_codes(profile: Profile, ids, seed: int = 0, attempt: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Codes [len(ids), attributes] (columns in `profile.order`) and each record's log-probability under the model.

    Calls are padded to power-of-two buckets (at most CHUNK) so repeated calls reuse a few compiled shapes."""
    ids = np.asarray(ids, dtype=np.uint32).reshape(-1)
    run = _compiled(profile)
    codes, logp = [], []
    for start in range(0, len(ids), CHUNK):
        part = ids[start:start + CHUNK]
        padded = np.zeros(_bucket(len(part)), dtype=np.uint32)
        padded[: len(part)] = part
        c, lp = run(np.uint32(seed), padded, np.uint32(attempt))
        codes.append(np.asarray(c)[: len(part)])
        logp.append(np.asarray(lp)[: len(part)])
    if not codes:
        return np.zeros((0, len(profile.order)), np.int32), np.zeros(0, np.float32)
    return np.concatenate(codes), np.concatenate(logp)
