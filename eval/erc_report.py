"""eval.erc's outputs: report.md and the label-imbalance figure (imbalance.png), both naming the corpus given."""
from __future__ import annotations

from pathlib import Path

from common.files import write_png
from common.markdown import table
from eval.plots import spread


def imbalance_png(path: Path, report: dict) -> None:
    write_png(path, imbalance_figure(report))


def imbalance_figure(report: dict):
    """Per-class F1 (mean over seeds) against the class's share of the training data (log scale), one series per
    condition; grey lines join a class across conditions; the class names in a column on the right, apart
    (eval.plots.spread) right of the axes, each joined to its point of the training data alone."""
    from eval.plots import plt

    labels, conditions, corpus = report["labels"], report["conditions"], report["corpus"]
    fig, ax = plt.subplots(figsize=(8, 5))
    points = {name: [(c["per_class"][e]["train_frequency"], c["per_class"][e]["f1_mean"]) for e in labels]
              for name, c in conditions.items()}
    for i, e in enumerate(labels):
        xs, ys = zip(*(p[i] for p in points.values()))
        ax.plot(xs, ys, color="0.8", zorder=1)
    for name, p in points.items():
        xs, ys = zip(*p)
        ax.scatter(xs, ys, label=name, zorder=2)
    ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.02)
    base = points[corpus["train"]]
    for e, (x, y), y_label in zip(labels, base, spread([y for _, y in base], 0.05, 0.0, 1.0)):
        ax.annotate(e, (x, y), xytext=(1.02, y_label), textcoords=ax.get_yaxis_transform(), fontsize=8,
                    va="center", annotation_clip=False, arrowprops={"arrowstyle": "-", "color": "0.7", "lw": 0.5})
    ax.set_xlabel("class share of the training data")
    ax.set_ylabel(f"per-class F1 on {corpus['test']} (mean over seeds)")
    ax.set_title("Label imbalance: per-class F1 vs training frequency")
    ax.legend(fontsize=8, loc="upper left")
    return fig


def render_markdown(report: dict) -> str:
    labels, conditions, corpus = report["labels"], report["conditions"], report["corpus"]
    out = [f"# ERC on {corpus['test']} with and without synthetic dialogues", "",
           f"Logistic regression on MiniLM embeddings of the utterance + the mean of its previous {report['context']} "
           f"utterances; {report['seeds']} seeds (each a {report['classifier']['seeded']}); "
           f"{report['n_test']} test utterances.", "",
           "## Weighted F1", "",
           *table(["Training data", "Train utterances", "Weighted F1 (mean ± sd)", "Macro-F1 (mean ± sd)"],
                   [[n, str(c["n_train"]), f"{c['weighted_f1_mean']:.4f} ± {c['weighted_f1_sd']:.4f}",
                     f"{c['macro_f1_mean']:.4f} ± {c['macro_f1_sd']:.4f}"] for n, c in conditions.items()])]
    if report["tests"]:
        out += ["", f"Paired approximate-randomisation test against {corpus['train']} alone:", "",
                *table(["Condition", "Δ weighted F1", "p-value", "rounds"],
                        [[n, f"{t['weighted_f1_difference']:+.4f}", f"{t['p_value']:.4f}", str(t["rounds"])]
                         for n, t in report["tests"].items()])]
    out += ["", "## Per-class F1 and training frequency (label imbalance)", "",
            *table(["Emotion", "test share", *(f"{n}: share / F1" for n in conditions)],
                    [[e, f"{report['test_frequency'][i]:.3f}",
                      *(f"{c['per_class'][e]['train_frequency']:.3f} / {c['per_class'][e]['f1_mean']:.3f}"
                        for c in conditions.values())] for i, e in enumerate(labels)]),
            "", f"![per-class F1 vs training frequency]({report['figure']})"]
    return "\n".join(out) + "\n"
