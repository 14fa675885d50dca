"""Sampling dialogues: one NumPyro function per dialogue, run vmapped over dialogue keys.

The dialogue model (one dialogue; `dialogue_model`):
- `n_speakers` in {2, 3, 4} and `n_turns = n_speakers + excess`, excess ~ Categorical(turns[n_speakers]): both fitted
  to the data's dialogues with 2-4 distinct speakers, so every speaker can talk.
- one persona per speaker: the stage 1-2 attributes of `sample_records` for persona ids `4 * id + k` (k = 0..3),
  same seed and attempt as the dialogue; the **setting** is the stage-3 scenario of speaker 0's record.
- `relationship` ~ the row of `relationships.json` for the setting's interlocutor (its "group" row when 3-4 speak);
  its `value_labels` show the relationships in other languages, as a profile's show its categories.
- who talks: speaker 0 opens; at each later turn the speaker changes with probability 1 - stay (stay fitted: the
  fraction of consecutive utterances by the same speaker). On a change the next speaker is the next one who has not
  yet spoken, if any, else a uniformly chosen other speaker; a change is forced while the turns left are just enough
  for the speakers yet to speak, so all n_speakers talk.
- emotions: e_0 ~ initial; e_t ~ same[e_{t-1}] when the speaker stays, other[e_{t-1}] when it changes.

The labels come from the fitted chain or its balanced variant (`model.dialogue.chain`).
Dialogue `id`'s randomness is `fold_in(fold_in(PRNGKey(seed), attempt), id)`: the same whatever batch it is in.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import orjson
from numpyro.contrib.control_flow import scan
from numpyro.handlers import seed as seeded

from common.errors import UsageError
from common.schema import STAGE_KEYS
from model.dialogue.chain import SPEAKERS, Chain, variant
from model.parse import parse_value_labels
from model.persona import bucket
from model.records import sample_records

RELATIONSHIPS_FILE = Path(__file__).parent.parent / "relationships.json"
RELATIONSHIPS = orjson.loads(RELATIONSHIPS_FILE.read_bytes())
RELATIONSHIP_LABELS = parse_value_labels(str(RELATIONSHIPS_FILE), RELATIONSHIPS, tuple(RELATIONSHIPS["categories"]))
PERSONA, SETTING = STAGE_KEYS[:2], STAGE_KEYS[2]  # a speaker is its stage 1-2 attributes; the setting is stage 3


def relationship_labels(language: str) -> dict[str, str]:
    """How prompts in `language` show the relationships (relationships.json's `value_labels`; one without a label
    there is shown as it is)."""
    return RELATIONSHIP_LABELS.get(language, {})


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
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    if len(ids) and (ids.min() < 0 or ids.max() >= 2**32 // SPEAKERS[-1]):
        raise UsageError(f"dialogue ids must be in [0, {2**32 // SPEAKERS[-1]})")
    c = variant(chain, labels)
    persona_ids = (ids[:, None] * SPEAKERS[-1] + np.arange(SPEAKERS[-1])).reshape(-1)
    personas = sample_records(profile, persona_ids, seed, attempt=attempt)
    table, rows = _relationship_rows()
    rel = table[[rows.get(personas[SPEAKERS[-1] * r][SETTING].get("interlocutor"), 0) for r in range(len(ids))]]

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
            "speakers": [{"speaker": k, "persona_id": p["id"], **{key: p[key] for key in PERSONA}}
                         for k, p in enumerate(people)],
            "relationship": RELATIONSHIPS["categories"][int(relationship[r])],
            "setting": people[0][SETTING], "n_turns": t,
            "turns": [{"speaker": int(speaker[r, j]), "emotion": c.labels[int(emotion[r, j])]} for j in range(t)],
        })
    return dialogues
