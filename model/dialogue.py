"""Dialogues for emotion recognition in conversation (ERC): a speaker-aware Markov chain over a benchmark's
emotion labels, learned from data with NumPyro, and a dialogue sampler built on the persona model.

The dialogue model (one dialogue; `dialogue_model`, run vmapped over dialogue keys):
- `n_speakers` in {2, 3, 4} and `n_turns = n_speakers + excess`, excess ~ Categorical(turns[n_speakers]): both fitted
  to the data's dialogues with 2-4 distinct speakers, so every speaker can talk.
- one persona per speaker: the stage 1-2 attributes of `sample_records` for persona ids `4 * id + k` (k = 0..3),
  same seed and attempt as the dialogue; the **setting** is the stage-3 scenario of speaker 0's record.
- `relationship` ~ the row of `relationships.json` for the setting's interlocutor (its "group" row when 3-4 speak).
- who talks: speaker 0 opens; at each later turn the speaker changes with probability 1 - stay (stay fitted: the
  fraction of consecutive utterances by the same speaker). On a change the next speaker is the next one who has not
  yet spoken, if any, else a uniformly chosen other speaker; a change is forced while the turns left are just enough
  for the speakers yet to speak, so all n_speakers talk.
- emotions: e_0 ~ initial; e_t ~ same[e_{t-1}] when the speaker stays, other[e_{t-1}] when it changes.

Fitting (`chain_model`, exact conjugate posterior): Dirichlet(prior) on the initial distribution, on every row of
the same-speaker and other-speaker transition matrices, on P(n_speakers) and on each row of P(excess | n_speakers),
Beta(prior, prior) on stay; the data enter as multinomial / binomial counts, so the posterior of each site is
Dirichlet(prior + counts) (Beta for stay). The chain file holds the posterior means (and the counts).

Label variants: `matched` samples the fitted chain (the benchmark's own label distribution). `balanced` replaces
the initial distribution by the uniform one and Sinkhorn-scales each transition matrix to be doubly stochastic:
diag(a) P diag(b) is the matrix nearest to P in KL with uniform row and column sums, and keeps every odds ratio
P_ij P_kl / (P_il P_kj), i.e. the Markov structure. Since any mix of doubly stochastic matrices is doubly
stochastic, every turn's label is then exactly uniform, whatever the speaker sequence.

Dialogue `id`'s randomness is `fold_in(fold_in(PRNGKey(seed), attempt), id)`: the same whatever batch it is in.
"""
from __future__ import annotations

import csv
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import orjson

from model.cli import Parser, positive_int, run
from model.emotions import PRESETS
from model.errors import UsageError
from model.markdown import table
from model.profile import load_profile, read_json_object

BENCHMARKS = ("meld", "emorynlp", "iemocap6")
VARIANTS = ("matched", "balanced")
SPEAKERS = (2, 3, 4)
FORMAT = "personagen-dialogue-chain/1"
PRIOR = 1.0
POSTERIOR_DRAWS = 4000
CHAINS_DIR = Path(__file__).parent / "chains"  # fitted chains shipped with the package (meld)
RELATIONSHIPS = orjson.loads((Path(__file__).parent / "relationships.json").read_bytes())
CSV_COLUMNS = ("Utterance", "Speaker", "Emotion", "Dialogue_ID", "Utterance_ID")
SPLIT_FILE = "{split}_sent_emo.csv"


def benchmark_labels(benchmark: str) -> tuple[str, ...]:
    if benchmark not in BENCHMARKS:
        raise UsageError(f"unknown benchmark {benchmark!r} (known: {', '.join(BENCHMARKS)})")
    return tuple(PRESETS[benchmark]["labels"])


# ---- data: MELD-style CSV ----

def read_dialogues(path: str | Path, labels: tuple[str, ...]) -> list[dict]:
    """Dialogues of a CSV with MELD's columns (Utterance, Speaker, Emotion, Dialogue_ID, Utterance_ID; others are
    ignored), in order of first appearance, turns sorted by Utterance_ID:
    [{"id": dialogue id (str), "turns": [{"speaker", "emotion", "text"}]}]. Emotions are lower-cased and must be
    in `labels`; any missing field or unknown label is a UsageError naming the line."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    allowed = set(labels)
    dialogues: dict[str, list[tuple[int, dict]]] = {}
    try:
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or ())]
            if missing:
                raise UsageError(f"{path}: missing column(s) {', '.join(missing)} (need {', '.join(CSV_COLUMNS)})")
            for row in reader:
                line = reader.line_num
                empty = [c for c in CSV_COLUMNS if not (row.get(c) or "").strip()]
                if empty:
                    raise UsageError(f"{path}:{line}: empty field(s) {', '.join(empty)}")
                emotion = row["Emotion"].strip().lower()
                if emotion not in allowed:
                    raise UsageError(f"{path}:{line}: emotion {row['Emotion']!r} is not in the label set "
                                     f"({', '.join(labels)})")
                try:
                    order = int(row["Utterance_ID"])
                except ValueError:
                    raise UsageError(f"{path}:{line}: Utterance_ID {row['Utterance_ID']!r} is not a number") from None
                turn = {"speaker": row["Speaker"].strip(), "emotion": emotion, "text": row["Utterance"]}
                dialogues.setdefault(row["Dialogue_ID"].strip(), []).append((order, turn))
    except UnicodeDecodeError as e:
        raise UsageError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    if not dialogues:
        raise UsageError(f"{path}: no utterances")
    return [{"id": d, "turns": [t for _, t in sorted(turns, key=lambda p: p[0])]} for d, turns in dialogues.items()]


def read_split(directory: str | Path, split: str, labels: tuple[str, ...]) -> list[dict]:
    directory = Path(directory)
    if not directory.is_dir():
        raise UsageError(f"data directory {directory} does not exist")
    return read_dialogues(directory / SPLIT_FILE.format(split=split), labels)


# ---- counts and the NumPyro model ----

@dataclass(frozen=True)
class Counts:
    initial: np.ndarray  # [K] first emotion of each dialogue
    same: np.ndarray  # [K, K] previous -> next emotion, same speaker
    other: np.ndarray  # [K, K] previous -> next emotion, speaker changes
    stay: np.ndarray  # [2] consecutive pairs with (same, different) speaker
    speakers: np.ndarray  # [3] dialogues with 2, 3, 4 distinct speakers
    turns: np.ndarray  # [3, J] dialogues with n_speakers s and n_turns = s + j


def count(dialogues: list[dict], labels: tuple[str, ...]) -> Counts:
    """Sufficient statistics. Every dialogue feeds the emotion chain and stay; only dialogues with 2-4 distinct
    speakers feed n_speakers and n_turns."""
    k, index = len(labels), {e: i for i, e in enumerate(labels)}
    initial, same, other, stay = np.zeros(k), np.zeros((k, k)), np.zeros((k, k)), np.zeros(2)
    sizes = []
    for d in dialogues:
        e = [index[t["emotion"]] for t in d["turns"]]
        s = [t["speaker"] for t in d["turns"]]
        initial[e[0]] += 1
        for t in range(1, len(e)):
            kept = s[t] == s[t - 1]
            (same if kept else other)[e[t - 1], e[t]] += 1
            stay[0 if kept else 1] += 1
        n = len(set(s))
        if SPEAKERS[0] <= n <= SPEAKERS[-1]:
            sizes.append((n, len(e) - n))
    if not sizes:
        raise UsageError(f"no dialogue has {SPEAKERS[0]}-{SPEAKERS[-1]} speakers; cannot fit the dialogue sizes")
    turns = np.zeros((len(SPEAKERS), max(j for _, j in sizes) + 1))
    for n, j in sizes:
        turns[n - SPEAKERS[0], j] += 1
    return Counts(initial, same, other, stay, turns.sum(axis=1), turns)


def chain_model(counts: Counts, prior: float = PRIOR) -> None:
    """The fitting model: Dirichlet / Beta priors, the counts observed as multinomials / a binomial."""
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    k, j = counts.initial.shape[0], counts.turns.shape[1]

    def dirichlet(name: str, size: int, observed: np.ndarray) -> None:
        p = numpyro.sample(name, dist.Dirichlet(jnp.full(size, prior)))
        numpyro.sample(f"{name}_counts", dist.Multinomial(jnp.asarray(observed.sum(-1)), p), obs=jnp.asarray(observed))

    dirichlet("initial", k, counts.initial)
    with numpyro.plate("previous", k):
        dirichlet("same", k, counts.same)
        dirichlet("other", k, counts.other)
    stay = numpyro.sample("stay", dist.Beta(prior, prior))
    numpyro.sample("stay_counts", dist.Binomial(int(counts.stay.sum()), stay), obs=jnp.asarray(counts.stay[0]))
    dirichlet("speakers", len(SPEAKERS), counts.speakers)
    with numpyro.plate("n_speakers", len(SPEAKERS)):
        dirichlet("turns", j, counts.turns)


def posterior(counts: Counts, prior: float = PRIOR) -> dict[str, np.ndarray]:
    """The exact posterior of `chain_model`: Dirichlet concentrations per site (stay: the Beta's (a, b))."""
    return {"initial": prior + counts.initial, "same": prior + counts.same, "other": prior + counts.other,
            "stay": prior + counts.stay, "speakers": prior + counts.speakers, "turns": prior + counts.turns}


def posterior_samples(concentrations: dict[str, np.ndarray], n: int = POSTERIOR_DRAWS, seed: int = 0) -> dict:
    """n exact draws of every site (stay as P(same speaker))."""
    import jax
    import numpyro.distributions as dist

    keys = jax.random.split(jax.random.PRNGKey(seed), len(concentrations))
    draws = {name: np.asarray(dist.Dirichlet(c).sample(key, (n,)), np.float64)
             for key, (name, c) in zip(keys, concentrations.items())}
    draws["stay"] = draws["stay"][:, 0]
    return draws


# ---- the chain file ----

@dataclass(frozen=True, eq=False)
class Chain:
    benchmark: str
    labels: tuple[str, ...]
    initial: np.ndarray  # [K]
    same: np.ndarray  # [K, K]
    other: np.ndarray  # [K, K]
    stay: float
    speakers: np.ndarray  # [3]
    turns: np.ndarray  # [3, J]

    @property
    def mixed(self) -> np.ndarray:
        """The per-turn chain ignoring who speaks: stay * same + (1 - stay) * other."""
        return self.stay * self.same + (1 - self.stay) * self.other


def fit(dialogues: list[dict], benchmark: str, prior: float = PRIOR) -> tuple[Chain, Counts]:
    labels = benchmark_labels(benchmark)
    counts = count(dialogues, labels)
    c = posterior(counts, prior)
    mean = {name: v / v.sum(-1, keepdims=True) for name, v in c.items()}
    chain = Chain(benchmark, labels, mean["initial"], mean["same"], mean["other"], float(mean["stay"][0]),
                  mean["speakers"], mean["turns"])
    return chain, counts


def chain_json(chain: Chain, counts: Counts, source: dict, prior: float = PRIOR) -> dict:
    return {
        "format": FORMAT, "benchmark": chain.benchmark, "labels": list(chain.labels),
        "estimate": f"posterior mean under Dirichlet({prior}) priors (Beta({prior}, {prior}) for stay)",
        "source": source,
        "initial": chain.initial.tolist(), "same": chain.same.tolist(), "other": chain.other.tolist(),
        "stay": chain.stay,
        "n_speakers": {"values": list(SPEAKERS), "probs": chain.speakers.tolist()},
        "n_turns": {"excess": "n_turns - n_speakers = 0, 1, ...; one row per n_speakers",
                    "probs": chain.turns.tolist()},
        "counts": {"initial": counts.initial.tolist(), "same": counts.same.tolist(), "other": counts.other.tolist(),
                   "stay": counts.stay.tolist(), "speakers": counts.speakers.tolist(), "turns": counts.turns.tolist()},
    }


def _distribution(value, shape: tuple[int, ...], where: str) -> np.ndarray:
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise UsageError(f"{where}: expected numbers") from None
    if a.shape != shape and not (len(shape) == 2 and shape[1] == -1 and a.ndim == 2 and a.shape[0] == shape[0]):
        raise UsageError(f"{where}: expected shape {shape}, got {a.shape}")
    if not np.all(np.isfinite(a)) or np.any(a < 0) or not np.allclose(a.sum(-1), 1.0, atol=1e-6):
        raise UsageError(f"{where}: not a probability distribution (non-negative, summing to 1)")
    return a


def load_chain(path: str | Path) -> Chain:
    """A chain file written by `fit`; every field is checked (UsageError on anything wrong)."""
    path = Path(path)
    data = read_json_object(path, "chain")
    if data.get("format") != FORMAT:
        raise UsageError(f"{path} is not a dialogue chain file (format {FORMAT!r})")
    try:
        labels = benchmark_labels(data["benchmark"])
        if tuple(data["labels"]) != labels:
            raise UsageError(f"{path}: labels {data['labels']} are not the {data['benchmark']} label set "
                             f"{list(labels)}")
        k = len(labels)
        stay = float(data["stay"])
        if not 0.0 <= stay <= 1.0:
            raise UsageError(f"{path}: stay must be a probability, got {stay}")
        return Chain(data["benchmark"], labels, _distribution(data["initial"], (k,), f"{path}: initial"),
                     _distribution(data["same"], (k, k), f"{path}: same"),
                     _distribution(data["other"], (k, k), f"{path}: other"), stay,
                     _distribution(data["n_speakers"]["probs"], (len(SPEAKERS),), f"{path}: n_speakers"),
                     _distribution(data["n_turns"]["probs"], (len(SPEAKERS), -1), f"{path}: n_turns"))
    except (KeyError, TypeError) as exc:
        raise UsageError(f"{path}: missing or malformed field {exc}") from None


# ---- balanced variant ----

def sinkhorn(p: np.ndarray, tol: float = 1e-12, max_iter: int = 10_000) -> np.ndarray:
    """diag(a) p diag(b) with all row and column sums 1 (p strictly positive, so it exists and is unique)."""
    q = np.asarray(p, np.float64)
    for _ in range(max_iter):
        q = q / q.sum(axis=0, keepdims=True)
        q = q / q.sum(axis=1, keepdims=True)
        if np.abs(q.sum(axis=0) - 1).max() < tol:
            return q
    raise RuntimeError("Sinkhorn scaling did not converge")


def variant(chain: Chain, labels: str) -> Chain:
    """`matched`: the chain itself; `balanced`: uniform start, doubly stochastic transitions (see module doc)."""
    if labels not in VARIANTS:
        raise UsageError(f"unknown label variant {labels!r} (choose {' or '.join(VARIANTS)})")
    if labels == "matched":
        return chain
    k = len(chain.labels)
    return Chain(chain.benchmark, chain.labels, np.full(k, 1.0 / k), sinkhorn(chain.same), sinkhorn(chain.other),
                 chain.stay, chain.speakers, chain.turns)


# ---- analysis ----

def stationary(p: np.ndarray) -> np.ndarray:
    """Stationary distribution(s) of row-stochastic matrices [..., K, K]."""
    k = p.shape[-1]
    a = np.swapaxes(p, -1, -2) - np.eye(k)
    a[..., -1, :] = 1.0
    b = np.zeros(p.shape[:-1])
    b[..., -1] = 1.0
    return np.linalg.solve(a, b[..., None])[..., 0]


def _summary(draws: np.ndarray) -> dict:
    lo, hi = np.percentile(draws, [2.5, 97.5], axis=0)
    return {"mean": draws.mean(axis=0).tolist(), "lo": lo.tolist(), "hi": hi.tolist()}


def analyse(counts: Counts, labels: tuple[str, ...], prior: float = PRIOR, seed: int = 0) -> dict:
    """Posterior means and 95% intervals of the chain, emotion persistence P(e_t = e_{t-1}) (same speaker,
    other speaker, and the mixed chain at stationarity), and the stationary distribution of the mixed chain."""
    d = posterior_samples(posterior(counts, prior), seed=seed)
    stay = d["stay"][:, None, None]
    mixed = stay * d["same"] + (1 - stay) * d["other"]
    pi = stationary(mixed)
    diag = lambda m: np.diagonal(m, axis1=-2, axis2=-1)  # noqa: E731
    empirical = counts.same + counts.other
    return {
        "labels": list(labels), "draws": POSTERIOR_DRAWS, "prior": prior,
        "n_dialogues": int(counts.initial.sum()), "n_transitions": int(counts.stay.sum()),
        "label_frequency": ((counts.initial + empirical.sum(0)) / (counts.initial.sum() + empirical.sum())).tolist(),
        "initial": _summary(d["initial"]), "same": _summary(d["same"]), "other": _summary(d["other"]),
        "stay": _summary(d["stay"]), "speakers": _summary(d["speakers"]),
        "persistence": {
            "same": _summary(diag(d["same"])), "other": _summary(diag(d["other"])), "mixed": _summary(diag(mixed)),
            "overall": _summary((pi * diag(mixed)).sum(-1)),
            "empirical": float(np.trace(empirical) / empirical.sum()),
        },
        "stationary": _summary(pi),
    }


def _ci(s: dict, i=None) -> str:
    m, lo, hi = (s[k] if i is None else np.asarray(s[k])[i] for k in ("mean", "lo", "hi"))
    return f"{m:.3f} [{lo:.3f}, {hi:.3f}]"


def render_analysis(a: dict, source: str) -> str:
    labels = a["labels"]
    out = [f"# Emotion chain fitted to {source}", "",
           f"{a['n_dialogues']} dialogues, {a['n_transitions']} consecutive-utterance pairs. Posterior means with 95% "
           f"intervals from {a['draws']} exact draws of the Dirichlet({a['prior']}) posterior.", "",
           f"- P(next utterance by the same speaker) = {_ci(a['stay'])}",
           f"- Persistence P(e_t = e_(t-1)) at stationarity = {_ci(a['persistence']['overall'])} "
           f"(empirical {a['persistence']['empirical']:.3f})", "",
           "## Per emotion", "",
           *table(["emotion", "data frequency", "stationary", "initial", "persist (same speaker)",
                    "persist (other speaker)"],
                   [[e, f"{a['label_frequency'][i]:.3f}", _ci(a["stationary"], i), _ci(a["initial"], i),
                     _ci(a["persistence"]["same"], i), _ci(a["persistence"]["other"], i)]
                    for i, e in enumerate(labels)])]
    for name, title in (("same", "same speaker"), ("other", "speaker changes")):
        out += ["", f"## Transitions, {title} (row: previous emotion, column: next; posterior mean)", "",
                *table(["from \\ to", *labels],
                        [[e, *(f"{v:.3f}" for v in a[name]["mean"][i])] for i, e in enumerate(labels)])]
    return "\n".join(out) + "\n"


# ---- sampling dialogues ----

@lru_cache(maxsize=1)
def _relationship_rows() -> tuple[np.ndarray, dict[str, int]]:
    """[R, 2, C] relationship probabilities (dyad, group) per interlocutor row (row 0: the default) and the
    interlocutor -> row index."""
    cats = RELATIONSHIPS["categories"]

    def probs(weights: dict) -> np.ndarray:
        w = np.array([weights.get(c, 0.0) for c in cats], np.float64)
        return w / w.sum()

    rows = [RELATIONSHIPS["default"], *RELATIONSHIPS["by_interlocutor"].values()]
    table = np.stack([[probs(r["dyad"]), probs(r.get("group", r["dyad"]))] for r in rows])
    return table, {name: i + 1 for i, name in enumerate(RELATIONSHIPS["by_interlocutor"])}


def dialogue_model(chain: dict, relationship, max_turns: int):
    """One dialogue (see the module doc). `chain`: jnp arrays initial, same, other, stay, speakers, turns;
    `relationship`: [2, C] (dyad, group) probabilities. Returns (n_speakers, n_turns, relationship, speaker [T],
    emotion [T]); entries past n_turns are padding."""
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist
    from numpyro.contrib.control_flow import scan

    s = numpyro.sample("n_speakers", dist.Categorical(chain["speakers"]))
    n_speakers = s + SPEAKERS[0]
    n_turns = n_speakers + numpyro.sample("n_turns", dist.Categorical(chain["turns"][s]))
    rel = numpyro.sample("relationship", dist.Categorical(relationship[(n_speakers > 2).astype(jnp.int32)]))
    e0 = numpyro.sample("emotion_0", dist.Categorical(chain["initial"]))
    others = jnp.arange(SPEAKERS[-1] - 1)

    def step(carry, t):
        speaker, emotion, spoken = carry
        active = t < n_turns
        forced = n_speakers - spoken >= n_turns - t
        with numpyro.handlers.mask(mask=active):
            switch = numpyro.sample("switch", dist.Bernoulli(jnp.where(forced, 1.0, 1.0 - chain["stay"]))) > 0
            new = spoken < n_speakers
            with numpyro.handlers.mask(mask=switch & ~new):
                allowed = jnp.where(others < n_speakers - 1, 0.0, -jnp.inf)
                pick = numpyro.sample("pick", dist.Categorical(logits=allowed))
            nxt = jnp.where(switch, jnp.where(new, spoken, (speaker + 1 + pick) % n_speakers), speaker)
            e = numpyro.sample("emotion", dist.Categorical(jnp.where(switch, chain["other"][emotion],
                                                                     chain["same"][emotion])))
        return (nxt, e, spoken + (switch & new)), (nxt, e)

    _, (speakers, emotions) = scan(step, (jnp.int32(0), e0, jnp.int32(1)), jnp.arange(1, max_turns))
    return (n_speakers, n_turns, rel, jnp.concatenate([jnp.zeros(1, speakers.dtype), speakers]),
            jnp.concatenate([e0[None], emotions]))


@lru_cache(maxsize=4)
def _sampler(max_turns: int):
    import jax
    from numpyro.handlers import seed as seeded

    @jax.jit
    def draw(chain, relationship, seed, attempt, ids):
        base = jax.random.fold_in(jax.random.PRNGKey(seed), attempt)

        def one(rel, i):
            return seeded(dialogue_model, jax.random.fold_in(base, i))(chain, rel, max_turns)

        return jax.vmap(one)(relationship, ids)

    return draw


def sample_dialogues(profile, chain: Chain, ids, seed: int = 0, labels: str = "matched",
                     attempt: int = 0) -> list[dict]:
    """One dict per dialogue id: id, seed, attempt, benchmark, labels, profile, domain, n_speakers, speakers
    ([{speaker, persona_id, stage1, stage2}]), relationship, setting (stage-3 attributes of speaker 0's record),
    n_turns, turns ([{speaker, emotion}]). A pure function of (profile, chain, seed, attempt, labels, id)."""
    import jax.numpy as jnp

    from model.persona import bucket
    from model.records import sample_records

    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    if len(ids) and (ids.min() < 0 or ids.max() >= 2**32 // SPEAKERS[-1]):
        raise UsageError(f"dialogue ids must be in [0, {2**32 // SPEAKERS[-1]})")
    c = variant(chain, labels)
    persona_ids = (ids[:, None] * SPEAKERS[-1] + np.arange(SPEAKERS[-1])).reshape(-1)
    personas = sample_records(profile, persona_ids, seed, attempt=attempt)
    table, rows = _relationship_rows()
    rel = table[[rows.get(personas[SPEAKERS[-1] * r]["stage3"].get("interlocutor"), 0) for r in range(len(ids))]]

    padded = np.zeros(bucket(len(ids)), np.uint32)
    padded[: len(ids)] = ids
    rel_padded = np.zeros((len(padded), *table.shape[1:]), np.float32)
    rel_padded[: len(ids)] = rel
    arrays = {"initial": c.initial, "same": c.same, "other": c.other, "stay": np.float32(c.stay),
              "speakers": c.speakers, "turns": c.turns}
    arrays = {k: jnp.asarray(v, jnp.float32) for k, v in arrays.items()}
    max_turns = SPEAKERS[-1] + c.turns.shape[1] - 1
    out = _sampler(max_turns)(arrays, jnp.asarray(rel_padded), np.uint32(seed), np.uint32(attempt), padded)
    n_speakers, n_turns, relationship, speaker, emotion = (np.asarray(a)[: len(ids)] for a in out)

    domain = profile.domain.name if profile.domain else None
    dialogues = []
    for r, i in enumerate(ids.tolist()):
        people = personas[SPEAKERS[-1] * r: SPEAKERS[-1] * r + int(n_speakers[r])]
        t = int(n_turns[r])
        dialogues.append({
            "id": i, "seed": seed, "attempt": attempt, "benchmark": c.benchmark, "labels": labels,
            "profile": profile.name, "domain": domain, "n_speakers": int(n_speakers[r]),
            "speakers": [{"speaker": k, "persona_id": p["id"], "stage1": p["stage1"], "stage2": p["stage2"]}
                         for k, p in enumerate(people)],
            "relationship": RELATIONSHIPS["categories"][int(relationship[r])],
            "setting": people[0]["stage3"], "n_turns": t,
            "turns": [{"speaker": int(speaker[r, j]), "emotion": c.labels[int(emotion[r, j])]} for j in range(t)],
        })
    return dialogues


# ---- command line ----

def parse(argv: list[str] | None):
    p = Parser(prog="python -m model.dialogue", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    f = sub.add_parser("fit", help="fit the emotion chain to a benchmark's training dialogues")
    f.add_argument("--data", required=True, help="directory with train_sent_emo.csv (MELD's columns)")
    f.add_argument("--benchmark", default="meld", help=f"label set: {', '.join(BENCHMARKS)} (default meld)")
    f.add_argument("--split", default="train", help="which <split>_sent_emo.csv to fit (default train)")
    f.add_argument("--out", required=True, help="chain file (JSON) to write")
    f.add_argument("--report", help="directory for chain_report.md / chain_report.json")
    s = sub.add_parser("sample", help="sample dialogue skeletons (personas, setting, speakers, emotions) as JSONL")
    s.add_argument("--chain", required=True, help="chain file written by `fit`")
    s.add_argument("--n-dialogues", type=positive_int, required=True)
    s.add_argument("--labels", choices=VARIANTS, default="matched")
    s.add_argument("--profile", default="jp", help="profile name (jp, us) or path")
    s.add_argument("--domain", default="conversation", help="domain name or path (default conversation)")
    s.add_argument("--seed", type=int, default=0, help="root seed (0 <= seed < 2**32)")
    s.add_argument("--out", help="output JSONL (default: stdout)")
    args = p.parse_args(argv)
    if args.command == "sample" and not 0 <= args.seed < 2**32:
        p.error(f"argument --seed: must be in [0, 2**32), got {args.seed}")
    return args


CHUNK = 1 << 14


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    from model.records import atomic_binary, write
    from model.sample import enable_compilation_cache

    if args.command == "fit":
        dialogues = read_split(args.data, args.split, benchmark_labels(args.benchmark))
        chain, counts = fit(dialogues, args.benchmark)
        source = {"data": str(args.data), "file": SPLIT_FILE.format(split=args.split),
                  "dialogues": len(dialogues), "utterances": sum(len(d["turns"]) for d in dialogues)}
        report_dir = Path(args.report) if args.report else None
        if report_dir is not None:
            if report_dir.exists() and not report_dir.is_dir():
                raise UsageError(f"report path {report_dir} is not a directory")
            report_dir.mkdir(parents=True, exist_ok=True)
        with atomic_binary(args.out) as out:
            out.write(orjson.dumps(chain_json(chain, counts, source), option=orjson.OPT_INDENT_2) + b"\n")
        if report_dir is not None:
            a = analyse(counts, chain.labels)
            with atomic_binary(report_dir / "chain_report.json") as out:
                out.write(orjson.dumps({"source": source, **a}, option=orjson.OPT_INDENT_2) + b"\n")
            with atomic_binary(report_dir / "chain_report.md") as out:
                out.write(render_analysis(a, f"{source['data']}/{source['file']}").encode("utf-8"))
        return 0

    chain = load_chain(args.chain)

    profile = load_profile(args.profile, args.domain)
    enable_compilation_cache()

    def dialogues():
        for start in range(0, args.n_dialogues, CHUNK):
            ids = np.arange(start, min(start + CHUNK, args.n_dialogues))
            yield from sample_dialogues(profile, chain, ids, args.seed, args.labels)

    write(dialogues(), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
