"""The report's figures as PNG files (written atomically): t-SNE of the embeddings coloured by emotion (the
paper's Fig. 2; duplicate texts drawn once, sized by their copies, and a sample of the gold texts beside them) and
the classifiers' confusion matrices (Fig. 3, and TSTR's on the gold test split). The drawing is matplotlib's and
stays on the calling thread; only the t-SNE coordinates may be computed on a worker (eval.parallel)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.manifold import TSNE  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from common.files import write_png  # noqa: E402
from common.normalise import normalise  # noqa: E402


# Barnes-Hut's trade-off: 3,000 CARER texts in 12.6 s against 17.6 s at 0.5, as trustworthy (docs/benchmarks.md)
ANGLE = 0.7


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


@dataclass(frozen=True)
class Scatter:
    """What the t-SNE figure shows: each distinct synthetic text once (duplicates: common.normalise) and a seeded
    sample of gold texts. Codes index `labels`; -1 marks a text whose copies carry several emotions."""
    labels: list[str]  # the colours' labels: the synthetic emotions, then the gold labels they lack
    first: np.ndarray  # [m] the row of each distinct synthetic text (its first copy)
    copies: np.ndarray  # [m] how many rows it stands for
    codes: np.ndarray  # [m]
    gold: np.ndarray  # [g] the gold rows shown
    gold_codes: np.ndarray  # [g]


def scatter(texts: list[str], emotions: list[str], names: list[str], gold_labels: list[str] | None = None,
            seed: int = 0) -> Scatter:
    """The t-SNE figure's points: the synthetic set's distinct texts and, with `gold_labels` (one per gold text),
    a seeded sample of as many gold texts (all of them when there are fewer)."""
    labels = list(names) + [g for g in dict.fromkeys(gold_labels or []) if g not in names]
    code = {label: i for i, label in enumerate(labels)}
    groups: dict[str, list[int]] = {}
    for row, text in enumerate(texts):
        groups.setdefault(normalise(text), []).append(row)
    rows = list(groups.values())
    codes = [code[emotions[r[0]]] if len({emotions[i] for i in r}) == 1 else -1 for r in rows]
    gold = np.zeros(0, np.int64)
    if gold_labels:
        k = min(len(gold_labels), len(rows))
        gold = np.sort(np.random.default_rng(seed).choice(len(gold_labels), k, replace=False))
    return Scatter(labels, np.array([r[0] for r in rows]), np.array([len(r) for r in rows]), np.array(codes),
                   gold, np.array([code[gold_labels[i]] for i in gold], np.int64))


def _size(copies) -> np.ndarray:
    """Marker area for a text standing for `copies` rows: the area grows with the count."""
    return 10.0 * np.asarray(copies)


def tsne_png(path: Path, xy: np.ndarray, points: Scatter, title: str) -> None:
    """The t-SNE coordinates `xy` of the points (the distinct synthetic texts, then the gold sample): one colour per
    label, a marker's area by its copies, black rings for texts given several emotions, gold as triangles."""
    fig, ax = plt.subplots(figsize=(8, 6.5))
    cmap = plt.get_cmap("tab10" if len(points.labels) <= 10 else "tab20")
    syn, gold = xy[: len(points.first)], xy[len(points.first):]
    handles = []
    for i, label in enumerate(points.labels):
        colour = cmap(i % cmap.N)
        sel, gsel = points.codes == i, points.gold_codes == i
        ax.scatter(syn[sel, 0], syn[sel, 1], s=_size(points.copies[sel]), alpha=0.7, color=colour, linewidths=0)
        ax.scatter(gold[gsel, 0], gold[gsel, 1], s=14, marker="^", alpha=0.55, color=colour, edgecolors="black",
                   linewidths=0.3)
        handles.append(Line2D([], [], ls="", marker="s", color=colour, label=label))
    mixed = points.codes == -1
    ax.scatter(syn[mixed, 0], syn[mixed, 1], s=_size(points.copies[mixed]), facecolors="none", edgecolors="black",
               linewidths=0.8)
    handles.append(Line2D([], [], ls="", marker="o", color="0.4", markersize=float(np.sqrt(_size(1))),
                          label="synthetic text"))
    if len(points.gold):
        handles.append(Line2D([], [], ls="", marker="^", color="0.4", markeredgecolor="black", label="gold text"))
    if mixed.any():
        handles.append(Line2D([], [], ls="", marker="o", markerfacecolor="none", color="black",
                              label="same text, several emotions"))
    for n in sorted({2, int(points.copies.max())}) if points.copies.max() > 1 else []:
        handles.append(Line2D([], [], ls="", marker="o", color="0.4", markersize=float(np.sqrt(_size(n))),
                              label=f"{n} copies of one text"))
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    write_png(path, fig)


def confusion_png(path: Path, matrix: list[list[int]], names: list[str], title: str) -> None:
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
    ax.set_title(title, fontsize=10)
    write_png(path, fig)
