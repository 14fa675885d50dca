"""Reading model answers defensively, and the post-checks on generated texts."""
from __future__ import annotations

import re

import orjson

from common.schema import LABELS

from .languages import rules_for
from .prompts import SCALE

_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")


def parse_object(content: str) -> dict | None:
    """The JSON object in an answer, tolerating code fences and text around it; None if there is none."""
    text = _FENCE.sub("", content.strip())
    for candidate in (text, text[text.find("{") : text.rfind("}") + 1]):
        try:
            value = orjson.loads(candidate)
        except orjson.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return None


def parse_label(content: str) -> dict | None:
    """{"label", "reason"} with the label normalised to one of LABELS, or None."""
    obj = parse_object(content)
    if obj is None or not isinstance(obj.get("label"), str):
        return None
    label = " ".join(obj["label"].lower().replace("-", " ").replace("_", " ").split())
    if label not in LABELS:
        return None
    return {"label": label, "reason": str(obj.get("reason", ""))}


def parse_scores(content: str, keys, scale: range = SCALE) -> dict[str, int] | None:
    """{key: integer score in `scale`} for every key, or None when one is missing, fractional or out of range
    (a "4" string or 4.0 counts as 4)."""
    obj = parse_object(content)
    if obj is None:
        return None
    scores = {}
    for key in keys:
        value = obj.get(key)
        if isinstance(value, str) and value.strip().isdecimal():
            value = int(value.strip())
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if type(value) is not int or value not in scale:  # bool is not int here
            return None
        scores[key] = value
    return scores


def parse_text(content: str) -> str | None:
    obj = parse_object(content)
    return obj["text"].strip() if obj is not None and isinstance(obj.get("text"), str) else None


def sentence_count(text: str, language: str = "en") -> int:
    return rules_for(language).sentences(text)


def text_problem(text: str, emotion: str, *, forbid_label: bool = False, language: str = "en",
                 words=()) -> str | None:
    """Why a generated text must be regenerated, or None when it passes; by `language`'s rules
    (llm.engine.languages), `words` being the emotion's other words in that language (the leak check)."""
    rules = rules_for(language)
    if not text.strip():
        return "empty"
    if rules.sentences(text) > 2:
        return "more than 2 sentences"
    if rules.meta.search(text):
        return "meta text"
    if forbid_label and rules.leaked(text, (emotion, *words)):
        return "emotion word leaked"
    return None
