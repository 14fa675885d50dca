"""What a fitted emotion chain says: posterior intervals of its sites, emotion persistence, the stationary
distribution, as a dict (`analyse`) and as markdown (`render_analysis`)."""
from __future__ import annotations

import numpy as np

from common.markdown import table
from model.dialogue.chain import POSTERIOR_DRAWS, PRIOR, Counts, posterior, posterior_samples


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
