"""Seeded k-means in JAX. Full-batch, weighted: k-means++ initialisation, then Lloyd iterations until the labels
stop changing or the centres move less than scikit-learn's tolerance (tol=1e-4 of the mean per-feature variance).
Mini-batch (`minibatch_kmeans`, unweighted): as scikit-learn's `MiniBatchKMeans` (Sculley 2010), the best of
`n_init` k-means++ inits on a random sample, then a fixed number of steps on random batches, then one full
assignment.

Every point carries a non-negative weight. A weight of 0 removes the point, so one compiled function clusters
any subset of a fixed-size array (one emotion of a padded batch). `kmeans_runs` runs several seeds on the same
points through a few batched slots (flat matrix products over the slots' centres; a slot whose run has converged
takes the next run). The centre update is a weighted one-hot matrix product (not a scatter, which is slow on CPU).
Used by the cluster entropy (k=5 inside each emotion: `kmeans_runs` over the seeds, `lax.map` over the emotions).

The PRD/KL/HC histograms (k=20 on the union of the two sets) use `minibatch_kmeans` vmapped over the seeds, as
the reference PRD code (`prd_score.py`) uses `MiniBatchKMeans(n_clusters=20, n_init=10)`: batch size 1024,
init_size 3 x 1024, a fixed 100 steps (~2.5 passes over 2 x 20,000 points; sklearn stops early, after ~100
steps on such data), so vmapped runs do no wasted work; distances by matmul (|x|^2 - 2 x.c + |c|^2) in the
input dtype (float32).

How it differs from scikit-learn: the full-batch runs are one k-means++ init followed by Lloyd steps, and an
empty cluster keeps its previous centre (sklearn moves it to a far point). The mini-batch runs use plain (not
greedy) k-means++, share one init sample among the `n_init` candidates, run a fixed step count instead of
sklearn's early stopping, and do not randomly reassign near-empty centres. So the labels are not those of the
reference; the tests compare the downstream maths on identical labels instead, check that from the same initial
centres these Lloyd steps (with tol=0) give the labels of `sklearn.cluster.KMeans(algorithm="lloyd", tol=0)`,
and check that the mini-batch runs recover well-separated blobs.
"""
from functools import partial

import jax
import jax.numpy as jnp


def _sq_dists(x, x_sq, centers):
    return jnp.maximum(x_sq[:, None] - 2.0 * x @ centers.T + jnp.sum(centers * centers, axis=1)[None, :], 0.0)


def _scores(x, centers):
    """|c|^2 - 2 x.c for every row and centre [n, centres]: the squared distance less |x|^2, which is the same for
    every centre, so its argmin over centres is the nearest one."""
    return jnp.sum(centers * centers, axis=1)[None, :] - 2.0 * x @ centers.T


def nearest(x, centers):
    """Index of each row's nearest centre."""
    return jnp.argmin(_scores(x, centers), axis=1)


def _draw(key, weights):
    """One index drawn with probability proportional to `weights`, by inverting their cumulative sum with a
    single uniform (a Gumbel-max `categorical` draws one random number per point)."""
    cdf = jnp.cumsum(weights)
    # u < total strictly, so the first index whose cdf exceeds u has positive weight (rounding cannot pick a
    # zero-weight row at the end)
    u = jnp.minimum(jax.random.uniform(key, dtype=cdf.dtype) * cdf[-1], jnp.nextafter(cdf[-1], 0))
    return jnp.searchsorted(cdf, u, side="right")


@partial(jax.jit, static_argnames=("k",))
def kmeans_pp(key, x, w, k: int):
    """k initial centres by k-means++: each next centre is drawn with probability proportional to weight x D^2."""
    x_sq = jnp.sum(x * x, axis=1)
    key, sub = jax.random.split(key)
    first = _draw(sub, w)
    centers = jnp.zeros((k, x.shape[1]), x.dtype).at[0].set(x[first])
    d2 = _sq_dists(x, x_sq, x[first][None, :])[:, 0]

    def add_center(i, state):
        centers, d2, key = state
        key, sub = jax.random.split(key)
        p = w * d2
        c = x[_draw(sub, jnp.where(jnp.sum(p) > 0, p, w))]  # all points on centres already: any weighted point
        return centers.at[i].set(c), jnp.minimum(d2, _sq_dists(x, x_sq, c[None, :])[:, 0]), key

    centers, _, _ = jax.lax.fori_loop(1, k, add_center, (centers, d2, key))
    return centers


@partial(jax.jit, static_argnames=("max_iter",))
def lloyd(x, w, centers, max_iter: int = 300, tol: float = 1e-4):
    """Lloyd steps from `centers` until the labels of the weighted points stop changing, the squared centre
    shift falls to tol x (mean per-feature variance) as in sklearn's KMeans, or max_iter steps. Returns
    (labels, centers) with labels the nearest-centre assignment to the returned centres."""
    k = centers.shape[0]
    active = w > 0
    mean = (w @ x) / jnp.sum(w)
    threshold = tol * jnp.mean((w @ (x - mean) ** 2) / jnp.sum(w))

    def update(labels, old):
        onehot = (labels[:, None] == jnp.arange(k)).astype(x.dtype) * w[:, None]
        sums = onehot.T @ x
        counts = jnp.sum(onehot, axis=0)
        return jnp.where(counts[:, None] > 0, sums / jnp.maximum(counts, 1e-30)[:, None], old)

    def step(state):
        labels, old, it, _ = state
        c = update(labels, old)
        new = nearest(x, c)
        return new, c, it + 1, jnp.all((new == labels) | ~active) | (jnp.sum((c - old) ** 2) <= threshold)

    def running(state):
        _, _, it, done = state
        return ~done & (it < max_iter)

    labels, c, _, _ = jax.lax.while_loop(running, step, (nearest(x, centers), centers, 0, False))
    return labels, c


def weighted_counts(labels, w, k: int):
    """Total weight per cluster: the cluster histogram (unnormalised)."""
    return jax.ops.segment_sum(w, labels, num_segments=k)


@partial(jax.jit, static_argnames=("k", "max_iter", "slots"))
def kmeans_runs(keys, x, w, k: int, max_iter: int = 300, tol: float = 1e-4, slots: int = 4):
    """Independent weighted k-means runs on the same points, one per key: for each run exactly the k-means++
    init of `kmeans_pp` and the Lloyd steps and stopping rule of `lloyd`.

    The runs go through a queue of `slots` concurrent slots: each step is one Lloyd step of every busy slot,
    batched into flat matrix products (the distances of all points to all slots' centres [n, slots*k] in one
    matmul; the centre sums as one one-hot matmul [slots*k, n] @ [n, d]), so the points are read once per step for
    all slots. A slot whose run has converged stores that run's result and takes the next run, whose first step
    is its initial assignment. Runs converge after very different step counts (20-70 on one emotion's
    embeddings), so this does about sum(steps) / slots batched steps instead of max(steps) steps of all runs at
    once. Each run's result does not depend on the slot it ran in. Returns (labels [runs, n], centers [runs, k, d])."""
    r = keys.shape[0]
    n, d = x.shape
    s = min(slots, r)
    init = jax.vmap(lambda key: kmeans_pp(key, x, w, k))(keys)
    active = w > 0
    mean = (w @ x) / jnp.sum(w)
    threshold = tol * jnp.mean((w @ (x - mean) ** 2) / jnp.sum(w))
    ids = jnp.arange(k)

    def assign(c):
        scores = _scores(x, c.reshape(s * k, d))  # all slots' centres in one matmul, then per slot
        return jnp.argmin(scores.reshape(n, s, k), axis=2).T.astype(jnp.int32)

    def update(labels, old):
        onehot = ((labels.T[:, :, None] == ids).astype(x.dtype) * w[:, None, None]).reshape(n, s * k)
        sums = (onehot.T @ x).reshape(s, k, d)
        counts = jnp.sum(onehot, axis=0).reshape(s, k)
        return jnp.where(counts[..., None] > 0, sums / jnp.maximum(counts, 1e-30)[..., None], old)

    def step(state):
        run, fresh, labels, old, it, queued, out_labels, out_c = state
        c = jnp.where(fresh[:, None, None], old, update(labels, old))  # a fresh slot holds its run's init
        new = assign(c)
        moved = jnp.sum((c - old) ** 2, axis=(1, 2))
        converged = jnp.all((new == labels) | ~active[None, :], axis=1) | (moved <= threshold) | (it + 1 >= max_iter)
        finished = (run < r) & jnp.where(fresh, max_iter <= 0, converged)
        it = jnp.where(fresh, 0, it + 1)
        stored = jnp.where(finished, run, r)  # index r: not stored (dropped)
        out_labels = out_labels.at[stored].set(new, mode="drop")
        out_c = out_c.at[stored].set(c, mode="drop")
        following = queued + jnp.cumsum(finished, dtype=jnp.int32) - 1  # finished slots take the next runs in order
        run = jnp.where(finished, jnp.where(following < r, following, r), run)
        fresh = finished & (run < r)
        c = jnp.where(fresh[:, None, None], init[jnp.minimum(run, r - 1)], c)
        return run, fresh, new, c, it, queued + jnp.sum(finished, dtype=jnp.int32), out_labels, out_c

    def running(state):
        return jnp.any(state[0] < r)

    start = (jnp.arange(s, dtype=jnp.int32), jnp.ones(s, bool), jnp.zeros((s, n), jnp.int32), init[:s],
             jnp.zeros(s, jnp.int32), jnp.int32(s), jnp.zeros((r, n), jnp.int32), init)
    *_, labels, c = jax.lax.while_loop(running, step, start)
    return labels, c


@partial(jax.jit, static_argnames=("k", "batch_size", "steps", "n_init"))
def minibatch_kmeans(key, x, k: int, batch_size: int = 1024, steps: int = 100, n_init: int = 10, rows=None):
    """Unweighted mini-batch k-means (Sculley 2010) as scikit-learn's `MiniBatchKMeans`, with a fixed step count.

    Init (as sklearn's `n_init`): `n_init` candidate k-means++ inits on one random sample of
    init_size = min(3 * batch_size, n) points drawn with replacement (sklearn draws a sample per candidate; one
    shared sample lets the candidates' distance updates share one matmul); the candidate with the lowest
    inertia on a second random validation sample of init_size points is kept. Then `steps` steps, each drawing
    b = min(batch_size, n) points at random (with replacement), assigning them to their nearest centre and
    moving every centre that received points to the weighted mean of its old position (weight: its count so far)
    and its batch points, i.e. towards each point with a per-centre learning rate 1 / count (sklearn's
    `_mini_batch_step`; sklearn's random reassignment of near-empty centres and its early stopping are not
    done). Finally every point is assigned to its nearest centre. Distances by matmul in the input dtype.

    `rows` (traced, default all): only the first `rows` rows of x are points; the rest is padding, never drawn, and
    labelled like any row (the caller leaves those labels out). The sample sizes come from x's shape, so a padded
    x must hold at least 3 x batch_size points: then every draw is the one the unpadded points would get, and one
    compiled program serves every number of points up to x's rows. Returns (labels [rows of x], centers [k, d])."""
    n, d = x.shape
    b = min(batch_size, n)
    m = min(3 * batch_size, n)
    n = n if rows is None else rows
    key_init, key_valid, key_steps = jax.random.split(key, 3)

    key_sample, key_init = jax.random.split(key_init)
    sample = x[jax.random.randint(key_sample, (m,), 0, n)]
    cands = jax.vmap(lambda key: kmeans_pp(key, sample, jnp.ones(m, x.dtype), k))(jax.random.split(key_init, n_init))
    valid = x[jax.random.randint(key_valid, (m,), 0, n)]
    valid_sq = jnp.sum(valid * valid, axis=1)
    inertia = jax.vmap(lambda c: jnp.sum(jnp.min(_sq_dists(valid, valid_sq, c), axis=1)))(cands)
    centers = cands[jnp.argmin(inertia)]
    ids = jnp.arange(k)
    batches = jax.random.randint(key_steps, (max(steps, 1), b), 0, n)

    def step(i, state):
        centers, counts = state
        xb = x[batches[i]]
        labels = nearest(xb, centers)
        onehot = (labels[:, None] == ids).astype(x.dtype)
        batch_counts = jnp.sum(onehot, axis=0)
        new_counts = counts + batch_counts
        moved = (centers * counts[:, None] + onehot.T @ xb) / jnp.maximum(new_counts, 1.0)[:, None]
        return jnp.where(batch_counts[:, None] > 0, moved, centers), new_counts

    centers, _ = jax.lax.fori_loop(0, steps, step, (centers, jnp.zeros(k, x.dtype)))
    labels = nearest(x, centers)
    return labels, centers
