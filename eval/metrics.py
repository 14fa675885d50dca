"""Embedding metrics of the paper's section IV, vectorised in JAX (jitted; batched over emotions and seeds).

All functions take NumPy or JAX arrays of L2-normalised embeddings (rows) and return Python floats / NumPy arrays.
They run with JAX 64-bit types enabled (see x64.py): the means, the factorisations and every reduction whose
result is reported are float64; the products over the rows keep the input dtype (float32: on CPU a float64 pass
costs several times more) and are accumulated so that their error stays far below the tests' 1e-4: the k-means
distances, the FID Gram matrices (of rows centred first) and the class sums (float32 over chunks of at most 512 rows,
float64 across chunks).

Diversity inside one set (Table IV), per emotion:
- MCD, mean cosine distance over all unordered pairs of distinct texts of the emotion. For unit vectors
  sum_{i != j} x_i . x_j = |sum_i x_i|^2 - n, so MCD = 1 - (|s|^2 - n) / (n (n - 1)): O(n d), not O(n^2 d).
  The class sums s (of the rows scaled to unit norm) come from `_class_sums`, shared with CD: float32 one-hot
  products over chunks of at most 512 rows, chunks added in float64.
- CE, cluster entropy: k-means with k = 5 (k-means++ then full-batch Lloyd, cluster.py) on the emotion's embeddings alone;
  CE is the Shannon entropy in nats of the fraction of the emotion's texts in each cluster, averaged over
  `runs` seeds. It lies in [0, ln 5 = 1.609] (the paper's 1.54-1.60 fit this reading).
- CD, centroid distance: cosine distance between emotion centroids (mean embeddings). Per emotion, the mean
  distance from its centroid to the other emotions' centroids; overall, the mean over all pairs of emotions
  (the paper's single CD figure).

Synthetic against gold (Table VI):
- FID, the Frechet distance between Gaussians fitted to the two embedding sets (means, unbiased covariances):
  |mu1 - mu2|^2 + tr S1 + tr S2 - 2 tr sqrt(S1 S2). With Cholesky factors S1 = L1 L1^T, S2 = L2 L2^T, the
  matrix S1 S2 is similar to L2^T L1 L1^T L2 = M^T M with M = L1^T L2, so the eigenvalues of S1 S2 are the squared
  singular values of M and tr sqrt(S1 S2) is the sum of M's singular values (two Cholesky factorisations and
  one SVD without vectors; a factor that does not exist, for a singular covariance, is replaced by the symmetric
  square root from `eigh`, for which the same identity holds). The cost is dominated by the two Gram matrices.
- Cluster histograms: as in prd_score.py, the larger set is first subsampled (seeded) to the size of the
  smaller, then the union is clustered with k = 20 in `runs` = 10 independent seeded runs of mini-batch k-means
  (cluster.minibatch_kmeans, as the reference's `MiniBatchKMeans(n_clusters=20, n_init=10)`: the best of 10
  k-means++ inits on a sample of 3 x 1024 points, then a fixed 100 steps on random batches of 1024 points with
  per-centre learning rate 1/count, then every point assigned to its nearest centre; the runs vmapped). In each
  run a set's histogram is the fraction of its points in each cluster. The union is padded with zero rows to
  `padded_rows` (16,384 up to that size) that are never drawn nor counted, so the counts are those of the bare
  union and one compiled program serves a report's three rows and later reports on other sets (compiling it
  took 3-6 s a shape on this machine's CPU).
- PRD (Sajjadi et al. 2018), synthetic = eval, gold = ref: the PRD curve on 1001 angles in [eps, pi/2 - eps]
  per run, precision and recall averaged over the runs, then F_8 and F_1/8 are the maxima of F_beta over that
  curve (prd_score.prd_to_max_f_beta_pair).
- KL, KL(gold || synthetic) in nats between the add-one-smoothed histograms (count + 1) / (n + k), averaged
  over runs (the smoothing keeps an empty synthetic cluster finite).
- HC, histogram cosine: cosine similarity of the two (unsmoothed) histograms, averaged over runs.
"""
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from eval.cluster import kmeans_runs, minibatch_kmeans, weighted_counts
from eval.x64 import x64

CE_CLUSTERS = 5
CE_RUNS = 10
PRD_CLUSTERS = 20
PRD_RUNS = 10
PRD_ANGLES = 1001
PRD_BETA = 8.0
PRD_BATCH = 1024
PRD_STEPS = 100
PRD_INITS = 10
UNION_ROWS = 16384  # the cluster histograms' unions are padded to a multiple of this (padded_rows)
# the fewest texts each metric is computed from: a pair (MCD; CE, which from n < k texts is at most ln n), a
# covariance (FID), one per cluster (the PRD/KL/HC histograms); `None` below that
MCD_MIN = 2
CE_MIN = 2
FID_MIN = 2
PRD_MIN = PRD_CLUSTERS
HISTOGRAM_METRICS = ("prd_f8", "prd_f1_8", "kl", "hc")


def device(x) -> jax.Array:
    """`x` as a JAX array on the default device. `jax.device_put` of a NumPy array aliases it when its buffer is
    suitably aligned and otherwise makes one plain copy (`jnp.asarray` takes a slower path, ~5x here); a JAX array
    is returned as is, so callers can place a set once and pass it to every metric."""
    return x if isinstance(x, jax.Array) else jax.device_put(np.asarray(x))


# ---- diversity within one set ----

SUM_CHUNK = 512  # most rows summed in float32 before the float64 accumulation


def _chunk(n: int) -> int:
    """Rows per chunk: the largest divisor of n in [SUM_CHUNK / 8, SUM_CHUNK], so the rows reshape into chunks
    without a copy; SUM_CHUNK when n has none (the rows after the last full chunk are then summed apart)."""
    return next((c for c in range(SUM_CHUNK, SUM_CHUNK // 8 - 1, -1) if n % c == 0), SUM_CHUNK)


def _class_sums(x, labels, n_classes: int, scale=None):
    """Per-class sums of the rows (each times `scale`, if given) [n_classes, d] in float64, and class sizes.
    The rows are summed in chunks (`_chunk`) by one batched float32 product with the one-hot class matrix (times
    the row scales), and the chunks' partial sums are added in float64: float64-grade sums at the cost of a
    float32 matmul (a scatter-add or a float64 product is 3-10x slower on CPU). Labels outside [0, n_classes)
    count nowhere."""
    n, d = x.shape
    chunk = _chunk(n)
    full = n - n % chunk
    onehot = labels == jnp.arange(n_classes)[:, None]  # [classes, rows]
    weights = onehot.astype(x.dtype) if scale is None else onehot * scale.astype(x.dtype)
    head_x = x if full == n else x[:full]  # slicing copies: only when n has no divisor near SUM_CHUNK
    head = jnp.einsum("cbn,bnd->bcd", weights[:, :full].reshape(n_classes, -1, chunk),
                      head_x.reshape(-1, chunk, d))
    sums = head.astype(jnp.float64).sum(0)
    if full < n:
        sums = sums + (weights[:, full:] @ x[full:]).astype(jnp.float64)
    return sums, onehot.sum(1).astype(jnp.float64)


@partial(jax.jit, static_argnames=("n_classes",))
def _mean_cosine_distance(x, labels, n_classes: int):
    # each row divided by its norm (input dtype: a float64 pass over x costs 20x more on CPU) through the one-hot
    # weights, so x itself is not rewritten
    s, n = _class_sums(x, labels, n_classes, scale=1.0 / jnp.sqrt(jnp.sum(x * x, axis=1)))
    return 1.0 - (jnp.sum(s * s, axis=1) - n) / (n * (n - 1.0))


@x64
def mean_cosine_distance(x, labels, n_classes: int) -> np.ndarray:
    """MCD per class [n_classes] (NaN for a class with fewer than 2 members)."""
    return np.asarray(_mean_cosine_distance(device(x), device(labels), n_classes))


@partial(jax.jit, static_argnames=("n_classes",))
def _centroid_distances(x, labels, n_classes: int):
    s, _ = _class_sums(x, labels, n_classes)
    c = s / jnp.linalg.norm(s, axis=1, keepdims=True)
    return 1.0 - c @ c.T


@x64
def centroid_distances(x, labels, n_classes: int) -> np.ndarray:
    """Cosine distances between class centroids [n_classes, n_classes]."""
    return np.asarray(_centroid_distances(device(x), device(labels), n_classes))


@partial(jax.jit, static_argnames=("k", "runs"))
def _class_cluster_counts(key, xb, wb, k: int, runs: int):
    keys = jax.random.split(key, runs)

    def one_class(xw):
        x, w = xw
        labels, _ = kmeans_runs(keys, x, w, k)
        return jax.vmap(lambda lab: weighted_counts(lab, w, k))(labels)

    return jax.lax.map(one_class, (xb, wb))


def _padded_classes(x: np.ndarray, labels: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows grouped by class and padded to the largest class: [C, m, d] plus 0/1 weights [C, m]."""
    counts = np.bincount(labels, minlength=n_classes)
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    pos = np.arange(len(labels)) - np.concatenate([[0], np.cumsum(counts)[:-1]])[sorted_labels]
    xb = np.zeros((n_classes, counts.max(), x.shape[1]), x.dtype)
    wb = np.zeros((n_classes, counts.max()), x.dtype)
    xb[sorted_labels, pos] = x[order]
    wb[sorted_labels, pos] = 1
    return xb, wb


@x64
def class_cluster_counts(x: np.ndarray, labels: np.ndarray, n_classes: int, k: int = CE_CLUSTERS,
                         runs: int = CE_RUNS, seed: int = 0) -> np.ndarray:
    """Cluster sizes [n_classes, runs, k] of k-means run on each class separately (one jitted call over the
    classes padded to equal size: `lax.map` over the classes, the seeds of a class batched by `kmeans_runs`)."""
    xb, wb = _padded_classes(np.asarray(x), np.asarray(labels), n_classes)
    return np.asarray(_class_cluster_counts(jax.random.key(seed), device(xb), device(wb), k, runs))


@jax.jit
def _mean_entropy(counts):
    p = counts / jnp.sum(counts, axis=-1, keepdims=True)
    return -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0), axis=-1).mean(axis=-1)


@x64
def cluster_entropy(counts: np.ndarray) -> np.ndarray:
    """CE per class from cluster sizes [n_classes, runs, k]: entropy in nats, averaged over runs."""
    return np.asarray(_mean_entropy(jnp.asarray(counts, jnp.float64)))


def _at_least(values: np.ndarray, counts: np.ndarray, minimum: int) -> list[float | None]:
    return [float(v) if n >= minimum else None for v, n in zip(values, counts)]


def diversity(x: np.ndarray, labels: np.ndarray, names: list[str], seed: int = 0) -> dict:
    """Table IV: {name: {mcd, ce, cd}} plus, under key "overall", the mean pairwise centroid distance "cd" and the
    MCD and CE of all the texts together. MCD needs MCD_MIN texts, CE CE_MIN: below that it is None."""
    c = len(names)
    counts = np.bincount(labels, minlength=c)
    xd, ld, one = device(x), device(labels), np.zeros(len(labels), labels.dtype)  # placed once for both
    mcd = _at_least(mean_cosine_distance(xd, ld, c), counts, MCD_MIN)
    ce = _at_least(cluster_entropy(class_cluster_counts(x, labels, c, seed=seed)), counts, CE_MIN)
    cd = centroid_distances(xd, ld, c)
    off = ~np.eye(c, dtype=bool)
    per = {name: {"mcd": mcd[i], "ce": ce[i], "cd": float(cd[i][off[i]].mean())} for i, name in enumerate(names)}
    n = [len(labels)]
    overall = {"cd": float(cd[off].mean()), "mcd": _at_least(mean_cosine_distance(xd, device(one), 1), n, MCD_MIN)[0],
               "ce": _at_least(cluster_entropy(class_cluster_counts(x, one, 1, seed=seed)), n, CE_MIN)[0]}
    return {"per_emotion": per, "overall": overall}


# ---- synthetic against gold ----

def _moments(x) -> tuple[np.ndarray, np.ndarray]:
    # on the host: the mean in float64; the rows centred by it in the input dtype and their Gram matrix in that
    # dtype by NumPy's `xc.T @ xc`, which BLAS computes as one symmetric rank-k update (syrk: half the work of the
    # full float32 matmul XLA did, and the FID's floor); centring first keeps its relative error ~1e-8
    x = np.asarray(x)
    mu = x.mean(axis=0, dtype=np.float64)
    xc = x - mu.astype(x.dtype)
    return mu, (xc.T @ xc).astype(np.float64) / (x.shape[0] - 1)


@jax.jit
def _frechet(mu1, s1, mu2, s2):
    d = mu1 - mu2
    l1, l2 = jnp.linalg.cholesky(s1), jnp.linalg.cholesky(s2)
    # a covariance that is only semi-definite (fewer rows than dimensions, collinear features) has no Cholesky
    # factor: fall back to its symmetric square root from `eigh`
    l1, l2 = (jax.lax.cond(jnp.all(jnp.isfinite(l)), lambda: l, lambda: _psd_root(s)) for l, s in ((l1, s1), (l2, s2)))
    trace_root = jnp.sum(jnp.linalg.svd(l1.T @ l2, compute_uv=False))
    return d @ d + jnp.trace(s1) + jnp.trace(s2) - 2.0 * trace_root


def _psd_root(s):
    w, v = jnp.linalg.eigh(s)
    return (v * jnp.sqrt(jnp.clip(w, 0.0))) @ v.T


@x64
def frechet_distance(x, y) -> float:
    """FID between the embedding sets x [n, d] and y [m, d]."""
    return float(_frechet(*_moments(x), *_moments(y)))


@partial(jax.jit, static_argnames=("k", "runs"))
def _union_counts(key, z, m, k: int, runs: int):
    # z: the m rows of x, the m rows of y, then any zero rows of padding (union_cluster_counts)
    i = jnp.arange(z.shape[0])
    wx, wy = (i < m).astype(z.dtype), ((i >= m) & (i < 2 * m)).astype(z.dtype)

    def one(key):
        labels, _ = minibatch_kmeans(key, z, k, batch_size=PRD_BATCH, steps=PRD_STEPS, n_init=PRD_INITS, rows=2 * m)
        return weighted_counts(labels, wx, k), weighted_counts(labels, wy, k)

    return jax.vmap(one)(jax.random.split(key, runs))


def padded_rows(rows: int) -> int:
    """The row count a union of `rows` points is padded to: one compiled k-means for every pair of sets up to
    UNION_ROWS points together (a report's three Table VI rows, and the next report on other sets), multiples of
    it beyond. Unions too small for the fixed sample sizes of minibatch_kmeans keep their own size."""
    if rows < 3 * PRD_BATCH:
        return rows
    return -(-rows // UNION_ROWS) * UNION_ROWS


@x64
def union_cluster_counts(x, y, k: int = PRD_CLUSTERS, runs: int = PRD_RUNS,
                         seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Counts per cluster [runs, k] of x and of y, from k-means on their balanced union (see module doc)."""
    rng = np.random.default_rng(seed)
    m = min(len(x), len(y))
    x = x if len(x) == m else x[np.sort(rng.choice(len(x), m, replace=False))]
    y = y if len(y) == m else y[np.sort(rng.choice(len(y), m, replace=False))]
    z = np.zeros((padded_rows(2 * m), x.shape[1]), np.result_type(x.dtype, y.dtype))
    z[:m], z[m:2 * m] = x, y
    cx, cy = _union_counts(jax.random.key(seed), device(z), m, k, runs)
    return np.asarray(cx), np.asarray(cy)


def _prd_curve(eval_dist, ref_dist, num_angles: int, epsilon: float = 1e-10):
    slopes = jnp.tan(jnp.linspace(epsilon, jnp.pi / 2 - epsilon, num_angles))
    precision = jnp.minimum(ref_dist[None, :] * slopes[:, None], eval_dist[None, :]).sum(axis=1)
    return precision, precision / slopes


def _max_f_beta(precision, recall, beta, epsilon: float = 1e-10):
    return jnp.max((1 + beta**2) * precision * recall / (beta**2 * precision + recall + epsilon))


@partial(jax.jit, static_argnames=("num_angles",))
def _prd(eval_counts, ref_counts, beta, num_angles: int):
    eval_dist = eval_counts / eval_counts.sum(axis=1, keepdims=True)
    ref_dist = ref_counts / ref_counts.sum(axis=1, keepdims=True)
    precision, recall = jax.vmap(lambda e, r: _prd_curve(e, r, num_angles))(eval_dist, ref_dist)
    precision, recall = precision.mean(axis=0), recall.mean(axis=0)
    return _max_f_beta(precision, recall, beta), _max_f_beta(precision, recall, 1.0 / beta), precision, recall


@x64
def prd(eval_counts: np.ndarray, ref_counts: np.ndarray, beta: float = PRD_BETA,
        num_angles: int = PRD_ANGLES) -> dict:
    """PRD from cluster counts [runs, k]: {"f_beta", "f_inv_beta", "precision", "recall"} (curves averaged
    over runs before taking the maxima, as prd_score.compute_prd_from_embedding does)."""
    f, f_inv, p, r = _prd(jnp.asarray(eval_counts, jnp.float64), jnp.asarray(ref_counts, jnp.float64),
                          beta, num_angles)
    return {"f_beta": float(f), "f_inv_beta": float(f_inv), "precision": np.asarray(p), "recall": np.asarray(r)}


@jax.jit
def _kl(p_counts, q_counts):
    k = p_counts.shape[-1]
    p = (p_counts + 1) / (p_counts.sum(axis=-1, keepdims=True) + k)
    q = (q_counts + 1) / (q_counts.sum(axis=-1, keepdims=True) + k)
    return jnp.sum(p * jnp.log(p / q), axis=-1).mean()


@x64
def kl_divergence(p_counts: np.ndarray, q_counts: np.ndarray) -> float:
    """KL(p || q) in nats of the add-one-smoothed histograms, from counts [runs, k], averaged over runs."""
    return float(_kl(jnp.asarray(p_counts, jnp.float64), jnp.asarray(q_counts, jnp.float64)))


@jax.jit
def _cosine(p, q):
    return (jnp.sum(p * q, axis=-1) / (jnp.linalg.norm(p, axis=-1) * jnp.linalg.norm(q, axis=-1))).mean()


@x64
def histogram_cosine(p_counts: np.ndarray, q_counts: np.ndarray) -> float:
    """Cosine similarity of the two histograms, from counts [runs, k], averaged over runs."""
    return float(_cosine(jnp.asarray(p_counts, jnp.float64), jnp.asarray(q_counts, jnp.float64)))


def gold_similarity(synthetic: np.ndarray, gold: np.ndarray, seed: int = 0) -> dict:
    """Table VI: {fid, prd_f8, prd_f1_8, kl, hc} of the synthetic embeddings against the gold embeddings. FID
    needs FID_MIN texts on each side, the cluster histograms PRD_MIN: below that they are None."""
    m = min(len(synthetic), len(gold))
    synthetic, gold = device(synthetic), device(gold)  # placed once for the clustering and FID
    out = {"fid": frechet_distance(synthetic, gold) if m >= FID_MIN else None}
    if m < PRD_MIN:
        return {**out, **dict.fromkeys(HISTOGRAM_METRICS)}
    cs, cg = union_cluster_counts(synthetic, gold, seed=seed)
    curve = prd(cs, cg)
    return {**out, "prd_f8": curve["f_beta"], "prd_f1_8": curve["f_inv_beta"], "kl": kl_divergence(cg, cs),
            "hc": histogram_cosine(cs, cg)}
