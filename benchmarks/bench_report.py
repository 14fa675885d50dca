"""`python -m eval.report` end to end against CARER gold, cold (empty embedding cache) and warm (cache filled), time
per phase, against the plain pipeline a researcher would write and against the embedding floor, in one run.

- synthetic set: the LAST --synthetic texts of CARER train (standing in for generated texts), as JSONL;
- gold: the FIRST --gold-train texts of CARER train and the first --gold-test of its test split (a CARER-shaped
  folder; the defaults are all of them: 16,000 and 2,000, so the synthetic slice then lies inside the gold train
  split and is embedded once);
- ours: `python -m eval.report DATA --gold GOLD --cache-dir C` in a fresh process, twice: cold (C and JAX's
  compilation cache empty), then warm (C holds the embeddings and the gold-trained classifier, JAX's cache the
  compiled metrics);
- plain: the same tables the way a researcher would write them: sentence-transformers `encode` (its default batch
  32) of every text, scipy `pdist` MCD, sklearn KMeans CE, scipy `sqrtm` FID, sklearn MiniBatchKMeans PRD, sklearn
  cosine CD, LightGBM with its defaults for the four classifiers, sklearn TSNE, matplotlib figures;
- floor: the time to embed every distinct text once at the best batch size (chosen by timing --batches on a
  sample, not counted), model already loaded.

Each run is its own process (imports and model loading count, as they do for a user); the phases are timed inside
it. Goals: cold <= 1.3x the floor, warm >= 3x faster than plain.

    python benchmarks/bench_report.py [--synthetic 3000] [--gold-train 16000] [--gold-test 2000] [--batches 32,64]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's code, whichever is installed
CARER = Path(os.environ.get("PERSONAGEN_DATA", REPO.parent / "shared" / "data")) / "carer_emotion"
PHASES = ("embedding", "diversity", "gold metrics", "classifiers", "t-SNE", "plots", "after embedding")


def carer_lines(split: str) -> list[str]:
    return (CARER / f"{split}.txt").read_text(encoding="utf-8").splitlines()


def make_inputs(tmp: Path, n_syn: int, n_train: int, n_test: int) -> tuple[Path, Path]:
    train = carer_lines("train")
    gold = tmp / "gold"
    gold.mkdir()
    (gold / "train.txt").write_text("\n".join(train[:n_train]) + "\n", encoding="utf-8")
    (gold / "test.txt").write_text("\n".join(carer_lines("test")[:n_test]) + "\n", encoding="utf-8")
    data = tmp / "synthetic.jsonl"
    rows = [line.rsplit(";", 1) for line in train[-n_syn:]]
    data.write_text("".join(json.dumps({"text": t, "emotion": e}) + "\n" for t, e in rows), encoding="utf-8")
    return data, gold


class Timer:
    def __init__(self):
        self.phases = defaultdict(float)
        self.lock = threading.Lock()  # the report's pieces run on worker threads

    def wrap(self, phase: str, fn):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                with self.lock:
                    self.phases[phase] += time.perf_counter() - start
        return timed


@contextmanager
def patched(obj, name: str, value):
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


def child_ours(data: str, gold: str, cache: str, out: str) -> dict:
    """eval.report's CLI in this process, its phases timed by wrapping the functions it calls. After the
    embeddings the phases overlap (eval.parallel): each is the sum of its pieces' times, and "after embedding"
    is the wall time from the embeddings' end to the report's."""
    from contextlib import ExitStack

    from eval import embed, plots, references, report
    timer = Timer()
    with ExitStack() as stack:
        for obj, name, phase in [(embed.Embedder, "__call__", "embedding"), (report, "diversity", "diversity"),
                                 (references, "gold_similarity", "gold metrics"), (report, "holdout", "classifiers"),
                                 (references, "transfer", "classifiers"), (plots.TSNE, "fit_transform", "t-SNE"),
                                 (report, "tsne_png", "plots"), (report, "confusion_png", "plots"),
                                 (report, "build_report", "report")]:
            stack.enter_context(patched(obj, name, timer.wrap(phase, getattr(obj, name))))
        assert report.main([data, "--gold", gold, "--cache-dir", cache, "--out", out]) == 0
    timer.phases["after embedding"] = timer.phases.pop("report") - timer.phases["embedding"]
    return dict(timer.phases)


def child_plain(data: str, gold: str) -> dict:
    """The plain pipeline: the same numbers computed with the usual libraries' defaults."""
    timer, t = Timer(), time.perf_counter()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from lightgbm import LGBMClassifier
    from sklearn.manifold import TSNE
    from sklearn.model_selection import train_test_split

    from bench_metrics import fid_reference, prd_reference
    from eval.corpus import GoldOptions, read_corpus
    from eval.embed import load_model
    syn = [json.loads(line) for line in Path(data).read_text(encoding="utf-8").splitlines()]
    texts, y = [r["text"] for r in syn], np.array([r["emotion"] for r in syn], dtype=object)
    g = read_corpus(Path(gold), GoldOptions())
    model = load_model()
    encode = timer.wrap("embedding", lambda s: model.encode(s, normalize_embeddings=True))
    x, x_train, x_test = encode(texts), encode(g.train.texts), encode(g.test.texts)
    y_train = np.array(g.train.emotions, dtype=object)
    timer.wrap("diversity", plain_diversity)(x, y)
    sample = np.random.default_rng(0).choice(len(x_train), min(len(x), len(x_train)), replace=False)
    for a, b in ((x, x_train), (x, x_test), (x_train[sample], x_test)):
        timer.wrap("gold metrics", lambda a, b: (fid_reference(a, b), prd_reference(a, b)))(a, b)

    def fit(xa, ya, xb):
        return LGBMClassifier(verbose=-1).fit(xa, ya).predict(xb)

    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
    fitted = timer.wrap("classifiers", fit)
    pred = fitted(x_tr, y_tr, x_te)
    fitted(x, y, x_test), fitted(x_train, y_train, x_test), fitted(x_train[sample], y_train[sample], x_test)
    xy = timer.wrap("t-SNE", lambda: TSNE(init="pca", random_state=0).fit_transform(x))()
    start = time.perf_counter()
    fig, ax = plt.subplots()
    ax.scatter(xy[:, 0], xy[:, 1], s=6)
    fig.savefig(Path(tempfile.gettempdir()) / f"plain-tsne-{os.getpid()}.png")
    fig, ax = plt.subplots()
    ax.imshow(np.array([[np.sum((y_te == a) & (pred == b)) for b in np.unique(y)] for a in np.unique(y)]))
    fig.savefig(Path(tempfile.gettempdir()) / f"plain-confusion-{os.getpid()}.png")
    timer.phases["plots"] += time.perf_counter() - start
    timer.phases["after embedding"] = sum(v for k, v in timer.phases.items() if k != "embedding")  # one by one
    timer.phases["_total_in_process"] = time.perf_counter() - t
    return dict(timer.phases)


def plain_diversity(x, y) -> None:
    import numpy as np
    from scipy.spatial.distance import pdist
    from scipy.stats import entropy
    from sklearn.cluster import KMeans
    from sklearn.metrics.pairwise import cosine_distances
    names = np.unique(y)
    for name in names:
        xc = x[y == name]
        pdist(xc, "cosine").mean()
        np.mean([entropy(np.bincount(KMeans(5, n_init=1, random_state=r).fit(xc).labels_)) for r in range(10)])
    cosine_distances(np.stack([x[y == name].mean(0) for name in names]))
    pdist(x, "cosine").mean()


def child_floor(data: str, gold: str, batches: str) -> dict:
    """Seconds to embed every distinct text once at the best of `batches` (chosen on a 512-text sample)."""
    from eval.corpus import GoldOptions, read_corpus
    from eval.embed import load_model
    g = read_corpus(Path(gold), GoldOptions())
    texts = list(dict.fromkeys([json.loads(line)["text"] for line in Path(data).read_text().splitlines()]
                               + g.train.texts + g.test.texts))
    model = load_model()
    model.encode(texts[:64])  # warm-up
    trial = {}
    for b in map(int, batches.split(",")):
        start = time.perf_counter()
        model.encode(texts[:512], batch_size=b)
        trial[b] = time.perf_counter() - start
    best = min(trial, key=trial.get)
    start = time.perf_counter()
    model.encode(texts, batch_size=best)
    return {"floor": time.perf_counter() - start, "batch": best, "texts": len(texts),
            **{f"sample_512_batch_{b}": s for b, s in trial.items()}}


def spawn(home: Path, *args: str) -> tuple[float, dict]:
    """A child run with PERSONAGEN_CACHE at `home` (JAX's compilation cache: empty for the cold run)."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PERSONAGEN_CACHE": str(home)})
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"child {args[0]} failed:\n{proc.stderr[-2000:]}")
    return wall, json.loads(proc.stdout.strip().splitlines()[-1])


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--synthetic", type=int, default=3000)
    ap.add_argument("--gold-train", type=int, default=16000)
    ap.add_argument("--gold-test", type=int, default=2000)
    ap.add_argument("--batches", default="32,64")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, *rest = args.child
        print(json.dumps({"ours": child_ours, "plain": child_plain, "floor": child_floor}[kind](*rest)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        data, gold = make_inputs(Path(tmp), args.synthetic, args.gold_train, args.gold_test)
        print(f"{args.synthetic} synthetic + {args.gold_train} gold train + {args.gold_test} gold test texts; "
              f"load {load()} at start", flush=True)
        runs = {}
        cache, home = str(Path(tmp) / "cache"), Path(tmp) / "home"
        runs["ours cold"] = spawn(home, "ours", str(data), str(gold), cache, str(Path(tmp) / "cold"))
        print(f"ours cold done, load {load()}", flush=True)
        runs["floor"] = spawn(home, "floor", str(data), str(gold), args.batches)
        print(f"floor done ({runs['floor'][1]['texts']} distinct texts, batch {runs['floor'][1]['batch']}), "
              f"load {load()}", flush=True)
        runs["plain"] = spawn(home, "plain", str(data), str(gold))
        print(f"plain done, load {load()}", flush=True)
        runs["ours warm"] = spawn(home, "ours", str(data), str(gold), cache, str(Path(tmp) / "warm"))
        print(f"ours warm done, load {load()}", flush=True)
    print_table(runs)


def print_table(runs: dict) -> None:
    print(f"\n{'phase (s)':<14}" + "".join(f"{name:>12}" for name in ("ours cold", "ours warm", "plain")))
    for phase in PHASES:
        print(f"{phase:<14}" + "".join(f"{runs[name][1].get(phase, 0.0):12.1f}"
                                       for name in ("ours cold", "ours warm", "plain")))
    print(f"{'wall':<14}" + "".join(f"{runs[name][0]:12.1f}" for name in ("ours cold", "ours warm", "plain")))
    floor = runs["floor"][1]
    cold, warm, plain = runs["ours cold"][0], runs["ours warm"][0], runs["plain"][0]
    print(f"\nembedding floor {floor['floor']:.1f} s ({floor['texts']} distinct texts at batch {floor['batch']}, "
          f"{floor['texts'] / floor['floor']:.0f} texts/s; sample of 512: "
          + ", ".join(f"batch {k.rsplit('_', 1)[1]} {v:.2f} s" for k, v in floor.items() if k.startswith("sample"))
          + ")")
    print(f"cold / floor {cold / floor['floor']:.2f}x (goal <= 1.3)")
    print(f"plain / warm {plain / warm:.2f}x (goal >= 3); plain / cold {plain / cold:.2f}x")
    print(f"load {load()} at end")


if __name__ == "__main__":
    main()
