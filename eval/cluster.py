"""Seeded, weighted k-means in JAX: k-means++ initialisation, then Lloyd iterations until the labels stop
changing or the centres move less than scikit-learn's tolerance (tol=1e-4 of the mean per-feature variance).

Every point carries a non-negative weight. A weight of 0 removes the point, so one compiled function clusters
any subset of a fixed-size array (one emotion of a padded batch). `kmeans_runs` runs several seeds on the same
points as one batch (flat matrix products over all runs' centres; a converged run is frozen while the others
continue). The centre update is a weighted one-hot matrix product (not a scatter, which is slow on CPU). Used by
the cluster entropy (k=5 inside each emotion: `kmeans_runs` over the seeds, `lax.map` over the emotions, so
each emotion stops at its own slowest seed) and by the PRD/KL/HC histograms (k=20 on the union, `kmeans`
vmapped over the seeds).

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
        onehot = (labels[:, None] == jnp.arange(k)).astype(x.dtype) * w[:, None]
        sums = onehot.T @ x
        counts = jnp.sum(onehot, axis=0)
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


@partial(jax.jit, static_argnames=("k", "max_iter"))
def kmeans_runs(keys, x, w, k: int, max_iter: int = 300, tol: float = 1e-4):
    """Independent weighted k-means runs on the same points, one per key: for each run exactly the k-means++
    init of `kmeans_pp` and the Lloyd steps and stopping rule of `lloyd`. The runs are batched into flat
    matrix products (the distances of all points to all runs' centres [n, runs*k] in one matmul; the centre
    sums as one one-hot matmul [runs*k, n] @ [n, d]), so the points are read once per step for all runs. A
    run that has converged is frozen, and the loop ends when the last run has converged (or at max_iter).
    Returns (labels [runs, n], centers [runs, k, d])."""
    r = keys.shape[0]
    n, d = x.shape
    init = jax.vmap(lambda key: kmeans_pp(key, x, w, k))(keys)
    x_sq = jnp.sum(x * x, axis=1)
    active = w > 0
    mean = (w @ x) / jnp.sum(w)
    threshold = tol * jnp.mean((w @ (x - mean) ** 2) / jnp.sum(w))
    ids = jnp.arange(k)

    def assign(c):
        cf = c.reshape(r * k, d)
        return jnp.argmin(_sq_dists(x, x_sq, cf).reshape(n, r, k), axis=2).T

    def update(labels, old):
        onehot = ((labels.T[:, :, None] == ids).astype(x.dtype) * w[:, None, None]).reshape(n, r * k)
        sums = (onehot.T @ x).reshape(r, k, d)
        counts = jnp.sum(onehot, axis=0).reshape(r, k)
        return jnp.where(counts[..., None] > 0, sums / jnp.maximum(counts, 1e-30)[..., None], old)

    def step(state):
        labels, old, it, done = state
        c = update(labels, old)
        new = assign(c)
        converged = jnp.all((new == labels) | ~active[None, :], axis=1) | (jnp.sum((c - old) ** 2, axis=(1, 2))
                                                                            <= threshold)
        labels = jnp.where(done[:, None], labels, new)
        c = jnp.where(done[:, None, None], old, c)
        return labels, c, it + 1, done | converged | (it + 1 >= max_iter)

    def running(state):
        return ~jnp.all(state[3])

    done = jnp.full(r, max_iter <= 0)
    labels, c, _, _ = jax.lax.while_loop(running, step, (assign(init), init, 0, done))
    return labels, c
