"""`--plan --batch`: the rounds of a batch run (llm.engine.rounds), each with its requests and tokens.

Each slot is a small chain over what it asks next: validation stage 1..m, then the generation (then the score,
with priorwork). A stage rejects a persona with q = 1 - (1 - R)^(1/m) (R the plan's per-persona rejection rate,
llm.api.plan), and a rejected persona's redraw asks stage 1 in the next round. A round holds the next request of
every open slot, so round k's expected requests are the slots' chances of being at each step in round k; the
rounds go on while at least half a slot is expected to be open. Tokens as in the plan (prompt tokens of the
rendered prompts, completion tokens at most max_tokens)."""
from __future__ import annotations

from common.schema import stages

from ..engine.messages import generation_messages, score_messages, validation_messages
from ..engine.texts import Settings
from .plan import prompt_tokens

MAX_ROUNDS = 200


def _steps(record: dict, s: Settings) -> tuple[list[tuple[float, int]], int]:
    """(prompt tokens, max_tokens) of each step of a slot in order, and how many of them are validation stages."""
    asked = stages(record) if s.validate else []
    steps = [(prompt_tokens(validation_messages(s.prompts, record, stage, s.labels)), s.validation_tokens)
             for stage in asked]
    emotion = record["emotion"]
    steps.append((prompt_tokens(generation_messages(s.prompts, record, s.labels, text_format=s.text_format,
                                                    context=s.context, forbid_label=s.forbid_label,
                                                    definition=s.definition(emotion))), s.text_tokens))
    if s.min_score is not None:
        steps.append((prompt_tokens(score_messages(s.prompts, "x" * 80, emotion, s.definition(emotion))),
                      s.validation_tokens))
    return steps, len(asked)


def batch_rounds(records: list[dict], n: int, s: Settings, rate: float) -> list[tuple[float, float, float]]:
    """Expected (requests, prompt tokens, completion tokens at most) of each round of `n` slots like `records`."""
    totals: list[list[float]] = []
    scale = n / len(records)
    for record in records:
        steps, m = _steps(record, s)
        q = 1 - (1 - rate) ** (1 / m) if m else 0.0
        at = [1.0] + [0.0] * (len(steps) - 1)  # chance of the slot being at each step
        for k in range(MAX_ROUNDS):
            if k == len(totals):
                totals.append([0.0, 0.0, 0.0])
            for j, (p, (tokens, most)) in enumerate(zip(at, steps)):
                totals[k][0] += p * scale
                totals[k][1] += p * tokens * scale
                totals[k][2] += p * most * scale
            redrawn = sum(at[j] * q for j in range(m))
            at = [redrawn] + [at[j - 1] * (1 - q if j - 1 < m else 1.0) for j in range(1, len(steps))]
            if sum(at) * n < 0.5:
                break
    return [tuple(t) for t in totals]


def with_rounds(plan: dict, records: list[dict], n: int, s: Settings) -> dict:
    """The plan of a batch run (llm.api.plan's, its cost already at the discount): its wall time in rounds, how
    many, then one line each."""
    rounds = batch_rounds(records, n, s, plan["rejection_rate"])
    return {**plan, "wall_time": "a batch per round, each answered within the 24 h completion window",
            "batch_rounds": len(rounds),
            **{f"round {k}": f"{r:.0f} requests, {p:.0f} prompt tokens, {c:.0f} completion tokens at most"
               for k, (r, p, c) in enumerate(rounds, 1)}}
