"""eval.metrics and eval.cluster against independent references (scipy, sklearn, a NumPy port of prd_score.py)
on identical inputs, plus hand-made cases with known answers."""
import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import linalg
from scipy.spatial.distance import pdist
from scipy.stats import entropy
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.metrics.pairwise import cosine_distances

from eval import metrics
from eval.cluster import kmeans_pp, lloyd, minibatch_kmeans

RTOL = 1e-4


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def blobs(rng, sizes, d=16, spread=0.05, centers=None):
    centers = unit(rng.normal(size=(len(sizes), d))) if centers is None else centers
    x = np.concatenate([c + spread * rng.normal(size=(n, d)) for c, n in zip(centers, sizes)])
    return unit(x).astype(np.float32), np.repeat(np.arange(len(sizes)), sizes)


# ---- references ----

def fid_reference(x, y):
    """pytorch-fid: calculate_frechet_distance on np.mean / np.cov(rowvar=False) statistics."""
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x.astype(np.float64), rowvar=False), np.cov(y.astype(np.float64), rowvar=False)
    covmean = linalg.sqrtm(s1.dot(s2))
    if not np.isfinite(covmean).all():
        offset = np.eye(s1.shape[0]) * 1e-6
        covmean = linalg.sqrtm((s1 + offset).dot(s2 + offset))
    covmean = covmean.real
    diff = mu1 - mu2
    return diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)


def prd_reference(eval_labels_runs, ref_labels_runs, k, num_angles=1001, beta=8, epsilon=1e-10):
    """NumPy port of prd_score.py (compute_prd, _cluster_into_bins's histograms, the mean over runs,
    prd_to_max_f_beta_pair), fed with given cluster labels instead of its own MiniBatchKMeans."""
    precisions, recalls = [], []
    for eval_labels, ref_labels in zip(eval_labels_runs, ref_labels_runs):
        eval_dist = np.histogram(eval_labels, bins=k, range=[0, k], density=True)[0]
        ref_dist = np.histogram(ref_labels, bins=k, range=[0, k], density=True)[0]
        slopes_2d = np.expand_dims(np.tan(np.linspace(epsilon, np.pi / 2 - epsilon, num=num_angles)), 1)
        precision = np.minimum(np.expand_dims(ref_dist, 0) * slopes_2d, np.expand_dims(eval_dist, 0)).sum(axis=1)
        precisions.append(precision)
        recalls.append(precision / slopes_2d[:, 0])
    precision, recall = np.mean(precisions, axis=0), np.mean(recalls, axis=0)

    def f_beta(b):
        return (1 + b**2) * (precision * recall) / ((b**2 * precision) + recall + epsilon)
    return np.max(f_beta(beta)), np.max(f_beta(1 / beta)), precision, recall


def rel(a, b):
    return np.max(np.abs(np.asarray(a) - np.asarray(b)) / np.maximum(np.abs(np.asarray(b)), 1e-12))


# ---- FID ----

def test_fid_matches_pytorch_fid_reference():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(32, 32)) / 6
    x = unit(rng.normal(size=(600, 32)) @ a + 0.3).astype(np.float32)
    y = unit(rng.normal(size=(500, 32)) @ a.T + 0.2 * rng.normal(size=32)).astype(np.float32)
    assert rel(metrics.frechet_distance(x, y), fid_reference(x, y)) < RTOL


def test_fid_identical_sets_is_zero_and_a_shift_costs_its_squared_length():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 12)).astype(np.float64)
    assert abs(metrics.frechet_distance(x, x)) < 1e-9
    delta = rng.normal(size=12)
    assert metrics.frechet_distance(x, x + delta) == pytest.approx(delta @ delta, rel=1e-9)


def test_fid_with_a_singular_covariance_falls_back_to_the_symmetric_root():
    """20 rows in 32 dimensions: S1 has rank 19 and no Cholesky factor. FID must still equal the definition,
    tr sqrt(S1 S2) = sum of sqrt(eig(S1^1/2 S2 S1^1/2)), computed here with NumPy float64."""
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(20, 32)), rng.normal(size=(300, 32)) * 0.5 + 0.1
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    w, v = np.linalg.eigh(s1)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    trace_root = np.sqrt(np.clip(np.linalg.eigvalsh(root @ s2 @ root), 0, None)).sum()
    diff = x.mean(0) - y.mean(0)
    expected = diff @ diff + np.trace(s1) + np.trace(s2) - 2 * trace_root
    got = metrics.frechet_distance(x, y)
    assert np.isfinite(got) and got == pytest.approx(expected, rel=1e-6)


# ---- PRD / KL / HC on identical cluster assignments ----

@pytest.fixture(scope="module")
def assignments():
    """Cluster labels of two overlapping sets from the reference's own clustering (MiniBatchKMeans), 10 runs."""
    rng = np.random.default_rng(2)
    centers = unit(rng.normal(size=(5, 16)))
    x, _ = blobs(rng, [150, 100, 50, 100, 0], centers=centers, spread=0.3)
    y, _ = blobs(rng, [80, 120, 100, 40, 60], centers=centers, spread=0.3)
    z = np.vstack([x, y])
    runs = [MiniBatchKMeans(n_clusters=20, n_init=3, random_state=r).fit(z).labels_ for r in range(10)]
    return [lab[:len(x)] for lab in runs], [lab[len(x):] for lab in runs]


def counts(labels_runs, k=20):
    return np.stack([np.bincount(lab, minlength=k) for lab in labels_runs])


def test_prd_matches_numpy_port_of_prd_score(assignments):
    ev, rf = assignments
    f8, f18, p_ref, r_ref = prd_reference(ev, rf, 20)
    got = metrics.prd(counts(ev), counts(rf))
    assert 0 < f8 < 1 and 0 < f18 < 1
    assert rel(got["f_beta"], f8) < RTOL and rel(got["f_inv_beta"], f18) < RTOL
    assert rel(got["precision"], p_ref) < RTOL and np.max(np.abs(got["recall"] - r_ref)) < 1e-9


def test_kl_and_histogram_cosine_match_scipy(assignments):
    ev, rf = assignments
    ce, cr = counts(ev), counts(rf)
    smooth = lambda c: (c + 1) / (c.sum() + len(c))  # noqa: E731
    kl_ref = np.mean([entropy(smooth(p), smooth(q)) for p, q in zip(cr, ce)])
    hc_ref = np.mean([1 - pdist(np.stack([p, q]), "cosine")[0] for p, q in zip(ce, cr)])
    assert kl_ref > 0.01
    assert rel(metrics.kl_divergence(cr, ce), kl_ref) < RTOL
    assert rel(metrics.histogram_cosine(ce, cr), hc_ref) < RTOL


def test_histogram_metrics_known_answers():
    same = np.array([[5, 0, 3, 2]] * 3)
    assert metrics.histogram_cosine(same, same) == pytest.approx(1.0)
    assert metrics.kl_divergence(same, same) == pytest.approx(0.0, abs=1e-12)
    assert metrics.prd(same, same)["f_beta"] == pytest.approx(1.0, abs=1e-6)
    disjoint_a, disjoint_b = np.array([[4, 6, 0, 0]]), np.array([[0, 0, 7, 3]])
    assert metrics.prd(disjoint_a, disjoint_b)["f_beta"] == 0.0
    assert metrics.histogram_cosine(disjoint_a, disjoint_b) == 0.0


def test_gold_similarity_end_to_end_identical_and_disjoint_sets():
    rng = np.random.default_rng(4)
    x, _ = blobs(rng, [100, 100, 100], d=8)
    same = metrics.gold_similarity(x, x)
    assert abs(same["fid"]) < 1e-6 and same["hc"] == pytest.approx(1.0) and same["kl"] == pytest.approx(0, abs=1e-12)
    assert same["prd_f8"] == pytest.approx(1.0, abs=1e-6)
    # two sets in orthogonal subspaces: no k-means cluster can hold points of both
    a, _ = blobs(rng, [100, 100, 100], d=4)
    b, _ = blobs(rng, [150, 150], d=4)
    zeros = np.zeros_like(a)
    apart = metrics.gold_similarity(np.hstack([a, zeros]), np.hstack([zeros[:300], b]))
    assert apart["prd_f8"] == 0.0 and apart["prd_f1_8"] == 0.0 and apart["hc"] == 0.0 and apart["fid"] > 1.0


def test_union_cluster_counts_balances_and_is_deterministic():
    rng = np.random.default_rng(5)
    x, _ = blobs(rng, [60, 60], d=8)
    y, _ = blobs(rng, [200, 100], d=8)
    cx, cy = metrics.union_cluster_counts(x, y, k=6, runs=3)
    assert cx.shape == cy.shape == (3, 6)
    assert (cx.sum(1) == 120).all() and (cy.sum(1) == 120).all()
    cx2, cy2 = metrics.union_cluster_counts(x, y, k=6, runs=3)
    assert (cx == cx2).all() and (cy == cy2).all()



def test_padded_unions_give_the_unpadded_counts_from_one_compiled_program():
    # two pairs of sizes in one padding bucket: the counts are those of k-means on the bare union (the same draws,
    # the padding never sampled nor counted), and the second pair runs the program compiled for the first
    rng = np.random.default_rng(7)
    key, compiled = jax.random.key(0), []
    for m in (1600, 2300):
        x, y = (unit(rng.normal(size=(m, 8)) + rng.normal(size=8)).astype(np.float32) for _ in range(2))
        assert metrics.padded_rows(2 * m) == metrics.UNION_ROWS
        with jax.enable_x64(True):
            bare = metrics._union_counts(key, np.concatenate([x, y]), m, k=6, runs=2)
        padded = metrics.union_cluster_counts(x, y, k=6, runs=2, seed=0)
        compiled.append(metrics._union_counts._cache_size())
        assert [c.tolist() for c in padded] == [np.asarray(c).tolist() for c in bare]
        assert (padded[0].sum(1) == m).all() and (padded[1].sum(1) == m).all()
    assert compiled[1] == compiled[0] + 1  # the second bare union is a new shape, its padded union is not
    assert metrics.padded_rows(3 * metrics.PRD_BATCH - 1) == 3 * metrics.PRD_BATCH - 1  # too small to pad
    assert metrics.padded_rows(metrics.UNION_ROWS + 1) == 2 * metrics.UNION_ROWS


# ---- diversity ----

@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_mean_cosine_distance_matches_pdist(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(60, 8)).astype(np.float32) + rng.normal(size=8).astype(np.float32)
    labels = np.concatenate([np.arange(3), rng.integers(0, 3, 57)])
    ref = [pdist(x[labels == c].astype(np.float64), "cosine").mean() if (labels == c).sum() > 1 else np.nan
           for c in range(3)]
    got = metrics.mean_cosine_distance(x, labels, 3)
    ok = ~np.isnan(ref)
    assert rel(got[ok], np.array(ref)[ok]) < RTOL
    assert np.isnan(got[~ok]).all()


def test_centroid_distances_match_sklearn():
    rng = np.random.default_rng(6)
    x, labels = blobs(rng, [30, 50, 20, 40], spread=0.5)
    centroids = np.stack([x[labels == c].astype(np.float64).mean(0) for c in range(4)])
    # the class sums are float32 within chunks of <= 512 rows (float64 across chunks): ~1e-7, far inside RTOL
    assert np.max(np.abs(metrics.centroid_distances(x, labels, 4) - cosine_distances(centroids))) < 1e-6


def test_class_sums_cross_chunks_and_skip_padding():
    """More rows than one chunk, not a multiple of it (the rows after the last full chunk are summed apart): every
    class sum equals float64 NumPy's, and an empty class sums to zero."""
    rng = np.random.default_rng(9)
    n = 3 * metrics.SUM_CHUNK + 17  # no divisor in [64, 512]: the tail is summed apart
    assert metrics._chunk(n) == metrics.SUM_CHUNK and metrics._chunk(20_000) == 500
    x = rng.normal(size=(n, 5)).astype(np.float32)
    labels = rng.integers(0, 3, n)  # class 3 is empty
    with jax.enable_x64(True):
        s, counts = jax.jit(metrics._class_sums, static_argnums=2)(x, labels, 4)
    ref = np.stack([x[labels == c].astype(np.float64).sum(0) for c in range(4)])
    assert np.allclose(np.asarray(s), ref, rtol=0, atol=1e-4)
    assert np.asarray(counts).tolist() == np.bincount(labels, minlength=4).tolist()


def test_cluster_entropy_matches_scipy_on_the_same_counts():
    c = np.random.default_rng(7).integers(0, 40, size=(3, 4, 5))
    c[0, 0] = [10, 0, 0, 5, 0]
    ref = [np.mean([entropy(run) for run in cls]) for cls in c]
    assert rel(metrics.cluster_entropy(c), ref) < RTOL


def test_cluster_entropy_finds_known_blobs_in_padded_classes():
    """Two classes of different sizes, each made of 5 tight, far-apart blobs of known sizes: k=5 k-means must
    recover the blobs, so CE is the entropy of the blob sizes (padding rows must not count)."""
    rng = np.random.default_rng(8)
    centers = np.eye(16)[:5] * 1.0
    sizes = [[40, 30, 20, 6, 4], [10, 10, 10, 10, 10]]
    # spread 0.001: k-means++ then puts a second centre into an already chosen blob with probability ~1e-4 per draw
    # (at 0.01 it is ~1% per draw, and such a run can end in a local optimum that splits a blob)
    xa, _ = blobs(rng, sizes[0], centers=centers, spread=0.001)
    xb, _ = blobs(rng, sizes[1], centers=centers, spread=0.001)
    x = np.concatenate([xa, xb])
    labels = np.repeat([0, 1], [100, 50])
    got = metrics.cluster_entropy(metrics.class_cluster_counts(x, labels, 2, k=5, runs=4))
    assert rel(got, [entropy(sizes[0]), entropy(sizes[1])]) < RTOL
    assert got[1] == pytest.approx(np.log(5))


def test_diversity_shape():
    rng = np.random.default_rng(9)
    x, labels = blobs(rng, [30, 40, 25])
    d = metrics.diversity(x, labels, ["joy", "fear", "anger"])
    assert set(d["per_emotion"]) == {"joy", "fear", "anger"}
    assert all(set(v) == {"mcd", "ce", "cd"} for v in d["per_emotion"].values())
    assert 0 < d["overall"]["cd"] <= 2


# ---- the clustering itself ----

@pytest.mark.parametrize("max_iter", [0, 2, 300])
def test_kmeans_runs_queue_gives_each_runs_own_lloyd_result(max_iter):
    """7 runs through 3 slots (runs converge after different step counts, so slots are refilled at different
    times; some points carry weight 0): every run's labels and centres equal `lloyd` from its own k-means++ init."""
    from eval.cluster import kmeans_runs
    rng = np.random.default_rng(12)
    x, _ = blobs(rng, [60, 50, 40, 30], d=8, spread=0.6)
    w = np.where(rng.random(len(x)) < 0.1, 0.0, 1.0).astype(np.float32)
    keys = jax.random.split(jax.random.key(5), 7)
    with jax.enable_x64(True):
        labels, centers = kmeans_runs(keys, x, w, 5, max_iter=max_iter, slots=3)
        for i, key in enumerate(keys):
            own_labels, own_centers = lloyd(x, w, kmeans_pp(key, x, w, 5), max_iter=max_iter)
            assert (np.asarray(labels[i]) == np.asarray(own_labels)).all()
            assert np.allclose(np.asarray(centers[i]), np.asarray(own_centers), rtol=1e-6, atol=1e-6)


def test_lloyd_gives_sklearn_lloyd_labels_from_the_same_init():
    rng = np.random.default_rng(10)
    x, _ = blobs(rng, [80, 60, 90, 70], d=8, spread=0.4)
    x = x.astype(np.float64)
    with jax.enable_x64(True):
        init = np.asarray(kmeans_pp(jax.random.key(0), x, np.ones(len(x)), 6))
        labels, centers = (np.asarray(a) for a in lloyd(x, np.ones(len(x)), init, tol=0.0))
    ref = KMeans(n_clusters=6, init=init, n_init=1, tol=0.0, algorithm="lloyd").fit(x)
    assert (labels == ref.labels_).all()
    assert np.max(np.abs(centers - ref.cluster_centers_)) < 1e-9


def test_kmeans_pp_ignores_zero_weight_points():
    x = np.vstack([np.zeros((5, 2)), np.full((5, 2), 100.0)]).astype(np.float32)
    w = np.array([1] * 5 + [0] * 5, np.float32)
    centers = np.asarray(kmeans_pp(jax.random.key(1), x, w, 3))
    assert (centers == 0).all()


def test_minibatch_kmeans_recovers_separated_blobs_and_drives_prd_end_to_end():
    rng = np.random.default_rng(11)
    x, truth = blobs(rng, [100] * 20, d=32, spread=0.01)
    keys = jax.random.split(jax.random.key(3), 4)
    run = jax.jit(jax.vmap(lambda key: minibatch_kmeans(key, x, 20, batch_size=256, steps=40)[0]))
    labels = np.asarray(run(keys))
    assert (labels == np.asarray(run(keys))).all()  # deterministic from the seed
    for lab in labels:  # each blob is exactly one cluster, and no two blobs share one
        assert all(len(set(lab[truth == b])) == 1 for b in range(20))
        assert len(set(lab)) == 20
    # end to end through the mini-batch clustering (union larger than a 1024 batch)
    same = metrics.gold_similarity(x, x)
    assert same["prd_f8"] == pytest.approx(1.0, abs=1e-6) and same["prd_f1_8"] == pytest.approx(1.0, abs=1e-6)
    assert same["hc"] == pytest.approx(1.0) and same["kl"] == pytest.approx(0, abs=1e-12)
    # two sets of 11 blobs in all (fewer than the 20 clusters) in orthogonal subspaces: no cluster holds both
    a, _ = blobs(rng, [300] * 5, d=16, spread=0.02)
    b, _ = blobs(rng, [250] * 6, d=16, spread=0.02)
    zeros = np.zeros_like(a)
    apart = metrics.gold_similarity(np.hstack([a, zeros]), np.hstack([zeros, b]))
    assert apart["prd_f8"] == 0.0 and apart["prd_f1_8"] == 0.0 and apart["hc"] == 0.0
