"""The persona + scenario model: one NumPyro function over a `persona` plate, and how to run it fast.

`persona_model(profile, n)` is a plain NumPyro model: every attribute is a `numpyro.sample` site whose
distribution is a `TableCategorical` indexed by its parents' sampled codes. Run it under any handler (`seed`,
`trace`, `substitute`, enumeration). `sample_codes` runs it jitted under `inverse_cdf`, a handler that feeds each
site caller-supplied uniforms: record i's uniforms are Threefry counters (i, j) under `fold_in(PRNGKey(seed), attempt)`, so
record i is the same whatever n, chunking or sharding, and `attempt` k gives slot i an independent replacement.
"""
from __future__ import annotations

from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
from jax.extend.random import threefry_2x32
from numpyro.primitives import Messenger

from model.compiled import Profile, log_probs
from model.distributions import TableCategorical, cdf_table

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


def record_uniforms(seed, ids: jnp.ndarray, attempt, count: int) -> jnp.ndarray:
    """[count, len(ids)] uniforms in [0, 1): column r is Threefry-2x32 under the key fold_in(PRNGKey(seed), attempt)
    applied to the counters (ids[r], 0..count/2), so it depends only on (seed, attempt, ids[r])."""
    key = jax.random.key_data(jax.random.fold_in(jax.random.PRNGKey(seed), attempt))
    n, blocks = ids.shape[0], (count + 1) // 2
    hi = jnp.broadcast_to(ids[None, :].astype(jnp.uint32), (blocks, n))
    lo = jnp.broadcast_to(jnp.arange(blocks, dtype=jnp.uint32)[:, None], (blocks, n))
    x0, x1 = threefry_2x32((key[0], key[1]), jnp.stack([hi, lo]))
    bits = jnp.concatenate([x0, x1], axis=0)[:count]
    # 23 random mantissa bits under exponent 0 give a float in [1, 2): the same construction as jax.random.uniform
    return jax.lax.bitcast_convert_type((bits >> 9) | jnp.uint32(0x3F800000), jnp.float32) - 1.0


@lru_cache(maxsize=8)
def _compiled(profile: Profile):
    """Two jitted programs: `draw` (codes [A, n] from uniforms) and `score` (each record's log-probability, by
    NumPyro's own trace of the model with the codes substituted). Kept apart so XLA cannot fuse the inverse-CDF
    search into the scoring gathers, which made one combined program twice as slow."""
    order = profile.order

    @jax.jit
    def draw(seed, ids, attempt):
        u = record_uniforms(seed, ids, attempt, len(order))
        codes = inverse_cdf(persona_model, uniforms={name: u[j] for j, name in enumerate(order)})(profile, ids.shape[0])
        return jnp.stack([codes[name] for name in order])

    @jax.jit
    def score(codes):
        data = {name: codes[j] for j, name in enumerate(order)}
        tr = numpyro.handlers.trace(numpyro.handlers.substitute(persona_model, data=data)).get_trace(
            profile, codes.shape[1])
        return sum(tr[name]["fn"].log_prob(tr[name]["value"]) for name in order)

    return draw, score


def bucket(n: int) -> int:
    return max(MIN_BUCKET, 1 << (n - 1).bit_length())


def sample_codes(profile: Profile, ids, seed: int = 0, attempt: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Codes [len(ids), attributes] (columns in `profile.order`) and each record's log-probability under the model.

    Calls are padded to power-of-two buckets (at most CHUNK) so repeated calls reuse a few compiled shapes."""
    ids = np.asarray(ids, dtype=np.uint32).reshape(-1)
    draw, score = _compiled(profile)
    codes, logp = [], []
    for start in range(0, len(ids), CHUNK):
        part = ids[start:start + CHUNK]
        padded = np.zeros(bucket(len(part)), dtype=np.uint32)
        padded[: len(part)] = part
        c = draw(np.uint32(seed), padded, np.uint32(attempt))
        lp = score(c)
        codes.append(np.asarray(c)[:, : len(part)].T)
        logp.append(np.asarray(lp)[: len(part)])
    if not codes:
        return np.zeros((0, len(profile.order)), np.int32), np.zeros(0, np.float32)
    return np.concatenate(codes), np.concatenate(logp)
