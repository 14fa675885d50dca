"""Every prompt and answer schema of text mode and the judge, in one place (dialogue mode's are in
llm.engine.dialogue).

A record is `{"id", "emotion", "stage1": {...}, "stage2": {...}, "stage3": {...}, ...}` (see common.schema);
`labels` maps attribute names to how prompts name them (a profile's `labels`).
"""
from __future__ import annotations

from collections.abc import Mapping

from common.schema import LABELS, stage_key

VALIDATION_SCHEMA = {
    "type": "object",
    "properties": {"label": {"type": "string", "enum": list(LABELS)}, "reason": {"type": "string"}},
    "required": ["label", "reason"],
    "additionalProperties": False,
}
TEXT_SCHEMA = {
    "type": "object",
    "properties": {"text": {"type": "string"}},
    "required": ["text"],
    "additionalProperties": False,
}

SCALE = range(1, 6)  # the 5-point scale of scores asked for (the priorwork filter, the judge)


def score_schema(keys) -> dict:
    """An object of integer scores on SCALE, one per key."""
    score = {"type": "integer", "enum": list(SCALE)}
    return {"type": "object", "properties": {k: score for k in keys}, "required": list(keys),
            "additionalProperties": False}


SCORE_SCHEMA = score_schema(["score"])

_SUBJECT = {
    1: "a person's basic attributes",
    2: "a person's basic attributes and socio-cultural background",
    3: "a person, their background, and the situation and style in which they are writing",
}


def _lines(attributes: Mapping, labels: Mapping[str, str]) -> str:
    return "\n".join(f"- {labels.get(name, name.replace('_', ' '))}: {value}" for name, value in attributes.items())


def persona_lines(record: Mapping, labels: Mapping[str, str]) -> str:
    """The stage 1 and 2 attributes of a persona, one "- label: value" line each."""
    return "\n".join(_lines(record[k], labels) for k in map(stage_key, (1, 2)) if record.get(k))


def validation_messages(record: Mapping, stage: int, labels: Mapping[str, str]) -> list[dict]:
    """Stage-k check: are the attributes of stages 1..k, taken together, a realistic combination?"""
    groups = map(stage_key, range(1, stage + 1))
    described = "\n".join(_lines(record[k], labels) for k in groups if record.get(k))
    return [
        {
            "role": "system",
            "content": "You judge whether descriptions of people are realistic. Answer only with a JSON object "
            '{"label": ..., "reason": ...} where label is "natural", "rare but plausible" or "implausible" '
            "and reason is one short sentence.",
        },
        {
            "role": "user",
            "content": f"Here is {_SUBJECT[stage]}:\n{described}\n\n"
            "Taken together, is this combination natural, rare but plausible, or implausible?",
        },
    ]


def generation_messages(
    record: Mapping,
    labels: Mapping[str, str],
    *,
    text_format: str = "short message",
    context: str | None = None,
    forbid_label: bool = False,
) -> list[dict]:
    """prompt = f(z, s, v, e): persona z, scenario s and style v, emotion e."""
    persona = persona_lines(record, labels)
    situation = _lines(record.get(stage_key(3)) or {}, labels)
    emotion = record["emotion"]
    parts = [f"You are this person:\n{persona}"]
    if situation:
        parts.append(f"Your situation and writing style:\n{situation}")
    if context:
        parts.append(f"Setting: {context}")
    ask = (
        f"Write one {text_format} of one or two short sentences that you would write right now, "
        f"clearly expressing {emotion}."
    )
    if forbid_label:
        ask += f' Do not use the word "{emotion}".'
    parts.append(ask + " Write only the message itself, in your own voice.")
    return [
        {
            "role": "system",
            "content": "You write realistic short texts in the voice of the person described. "
            'Answer only with a JSON object {"text": ...}.',
        },
        {"role": "user", "content": "\n\n".join(parts)},
    ]


def score_messages(text: str, emotion: str) -> list[dict]:
    """The priorwork threshold filter: how well does a generated text express its target emotion, 1-5?"""
    return [
        {
            "role": "system",
            "content": "You rate short texts. Answer only with a JSON object {\"score\": n} where n is an integer "
            "from 1 (does not express the emotion at all) to 5 (expresses it clearly and naturally).",
        },
        {"role": "user", "content": f"Target emotion: {emotion}\nText: {text}\n\n"
         "How well does the text express the target emotion?"},
    ]
