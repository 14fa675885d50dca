"""Each JAX metric of eval.metrics against its reference implementation at n = 20,000 x 384 (CPU).

    .venv/bin/python benchmarks/bench_metrics.py [--n 20000] [--dim 384] [--repeats 3]

Prints, per metric, the warm time of the JAX version and the time of the reference (scipy / scikit-learn / NumPy),
each the median of --repeats calls made alternately (JAX, reference, JAX, ...; after one compiling JAX call), so a
change in machine load hits both; their ratio; and the largest relative disagreement. The embeddings are placed on
the JAX device once, as `eval.report` does, and every JAX metric reads that copy.
For FID and CD it also prints a floor, work every exact method must do, timed with NumPy: for FID the two Gram
matrices (OpenBLAS `syrk`, float32), for CD one read of the embeddings (column sums); reference time / floor bounds
the speed-up any implementation can reach here.
The clustering metrics (CE, PRD, KL, HC) are compared on identical cluster assignments (the reference's own
clustering fed to both), since the JAX k-means is not scikit-learn's; their end-to-end difference, and the label
agreement of the JAX Lloyd steps with sklearn's from the same initial centres, are printed as well.
"""
import argparse
import statistics
import sys
import time
import timeit
from pathlib import Path

import jax
import numpy as np
from scipy import linalg
from scipy.spatial.distance import pdist
from scipy.stats import entropy
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.metrics.pairwise import cosine_distances

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from eval import metrics  # noqa: E402
from eval.cluster import kmeans_pp, lloyd  # noqa: E402

CLASSES = 6


def data(n: int, d: int, seed: int):
    """Two unit-norm Gaussian mixtures over the same 6 centres with different class shares and shapes."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(CLASSES, d))
    mix = rng.normal(size=(d, d)) / np.sqrt(d)

    def sample(shares, scale):
        labels = rng.choice(CLASSES, size=n, p=shares)
        x = centers[labels] + scale * rng.normal(size=(n, d)) @ mix
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), labels
    x, labels = sample(np.full(CLASSES, 1 / CLASSES), 1.5)
    y, _ = sample(np.array([0.3, 0.25, 0.15, 0.1, 0.1, 0.1]), 1.8)
    return x, labels, y


def paired(ours, reference, repeats):
    """Median times of `ours` (warm: one untimed call first) and `reference`, called alternately; their outputs."""
    ours()
    t_ours, t_ref = [], []
    for _ in range(repeats):
        for fn, times in ((ours, t_ours), (reference, t_ref)):
            t = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t)
            if fn is ours:
                got = out
            else:
                ref = out
    return statistics.median(t_ours), got, statistics.median(t_ref), ref


def rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)))


# ---- references ----

def mcd_reference(x, labels):
    return np.array([pdist(x[labels == c].astype(np.float64), "cosine").mean() for c in range(CLASSES)])


def cd_reference(x, labels):
    return cosine_distances(np.stack([x[labels == c].astype(np.float64).mean(0) for c in range(CLASSES)]))


def fid_reference(x, y):
    """pytorch-fid calculate_frechet_distance on np.cov statistics."""
    s1, s2 = np.cov(x.astype(np.float64), rowvar=False), np.cov(y.astype(np.float64), rowvar=False)
    covmean = linalg.sqrtm(s1.dot(s2)).real
    diff = x.astype(np.float64).mean(0) - y.astype(np.float64).mean(0)
    return diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)


def ce_reference(x, labels, k=metrics.CE_CLUSTERS, runs=metrics.CE_RUNS):
    """sklearn KMeans (k-means++, one init, Lloyd) per class and seed; scipy entropy of the cluster sizes."""
    counts = np.stack([[np.bincount(KMeans(k, n_init=1, random_state=r).fit(x[labels == c]).labels_, minlength=k)
                        for r in range(runs)] for c in range(CLASSES)])
    return np.array([np.mean([entropy(run) for run in cls]) for cls in counts]), counts


def prd_reference(x, y, k=metrics.PRD_CLUSTERS, runs=metrics.PRD_RUNS, num_angles=metrics.PRD_ANGLES,
                  beta=metrics.PRD_BETA, epsilon=1e-10):
    """NumPy port of prd_score.compute_prd_from_embedding + prd_to_max_f_beta_pair, with scipy KL and the
    histogram cosine on the same clusterings. Returns the scores and the per-run cluster counts."""
    z = np.vstack([x, y]).astype(np.float64)
    precisions, recalls, cx, cy = [], [], [], []
    for r in range(runs):
        lab = MiniBatchKMeans(n_clusters=k, n_init=10, random_state=r).fit(z).labels_
        ex, ey = np.bincount(lab[:len(x)], minlength=k), np.bincount(lab[len(x):], minlength=k)
        cx.append(ex)
        cy.append(ey)
        eval_dist = np.histogram(lab[:len(x)], bins=k, range=[0, k], density=True)[0]
        ref_dist = np.histogram(lab[len(x):], bins=k, range=[0, k], density=True)[0]
        slopes = np.tan(np.linspace(epsilon, np.pi / 2 - epsilon, num=num_angles))
        precision = np.minimum(ref_dist[None, :] * slopes[:, None], eval_dist[None, :]).sum(axis=1)
        precisions.append(precision)
        recalls.append(precision / slopes)
    p, rc = np.mean(precisions, axis=0), np.mean(recalls, axis=0)
    f = lambda b: np.max((1 + b**2) * p * rc / (b**2 * p + rc + epsilon))  # noqa: E731
    cx, cy = np.array(cx), np.array(cy)
    smooth = lambda c: (c + 1) / (c.sum() + k)  # noqa: E731
    kl = np.mean([entropy(smooth(b), smooth(a)) for a, b in zip(cx, cy)])
    hc = np.mean([1 - pdist(np.stack([a, b]), "cosine")[0] for a, b in zip(cx, cy)])
    return {"prd_f8": f(beta), "prd_f1_8": f(1 / beta), "kl": kl, "hc": hc}, cx, cy


def jax_histogram_metrics(x, y):
    cx, cy = metrics.union_cluster_counts(x, y)
    curve = metrics.prd(cx, cy)
    return {"prd_f8": curve["f_beta"], "prd_f1_8": curve["f_inv_beta"], "kl": metrics.kl_divergence(cy, cx),
            "hc": metrics.histogram_cosine(cx, cy)}


def lloyd_agreement(x, y, k=metrics.PRD_CLUSTERS, seed=0):
    """Share of identical labels: JAX Lloyd vs sklearn KMeans(lloyd, tol=0) from the same k-means++ centres."""
    z = np.vstack([x, y])
    with jax.enable_x64(True):
        w = np.ones(len(z), np.float32)
        init = kmeans_pp(jax.random.key(seed), z, w, k)
        labels, _ = lloyd(z, w, init, tol=0.0)
    ref = KMeans(k, init=np.asarray(init, np.float64), n_init=1, tol=0.0, algorithm="lloyd").fit(z.astype(np.float64))
    return float(np.mean(np.asarray(labels) == ref.labels_))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", choices=("mcd", "cd", "ce", "fid", "prd"), nargs="+",
                    help="just these metrics (default: all)")
    args = ap.parse_args()
    chosen = set(args.only or ("mcd", "cd", "ce", "fid", "prd"))
    x, labels, y = data(args.n, args.dim, seed=0)
    print(f"n = {args.n} x {args.dim}, {CLASSES} classes; jax {jax.__version__} on {jax.devices()[0].platform}")
    rows = []

    def row(name, t_jax, t_ref, disagreement, note=""):
        rows.append((name, t_jax, t_ref, t_ref / t_jax, disagreement, note))
        print(f"{name:<26} jax {t_jax:8.3f} s   ref {t_ref:8.3f} s   speed-up {t_ref / t_jax:7.1f}x   "
              f"max rel. disagreement {disagreement:.1e}  {note}", flush=True)

    xd, ld, yd = metrics.device(x), metrics.device(labels), metrics.device(y)
    if "mcd" in chosen:
        t_j, got, t_r, ref = paired(lambda: metrics.mean_cosine_distance(xd, ld, CLASSES),
                                    lambda: mcd_reference(x, labels), args.repeats)
        row("MCD (scipy pdist)", t_j, t_r, rel(got, ref))

    if "cd" in chosen:
        t_j, got, t_r, ref = paired(lambda: metrics.centroid_distances(xd, ld, CLASSES),
                                    lambda: cd_reference(x, labels), args.repeats)
        off = ~np.eye(CLASSES, dtype=bool)
        row("CD (sklearn cosine)", t_j, t_r, rel(got[off], ref[off]))
        floor = min(timeit.repeat(lambda: x.sum(axis=0), number=1, repeat=args.repeats))
        print(f"CD floor: one read of the embeddings (NumPy column sums) takes {floor:.4f} s, so no method can be more "
              f"than {t_r / floor:.1f}x faster than this reference here")

    if "ce" in chosen:
        t_j, got, t_r, (ref, ref_counts) = paired(
            lambda: metrics.cluster_entropy(metrics.class_cluster_counts(x, labels, CLASSES)),
            lambda: ce_reference(x, labels), args.repeats)
        row("CE (sklearn KMeans+scipy)", t_j, t_r, rel(metrics.cluster_entropy(ref_counts), ref),
            f"[same counts; end-to-end {rel(got, ref):.1e}]")

    if "fid" in chosen:
        t_j, got, t_r, ref = paired(lambda: metrics.frechet_distance(xd, yd), lambda: fid_reference(x, y), args.repeats)
        row("FID (scipy sqrtm)", t_j, t_r, rel(got, ref))
        xc, yc = x - x.mean(0), y - y.mean(0)
        floor = min(timeit.repeat(lambda: (xc.T @ xc, yc.T @ yc), number=1, repeat=args.repeats))
        print(f"FID floor: the two float32 Gram matrices by NumPy/OpenBLAS syrk take {floor:.3f} s, so no exact method "
              f"can be more than {t_r / floor:.1f}x faster than this reference here")
        ours, gram = [], []
        for _ in range(max(args.repeats, 5)):  # alternating, so a change of load hits both alike
            ours.append(min(timeit.repeat(lambda: metrics.frechet_distance(xd, yd), number=1, repeat=1)))
            gram.append(min(timeit.repeat(lambda: (xc.T @ xc, yc.T @ yc), number=1, repeat=1)))
        print(f"FID / its Gram floor, alternating, medians of {len(ours)}: {statistics.median(ours):.3f} s / "
              f"{statistics.median(gram):.3f} s = {statistics.median(ours) / statistics.median(gram):.2f}x (goal <= 2)")

    if "prd" in chosen:
        t_j, got, t_r, (ref, cx, cy) = paired(lambda: jax_histogram_metrics(xd, yd), lambda: prd_reference(x, y),
                                              args.repeats)
        same = metrics.prd(cx, cy)
        same = {"prd_f8": same["f_beta"], "prd_f1_8": same["f_inv_beta"], "kl": metrics.kl_divergence(cy, cx),
                "hc": metrics.histogram_cosine(cx, cy)}
        for key in ("prd_f8", "prd_f1_8", "kl", "hc"):
            row(f"{key} (prd_score/scipy)", t_j, t_r, rel(same[key], ref[key]),
                f"[same counts; end-to-end {rel(got[key], ref[key]):.1e}: {got[key]:.4f} vs {ref[key]:.4f}]")
        print(f"JAX Lloyd vs sklearn Lloyd from the same k-means++ centres (k=20, union of both sets): "
              f"{lloyd_agreement(x, y):.4%} identical labels")
        print("(PRD/KL/HC timings are one shared pipeline: k-means on the union x 10 runs, then all four scores)")


if __name__ == "__main__":
    main()
