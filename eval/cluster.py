"""Seeded, weighted k-means in JAX: k-means++ initialisation, then Lloyd iterations until the labels stop
changing or the centres move less than scikit-learn's tolerance (tol=1e-4 of the mean per-feature variance).

Every point carries a non-negative weight. A weight of 0 removes the point, so one compiled function clusters
any subset of a fixed-size array (one emotion of a padded batch) and `jax.vmap` runs many subsets and seeds at
once. Used by the cluster entropy (k=5 inside each emotion) and by the PRD/KL/HC histograms (k=20 on the union).

How it differs from scikit-learn: the reference PRD code (`prd_score.py`) uses `MiniBatchKMeans(n_init=10)`,
which fits on random mini-batches and keeps the best of 10 inits; here each run is one k-means++ init followed by
full-batch Lloyd steps, and an empty cluster keeps its previous centre (sklearn moves it to a far point). So the
labels are not those of the reference; the tests compare the downstream maths on identical labels instead, and
check that from the same initial centres these Lloyd steps (with tol=0) give the labels of
`sklearn.cluster.KMeans(algorithm="lloyd", tol=0)`.
"""
from functools import partial

import jax
import jax.numpy as jnp


def _sq_dists(x, x_sq, centers):
    return jnp.maximum(x_sq[:, None] - 2.0 * x @ centers.T + jnp.sum(centers * centers, axis=1)[None, :], 0.0)


@partial(jax.jit, static_argnames=("k",))
def kmeans_pp(key, x, w, k: int):
    """k initial centres by k-means++: each next centre is drawn with probability proportional to weight x D^2."""
    x_sq = jnp.sum(x * x, axis=1)
    key, sub = jax.random.split(key)
    first = jax.random.categorical(sub, jnp.log(w))
    centers = jnp.zeros((k, x.shape[1]), x.dtype).at[0].set(x[first])
    d2 = _sq_dists(x, x_sq, x[first][None, :])[:, 0]

    def add_center(i, state):
        centers, d2, key = state
        key, sub = jax.random.split(key)
        c = x[jax.random.categorical(sub, jnp.log(w * d2))]
        return centers.at[i].set(c), jnp.minimum(d2, _sq_dists(x, x_sq, c[None, :])[:, 0]), key

    centers, _, _ = jax.lax.fori_loop(1, k, add_center, (centers, d2, key))
    return centers


@partial(jax.jit, static_argnames=("max_iter",))
def lloyd(x, w, centers, max_iter: int = 300, tol: float = 1e-4):
    """Lloyd steps from `centers` until the labels of the weighted points stop changing, the squared centre
    shift falls to tol x (mean per-feature variance) as in sklearn's KMeans, or max_iter steps. Returns
    (labels, centers) with labels the nearest-centre assignment to the returned centres."""
    k = centers.shape[0]
    x_sq = jnp.sum(x * x, axis=1)
    active = w > 0
    mean = (w @ x) / jnp.sum(w)
    threshold = tol * jnp.mean((w @ (x - mean) ** 2) / jnp.sum(w))

    def assign(c):
        return jnp.argmin(_sq_dists(x, x_sq, c), axis=1)

    def update(labels, old):
        sums = jax.ops.segment_sum(w[:, None] * x, labels, num_segments=k)
        counts = jax.ops.segment_sum(w, labels, num_segments=k)
        return jnp.where(counts[:, None] > 0, sums / jnp.maximum(counts, 1e-30)[:, None], old)

    def step(state):
        labels, old, it, _ = state
        c = update(labels, old)
        new = assign(c)
        return new, c, it + 1, jnp.all((new == labels) | ~active) | (jnp.sum((c - old) ** 2) <= threshold)

    def running(state):
        _, _, it, done = state
        return ~done & (it < max_iter)

    labels, c, _, _ = jax.lax.while_loop(running, step, (assign(centers), centers, 0, False))
    return labels, c


@partial(jax.jit, static_argnames=("k", "max_iter"))
def kmeans(key, x, w, k: int, max_iter: int = 300):
    """Weighted k-means (k-means++ init + Lloyd). Returns (labels [n], centers [k, d])."""
    return lloyd(x, w, kmeans_pp(key, x, w, k), max_iter)


def weighted_counts(labels, w, k: int):
    """Total weight per cluster: the cluster histogram (unnormalised)."""
    return jax.ops.segment_sum(w, labels, num_segments=k)
