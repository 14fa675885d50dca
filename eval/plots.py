"""The report's figures as PNG files (written atomically): t-SNE of the embeddings coloured by emotion (the
paper's Fig. 2) and the classifier's confusion matrix (Fig. 3). The drawing is matplotlib's and stays on the
calling thread; only the t-SNE coordinates may be computed on a worker (eval.parallel)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.manifold import TSNE  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from common.files import write_png  # noqa: E402


ANGLE = 0.7  # Barnes-Hut's trade-off: 3,000 CARER texts in 12.6 s against 17.6 s at 0.5, as trustworthy (README)


def spread(values: list[float], gap: float, lo: float, hi: float) -> list[float]:
    """Label positions near `values` (in their order) at least `gap` apart within [lo, hi] (when they fit): sorted,
    pushed up past their lower neighbour, then down below their upper one."""
    order = np.argsort(values, kind="stable")
    y = np.clip(np.asarray(values, float)[order], lo, hi)
    for i in range(1, len(y)):
        y[i] = max(y[i], y[i - 1] + gap)
    y[-1:] = np.minimum(y[-1:], hi)
    for i in range(len(y) - 2, -1, -1):
        y[i] = min(y[i], y[i + 1] - gap)
    out = np.empty_like(y)
    out[order] = y
    return out.tolist()


def tsne_coordinates(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D t-SNE (PCA init, perplexity min(30, (n - 1) / 3), Barnes-Hut angle ANGLE) of the embeddings, on one
    thread: with the several OpenMP runtimes this process loads (torch, LightGBM, scikit-learn), two threads spin
    against each other and ran 15x slower (eval.parallel runs it beside the other pieces instead).
    scikit-learn's Barnes-Hut t-SNE: on 3,000 CARER texts (one thread, load ~3) it took 15.4 s, openTSNE 1.0.4
    26.2 s (FFT gradients) or 13.2 s (Barnes-Hut, trustworthiness 0.899 against 0.911), too little to add a
    dependency for."""
    with threadpool_limits(1):
        return TSNE(n_components=2, perplexity=min(30.0, (len(x) - 1) / 3), init="pca", angle=ANGLE,
                    random_state=seed).fit_transform(x)


def tsne_png(path: Path, xy: np.ndarray, codes: np.ndarray, names: list[str]) -> None:
    """The t-SNE coordinates `xy` (tsne_coordinates), one colour per emotion."""
    fig, ax = plt.subplots(figsize=(7, 6))
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    for i, name in enumerate(names):
        sel = codes == i
        ax.scatter(xy[sel, 0], xy[sel, 1], s=6, alpha=0.7, color=cmap(i % cmap.N), label=name)
    ax.set_title("t-SNE of sentence embeddings")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(markerscale=3, fontsize=8, loc="best")
    write_png(path, fig)


def confusion_png(path: Path, matrix: list[list[int]], names: list[str]) -> None:
    """Confusion matrix (rows: true emotion, columns: predicted), counts annotated."""
    m = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * len(names), 0.6 + 0.8 * len(names)))
    ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i, j in np.ndindex(m.shape):
        ax.text(j, i, str(m[i, j]), ha="center", va="center",
                color="white" if m[i, j] > m.max() / 2 else "black", fontsize=8)
    ax.set_title("LightGBM confusion matrix (20 % hold-out)")
    write_png(path, fig)
