"""`python -m eval.erc --train MELD_DIR [--synthetic FILE ...] [--seeds 5] [--out DIR]`: does synthetic dialogue
data help emotion recognition in conversation (ERC)?

- Data: MELD's train and test splits (`train_sent_emo.csv`, `test_sent_emo.csv`; dev is not used), or any
  conversation corpus in files `common.tables` reads (`--train FILE --test FILE`: CSV/TSV/JSONL/parquet, the
  separator sniffed or given by `--sep`, `--no-header` for columns named by number) whose utterance, speaker,
  emotion, dialogue id and turn id columns `--text-col`, `--speaker-col`, `--label-col`, `--dialogue-col`
  (several columns joined by commas make one id: EmoryNLP's `Season,Episode,Scene_ID`) and `--turn-col` name
  (MELD's by default). Each
  `--synthetic` file (CSV with MELD's columns, or JSONL with one dialogue per line:
  `{"id": ..., "turns": [{"speaker": ..., "emotion": ..., "text": ...}, ...]}`) is one more training condition,
  the training data + that file, named by the file's stem. The report names the data as given: a folder by its
  name and the split (`meld train`), a file by its name. Every emotion must be in the benchmark's label set.
- Features: the utterance's MiniLM embedding (eval.embed, cached) concatenated with the mean embedding of the
  previous `--context` utterances of the same dialogue (zeros for a dialogue's first utterance).
- Classifier: multinomial logistic regression (scikit-learn, lbfgs, C = 1; LightGBM on these 768 features took
  30+ s per fit on 600 utterances on the shared 2-core machine). It is deterministic, so seed s draws the training
  sample: a random 90 % of the training dialogues (the same draw in every condition, so conditions stay
  paired) plus a random 90 % of each synthetic file's dialogues. The seeds measure the variance due to the
  training sample.
- Scores on the test split: support-weighted F1, macro-F1 (over the labels the test split has) and per-class F1, per
  seed, then mean and standard deviation.
- Significance, per synthetic condition against the training data alone: a paired approximate-randomisation test
  (Yeh 2000) on the mean over seeds of weighted F1(augmented) - weighted F1(baseline): each round swaps the two
  conditions' predictions of a test utterance (all seeds together) with probability 1/2; two-sided
  p = (1 + #{|d_perm| >= |d_obs|}) / (rounds + 1).
- Label imbalance: per-class F1 against the class's share of each condition's training data, in the report and
  in `imbalance.png`.

Writes `report.json`, `report.md` and `imbalance.png` into --out (atomically). Bad input: one `error:` line, exit 2.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from common.cli import Parser, first_paragraph, positive_int, run
from common.errors import UsageError
from common.files import write_json, write_text
from common.jsonl import read_objects
from common.tables import add_reader_options, read_options
from eval.erc_report import imbalance_png, render_markdown
from model.dialogue.corpus import (BENCHMARKS, add_column_options, benchmark_labels, columns, read_dialogues,
                                   read_split)

CONTEXT = 3
ROUNDS = 2000
FIGURE = "imbalance.png"
KEEP = 0.9
CLASSIFIER = {"model": "LogisticRegression", "solver": "lbfgs", "C": 1.0, "max_iter": 1000,
              "seeded": f"{KEEP:.0%} subsample of training dialogues"}


# ---- input ----

def read_jsonl_dialogues(path: Path, labels: tuple[str, ...]) -> list[dict]:
    """JSONL, one dialogue per line with non-empty `turns`, each turn with `speaker`, `emotion` and `text`."""
    allowed = set(labels)
    dialogues = []
    for n, rec in read_objects(path):
        turns = rec.get("turns")
        if not isinstance(turns, list) or not turns:
            raise UsageError(f"{path}:{n}: expected a dialogue object with a non-empty 'turns' list")
        clean = []
        for j, t in enumerate(turns):
            if not isinstance(t, dict) or t.get("speaker") is None or not all(
                    isinstance(t.get(f), str) and t[f].strip() for f in ("emotion", "text")):
                raise UsageError(f"{path}:{n}: turn {j} needs 'speaker' and non-empty string 'emotion' and 'text'")
            emotion = t["emotion"].strip().lower()
            if emotion not in allowed:
                raise UsageError(f"{path}:{n}: turn {j}: emotion {t['emotion']!r} is not in the label set "
                                 f"({', '.join(labels)})")
            clean.append({"speaker": str(t["speaker"]), "emotion": emotion, "text": t["text"]})
        dialogues.append({"id": str(rec.get("id", n)), "turns": clean})
    if not dialogues:
        raise UsageError(f"{path}: no dialogues")
    return dialogues


def read_synthetic(path: str | Path, labels: tuple[str, ...]) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    if path.suffix.lower() == ".csv":
        return read_dialogues(path, labels)
    return read_jsonl_dialogues(path, labels)


# ---- features, classifier, scores ----

def features(dialogues: list[dict], embedder, context: int = CONTEXT) -> tuple[np.ndarray, list[str], np.ndarray]:
    """[n_utterances, 2 * dim]: each utterance's embedding and the mean of the previous `context` utterances'
    embeddings in its dialogue (zeros when there are none); the utterances' emotions; their dialogue index."""
    texts = [t["text"] for d in dialogues for t in d["turns"]]
    emotions = [t["emotion"] for d in dialogues for t in d["turns"]]
    e = np.asarray(embedder(texts), np.float32)
    ctx = np.zeros_like(e)
    start = 0
    for d in dialogues:
        n = len(d["turns"])
        c = np.cumsum(np.vstack([np.zeros((1, e.shape[1]), np.float32), e[start:start + n]]), axis=0)
        idx = np.arange(n)
        lo = np.maximum(idx - context, 0)
        count = (idx - lo)[:, None]
        ctx[start:start + n] = np.where(count > 0, (c[idx] - c[lo]) / np.maximum(count, 1), 0.0)
        start += n
    dialogue_of = np.repeat(np.arange(len(dialogues)), [len(d["turns"]) for d in dialogues])
    return np.hstack([e, ctx]), emotions, dialogue_of


def fit_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray) -> np.ndarray:
    """Multinomial logistic regression (CLASSIFIER); integer class codes of x_test."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=CLASSIFIER["C"], solver=CLASSIFIER["solver"], max_iter=CLASSIFIER["max_iter"])
    return model.fit(x_train, y_train).predict(x_test).astype(np.int64)


def subsample(dialogue_of: np.ndarray, seed: int, part: int) -> np.ndarray:
    """Row mask keeping a random KEEP share of the dialogues (`dialogue_of`: each row's dialogue index), drawn
    from (seed, part) alone."""
    n = int(dialogue_of.max()) + 1 if dialogue_of.size else 0
    kept = np.random.default_rng([seed, part]).random(n) < KEEP
    return kept[dialogue_of]


def f1_scores(y: np.ndarray, pred: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-class F1 [..., k] and support-weighted F1 [...] of integer predictions [..., n] against y [n]
    (a class never predicted nor present has F1 0, as sklearn's zero_division=0)."""
    lead = pred.shape[:-1]
    rows = np.arange(int(np.prod(lead, dtype=np.int64))).reshape(lead + (1,)) * k
    hit = np.where(pred == y, pred, k)  # class index of correct predictions, k (dropped) otherwise
    size = rows.size * k
    tp = np.bincount((rows + hit).ravel()[hit.ravel() < k], minlength=size)
    predicted = np.bincount((rows + pred).ravel(), minlength=size)
    tp, predicted = tp.reshape(lead + (k,)), predicted.reshape(lead + (k,))
    support = np.bincount(y, minlength=k)
    denom = predicted + support
    f1 = np.where(denom > 0, 2.0 * tp / np.maximum(denom, 1), 0.0)
    return f1, (f1 * support).sum(-1) / support.sum()


def permutation_test(y: np.ndarray, base: np.ndarray, other: np.ndarray, k: int, rounds: int = ROUNDS,
                     seed: int = 0) -> tuple[float, float]:
    """Paired approximate randomisation on mean-over-seeds weighted F1: (observed difference other - base, p)."""
    observed = float((f1_scores(y, other, k)[1] - f1_scores(y, base, k)[1]).mean())
    rng = np.random.default_rng(seed)
    count = 0
    for start in range(0, rounds, 100):
        swap = rng.random((min(100, rounds - start), 1, y.shape[0])) < 0.5  # [r, 1 (all seeds), n]
        a, b = np.where(swap, other, base), np.where(swap, base, other)
        d = (f1_scores(y, b, k)[1] - f1_scores(y, a, k)[1]).mean(-1)
        count += int((np.abs(d) >= abs(observed) - 1e-12).sum())
    return observed, (1 + count) / (rounds + 1)


# ---- the experiment ----

def evaluate(train: list[dict], test: list[dict], synthetic: dict[str, list[dict]], labels: tuple[str, ...],
             embedder, seeds: int = 5, context: int = CONTEXT, rounds: int = ROUNDS,
             corpus: tuple[str, str] = ("train", "test"), progress: bool = False) -> dict:
    """Every condition (the training data, named corpus[0], and it + each synthetic set) x every seed: scores,
    tests, imbalance; a progress bar of the fits on stderr with `progress`. Training frequencies and n_train are of
    the whole condition (before the per-seed subsample)."""
    k = len(labels)
    index = {e: i for i, e in enumerate(labels)}
    code = lambda emotions: np.array([index[e] for e in emotions], np.int64)  # noqa: E731
    x_train, y_train, d_train = features(train, embedder, context)
    x_test, y_test, _ = features(test, embedder, context)
    y_train, y_test = code(y_train), code(y_test)
    base = corpus[0]
    parts = {base: [(x_train, y_train, d_train)]}
    for name, dialogues in synthetic.items():
        x_syn, y_syn, d_syn = features(dialogues, embedder, context)
        parts[f"{base} + {name}"] = [(x_train, y_train, d_train), (x_syn, code(y_syn), d_syn)]

    preds, results = {}, {}
    bar = tqdm(total=len(parts) * seeds, desc="fits", unit="fit", disable=not progress, file=sys.stderr)
    for name, sets in parts.items():
        runs = []
        for s in range(seeds):
            masks = [subsample(d, s, j) for j, (_, _, d) in enumerate(sets)]
            x = np.vstack([xs[m] for (xs, _, _), m in zip(sets, masks)])
            y = np.concatenate([ys[m] for (_, ys, _), m in zip(sets, masks)])
            runs.append(fit_predict(x, y, x_test))
            bar.update()
        preds[name] = np.stack(runs)
        per_class, weighted = f1_scores(y_test, preds[name], k)
        macro = per_class[:, np.bincount(y_test, minlength=k) > 0].mean(-1)
        y = np.concatenate([ys for _, ys, _ in sets])
        freq = np.bincount(y, minlength=k) / len(y)
        results[name] = {
            "n_train": int(len(y)), "weighted_f1": weighted.tolist(),
            "weighted_f1_mean": float(weighted.mean()),
            "weighted_f1_sd": float(weighted.std(ddof=1)) if seeds > 1 else 0.0,
            "macro_f1": macro.tolist(), "macro_f1_mean": float(macro.mean()),
            "macro_f1_sd": float(macro.std(ddof=1)) if seeds > 1 else 0.0,
            "per_class": {e: {"f1_mean": float(per_class[:, i].mean()), "f1_sd": float(per_class[:, i].std()),
                              "train_frequency": float(freq[i]), "train_count": int((y == i).sum())}
                          for i, e in enumerate(labels)},
        }
    bar.close()
    tests = {}
    for name in list(parts)[1:]:
        diff, p = permutation_test(y_test, preds[base], preds[name], k, rounds)
        tests[name] = {"against": base, "weighted_f1_difference": diff, "p_value": p, "rounds": rounds,
                       "per_seed_difference": (np.array(results[name]["weighted_f1"])
                                               - np.array(results[base]["weighted_f1"])).tolist()}
    return {"corpus": {"train": corpus[0], "test": corpus[1]}, "labels": list(labels), "seeds": seeds,
            "context": context, "classifier": CLASSIFIER,
            "n_test": int(len(y_test)), "test_frequency": (np.bincount(y_test, minlength=k) / len(y_test)).tolist(),
            "conditions": results, "tests": tests, "figure": FIGURE}


# ---- command line ----

def parser() -> Parser:
    from eval.embed import DEFAULT_CACHE

    p = Parser(prog="python -m eval.erc", description=first_paragraph(__doc__))
    corpus, synthetic = p.add_argument_group("corpus"), p.add_argument_group("synthetic dialogues")
    evaluation, out = p.add_argument_group("evaluation"), p.add_argument_group("output")
    corpus.add_argument("--train", required=True, help="a folder of MELD's split files (train_sent_emo.csv, "
                   "test_sent_emo.csv), or a training file (CSV/TSV/JSONL/parquet, one row per utterance) with --test")
    corpus.add_argument("--test", help="the test file when --train is a file")
    add_column_options(corpus)
    add_reader_options(corpus, "the --train and --test files")
    synthetic.add_argument("--synthetic", action="append", default=[], help="synthetic dialogues (CSV or JSONL); repeatable")
    synthetic.add_argument("--benchmark", default="meld", help=f"label set: {', '.join(BENCHMARKS)} (default meld)")
    evaluation.add_argument("--seeds", type=positive_int, default=5, help="training samples (seeds) per condition (default 5)")
    evaluation.add_argument("--context", type=int, default=CONTEXT, help=f"previous utterances averaged (default {CONTEXT})")
    evaluation.add_argument("--rounds", type=positive_int, default=ROUNDS, help=f"permutation-test rounds (default {ROUNDS})")
    evaluation.add_argument("--max-dialogues", type=positive_int,
                   help="use only the first N dialogues of each split and synthetic file (quick runs)")
    out.add_argument("--out", default="out/erc", help="output directory (default out/erc)")
    out.add_argument("--cache-dir", default=str(DEFAULT_CACHE), help=f"embedding cache directory (default "
                   f"{DEFAULT_CACHE})")
    out.add_argument("--quiet", action="store_true", help="no progress bars on stderr")
    return p


def parse(argv: list[str] | None):
    p = parser()
    args = p.parse_args(argv)
    if args.context < 0:
        p.error(f"argument --context: must be at least 0, got {args.context}")
    if args.test is not None and not Path(args.train).is_file():
        p.error(f"--test goes with a --train CSV file, and {args.train} is not a file")
    if args.test is None and Path(args.train).is_file():
        p.error("--train FILE needs --test FILE (a folder holds both splits)")
    return args


def corpus_names(args) -> tuple[str, str]:
    """How the report names the training and test data: a folder by its name and the split, files by their names."""
    if args.test is not None:
        return Path(args.train).name, Path(args.test).name
    folder = Path(args.train).resolve().name
    return f"{folder} train", f"{folder} test"


def read_benchmark(args, split: str, labels: tuple[str, ...]) -> list[dict]:
    """The train or test dialogues: a file given by --train/--test, or the split's file of a folder."""
    names = tuple(columns(args).values())
    if args.test is not None:
        return read_dialogues(args.train if split == "train" else args.test, labels, names, read_options(args))
    return read_split(args.train, split, labels, names, read_options(args))


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    labels = benchmark_labels(args.benchmark)
    cut = slice(args.max_dialogues)
    train = read_benchmark(args, "train", labels)[cut]
    test = read_benchmark(args, "test", labels)[cut]
    synthetic = {}
    for path in args.synthetic:
        name = Path(path).stem
        if name in synthetic:
            raise UsageError(f"two synthetic files are named {name!r}; rename one")
        synthetic[name] = read_synthetic(path, labels)[cut]
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"output path {out} is not a directory")
    from eval.embed import Embedder

    report = evaluate(train, test, synthetic, labels, Embedder(args.cache_dir, progress=not args.quiet), args.seeds,
                      args.context, args.rounds, corpus_names(args), progress=not args.quiet)
    report["inputs"] = {"train": str(args.train), "test": args.test, "synthetic": args.synthetic,
                        "max_dialogues": args.max_dialogues, "columns": columns(args)}
    out.mkdir(parents=True, exist_ok=True)
    imbalance_png(out / FIGURE, report)
    write_json(out / "report.json", report)
    write_text(out / "report.md", render_markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
