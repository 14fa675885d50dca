"""`--plan` (`llm.api.plan_dataset`): what a text run will ask, before any request: requests, prompt and completion
tokens, wall time at the limits, persona redraws and, with prices, the cost.

Prompt tokens are those of the rendered prompts of a sample of the run's own records (up to SAMPLE of them), at
CHARS_PER_TOKEN characters a token plus MESSAGE_TOKENS a message (the usual rule of thumb for BPE tokenizers;
the client's limiter estimates more, on purpose, so as never to pass --tpm). Completion tokens are an upper bound:
each request's max_tokens. Persona rejections: with a rate R per persona (given, or the mean over the sample of
1 - (1 - b)(1 - risk) from a learned profile's plausibility section, b its baseline; else the share of redraws
in the output's last run; else 0, an assumption the plan states), a slot takes 1/(1 - R) draws, each of m stages
rejecting at q = 1 - (1 - R)^(1/m), so a draw asks
sum_{j<m} (1 - q)^j validation questions; one generation per slot (and one score with priorwork)."""
from __future__ import annotations

from common.schema import stages

from ..engine.texts import Settings

SAMPLE = 200
CHARS_PER_TOKEN = 4.0
MESSAGE_TOKENS = 3


def prompt_tokens(messages: list[dict]) -> float:
    return sum(len(m["content"]) for m in messages) / CHARS_PER_TOKEN + MESSAGE_TOKENS * len(messages)


def rejection(records: list[dict], settings: Settings, profile, given: float | None, last: dict | None = None
              ) -> tuple[float, str]:
    """The per-persona rejection rate of the plan and where it comes from."""
    if not settings.validate:
        return 0.0, "no validation"
    if given is not None:
        return given, "given (--expected-rejection)"
    if profile.plausibility is not None and records and all("risk" in r for r in records):
        b = profile.plausibility.baseline
        rate = sum(1 - (1 - b) * (1 - r["risk"]) for r in records) / len(records)
        return rate, f"from the profile's plausibility section (mean over {len(records)} sampled personas)"
    if last and last.get("texts", 0) + last.get("persona_redraws", 0) > 0:
        rate = last["persona_redraws"] / (last["texts"] + last["persona_redraws"])
        return min(rate, 0.99), "from the output's last run (its summary's persona_redraws)"
    return 0.0, "assumed 0: no plausibility section, no earlier run and no --expected-rejection R"


def _per_slot(record: dict, s: Settings, rate: float) -> tuple[float, float, float]:
    """Expected (requests, prompt tokens, completion tokens) of one slot of `record`."""
    requests = tokens = completion = 0.0
    if s.validate:
        asked = stages(record)
        q = 1 - (1 - rate) ** (1 / len(asked))
        draws = 1 / (1 - rate)
        for j, stage in enumerate(asked):
            reach = draws * (1 - q) ** j
            requests += reach
            tokens += reach * prompt_tokens(s.validation(record, stage))
            completion += reach * s.validation_tokens
    requests += 1
    tokens += prompt_tokens(s.generation(record))
    completion += s.text_tokens
    if s.min_score is not None:
        requests += 1
        tokens += prompt_tokens(s.score("x" * 80, record["emotion"]))
        completion += s.validation_tokens
    return requests, tokens, completion


def plan(records: list[dict], n: int, settings: Settings, profile, config, last: dict | None = None) -> dict:
    """The plan of `n` slots from a sample `records` of them; `config` (a RunConfig) gives the limits, prices and
    rejection, `last` the summary of the output's last run, if any."""
    rate, source = rejection(records, settings, profile, config.expected_rejection, last)
    totals = [sum(values) * n / len(records) for values in zip(*(_per_slot(r, settings, rate) for r in records))]
    requests, tokens, completion = (round(t) for t in totals)
    minutes = [x / limit for x, limit in ((requests, config.client.rpm), (tokens + completion, config.client.tpm))
               if limit]
    result = {
        "slots": n,
        "requests": requests,
        "prompt_tokens": tokens,
        "completion_tokens_at_most": completion,
        "persona_redraws": round(n * rate / (1 - rate)) if settings.validate else 0,
        "rejection_rate": round(rate, 4),
        "rejection_source": source,
        "wall_time": f"{max(minutes) * 60:.0f} s" if minutes else "unbounded (no --rpm or --tpm)",
    }
    if config.price_in is not None or config.price_out is not None:
        result["cost_at_most"] = round(cost(tokens, completion, config), 6)
    return result


def cost(prompt: float, completion: float, config) -> float:
    """Dollars (or whatever the prices are in) at --price-in/--price-out per million tokens, times
    --batch-discount in batch mode."""
    discount = config.batch_discount if config.batching else 1.0
    return (prompt * (config.price_in or 0) + completion * (config.price_out or 0)) * discount / 1e6


def worded(p: dict) -> str:
    """The plan as lines for a terminal."""
    lines = [f"{k.replace('_', ' ')}: {v}" for k, v in p.items()]
    return "\n".join(lines) + "\n"
