"""The figures' layout, measured on the drawn figure: no text over another text or over the bars, readable tick
labels, no blank band between the priors' rows; and the t-SNE figure's points (duplicates once, gold beside)."""
from types import SimpleNamespace

import numpy as np
import pytest
from matplotlib.text import Text

from eval.plots import plt, scatter, spread


def extents(fig, artists, draw: bool = True):
    """Window boxes (after drawing the figure, unless it was drawn); an annotation's is its text's alone (not its
    leader line)."""
    if draw:
        fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    return [(Text.get_window_extent if isinstance(a, Text) else type(a).get_window_extent)(a, renderer)
            for a in artists]


def overlapping(boxes) -> list[tuple[int, int]]:
    return [(i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes)) if boxes[i].overlaps(boxes[j])]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_the_judge_legend_covers_no_bar():
    """Every text scored 1: the tallest bars stand where the legend used to be (upper left)."""
    from eval.judge import CRITERIA, score_figure

    criteria = {k: {"name": name, "mean": 1.0, "counts": {"1": 50, "2": 0, "3": 0, "4": 0, "5": 0}}
                for k, (name, _) in CRITERIA.items()}
    fig = score_figure({"judged": 50, "criteria": criteria})
    ax = fig.axes[0]
    legend, *bars = extents(fig, [ax.get_legend(), *ax.patches])
    assert len(bars) == 20 and not any(legend.overlaps(b) for b in bars)


def test_the_imbalance_labels_do_not_overlap():
    """Two classes at one point, three close together: their names stand apart."""
    from eval.erc_report import imbalance_figure

    labels = ["neutral", "joy", "surprise", "anger", "sadness", "disgust", "fear"]
    freq, f1 = [0.47, 0.17, 0.12, 0.11, 0.07, 0.03, 0.03], [0.72, 0.45, 0.44, 0.43, 0.22, 0.05, 0.05]
    conditions = {name: {"per_class": {e: {"train_frequency": f, "f1_mean": s + shift}
                                       for e, f, s in zip(labels, freq, f1)}}
                  for name, shift in (("dialogues.csv", 0.0), ("dialogues.csv + synthetic", 0.03))}
    fig = imbalance_figure({"labels": labels, "conditions": conditions,
                            "corpus": {"train": "dialogues.csv", "test": "held-out.csv"}})
    texts = [t for t in fig.axes[0].texts if t.get_text() in labels]
    assert len(texts) == 7 and not overlapping(extents(fig, texts))
    assert fig.axes[0].get_ylabel() == "per-class F1 on held-out.csv (mean over seeds)"


def test_the_sensitivity_title_overlaps_no_axis_label():
    from model.priors.sensitivity import figure

    rows = [{"beta": b, "entropy_bits": 40 - b, "expected_distinct": 3500 - 1e-4 * (1 + b)} for b in (0, 0.5, 1)]
    fig = figure(SimpleNamespace(name="jp"), "region", 3500, rows)
    title, *labels = extents(fig, [fig._suptitle, *(ax.yaxis.label for ax in fig.axes)])
    assert not any(title.overlaps(b) for b in labels)


def test_the_priors_tick_labels_are_readable_and_apart_and_rows_have_no_blank_band():
    """Region (47 prefectures) and MBTI (32 types) included; between one row of panels (tick labels included) and
    the next row's titles, under 0.4 inch."""
    from model.priors.report import figure, report
    from model.profile import load_with_data

    fig = figure(report(*load_with_data("jp", "sns")))
    fig.canvas.draw()
    for ax in fig.axes:
        ticks = ax.get_xticklabels() if len(ax.get_xticklabels()) > 20 else ax.get_yticklabels()
        assert min(t.get_fontsize() for t in ticks) >= 7, ax.get_title()
        assert not overlapping(extents(fig, ticks, draw=False)), ax.get_title()
    titles = [ax.get_title() for ax in fig.axes]
    assert any(t.startswith("region") for t in titles) and any(t.startswith("mbti") for t in titles)
    boxes = [ax.get_tightbbox(fig.canvas.get_renderer()) for ax in fig.axes]
    rows = sorted({round(b.y1) for b in boxes}, reverse=True)
    bottoms = {top: min(b.y0 for b in boxes if round(b.y1) == top) for top in rows}
    gaps = [bottoms[upper] - lower for upper, lower in zip(rows, rows[1:])]
    assert gaps and max(gaps) < 0.4 * fig.dpi


def test_spread_keeps_order_and_gap():
    y = spread([0.5, 0.5, 0.52, 0.1], 0.05, 0.0, 1.0)
    assert y[3] == 0.1 and y[0] < y[1] < y[2] and min(np.diff(sorted(y[:3]))) >= 0.05 - 1e-12
    top = spread([1.0, 0.99, 0.98], 0.05, 0.0, 1.0)
    assert max(top) <= 1.0 and min(np.diff(sorted(top))) >= 0.05 - 1e-12


def test_tsne_points_draw_each_distinct_text_once_and_a_gold_sample():
    texts = ["I am happy", "i  am HAPPY ", "ｉ am happy", "so sad", "so sad", "so sad", "angry!"]
    emotions = ["joy", "joy", "joy", "sadness", "fear", "sadness", "anger"]
    names = ["joy", "sadness", "fear", "anger"]
    points = scatter(texts, emotions, names, ["joy", "love", "anger", "joy", "love"], seed=1)
    assert points.first.tolist() == [0, 3, 6] and points.copies.tolist() == [3, 3, 1]
    assert points.codes.tolist() == [0, -1, 3]  # "so sad" carries two emotions
    assert points.labels == names + ["love"] and len(points.gold) == 3  # as many gold texts as distinct ones
    gold_labels = ["joy", "love", "anger", "joy", "love"]
    assert points.gold_codes.tolist() == [points.labels.index(gold_labels[i]) for i in points.gold]
    assert scatter(texts, emotions, names, gold_labels, seed=1).gold.tolist() == points.gold.tolist()
    assert len(scatter(texts, emotions, names).gold) == 0
