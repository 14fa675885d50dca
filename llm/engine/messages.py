"""The answer schemas of text mode and the judge, and the fields their prompt templates get (the templates are
data: llm.engine.promptset, llm/prompts/; dialogue mode's fields are in llm.engine.dialogue).

A record is `{"id", "emotion", "stage1": {...}, "stage2": {...}, "stage3": {...}, ...}` (see common.schema);
`labels` maps attribute names to how prompts name them (a profile's `labels_in(language)`).
"""
from __future__ import annotations

from collections.abc import Mapping

from common.schema import LABELS, stage_key

from .promptset import PromptSet

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

MAX_SENTENCES = 2  # what the prompts ask for and the post-checks enforce


def rows(attributes: Mapping, labels: Mapping[str, str], stage: int) -> list[dict]:
    """A template's view of attributes: {"name", "label", "value", "stage"} each."""
    return [{"name": name, "label": labels.get(name, name.replace("_", " ")), "value": value, "stage": stage}
            for name, value in attributes.items()]


def lines(items: list[dict]) -> str:
    """Rows as "- label: value" lines."""
    return "\n".join(f"- {r['label']}: {r['value']}" for r in items)


def record_rows(record: Mapping, labels: Mapping[str, str], upto: int = 3) -> list[dict]:
    """The rows of a record's stages 1..upto."""
    return [r for k in range(1, upto + 1) for r in rows(record.get(stage_key(k)) or {}, labels, k)]


def persona_lines(record: Mapping, labels: Mapping[str, str]) -> str:
    """The stage 1 and 2 attributes of a persona, one "- label: value" line each."""
    return lines(record_rows(record, labels, 2))


def validation_messages(prompts: PromptSet, record: Mapping, stage: int, labels: Mapping[str, str]) -> list[dict]:
    """Stage-k check: are the attributes of stages 1..k, taken together, a realistic combination?"""
    attributes = record_rows(record, labels, stage)
    return prompts.render(f"validation_{stage}", stage=stage, attributes=attributes, described=lines(attributes))


def generation_messages(
    prompts: PromptSet,
    record: Mapping,
    labels: Mapping[str, str],
    *,
    text_format: str = "short message",
    context: str | None = None,
    forbid_label: bool = False,
    definition: str | None = None,
) -> list[dict]:
    """prompt = f(z, s, v, e): persona z, scenario s and style v, emotion e (and its definition)."""
    attributes = record_rows(record, labels)
    situation = lines([r for r in attributes if r["stage"] == 3])
    return prompts.render("generation", persona=persona_lines(record, labels), situation=situation,
                          attributes=attributes, context=context or "", text_format=text_format,
                          emotion=record["emotion"], definition=definition or record["emotion"],
                          forbid_label=forbid_label, max_sentences=MAX_SENTENCES)


def score_messages(prompts: PromptSet, text: str, emotion: str, definition: str | None = None) -> list[dict]:
    """The priorwork threshold filter: how well does a generated text express its target emotion, 1-5?"""
    return prompts.render("score", text=text, emotion=emotion, definition=definition or emotion)
