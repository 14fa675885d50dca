"""Reading model answers defensively, and the post-checks on generated texts."""
from __future__ import annotations

import re

import orjson

from common.schema import LABELS

from .languages import rules_for
from .messages import SCALE

_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")
# The longest text accepted. Every format asks for one or two short sentences (a tweet holds at most 280
# characters): a text this long is not the asked format but a runaway or hostile answer.
MAX_TEXT_CHARS = 1000
# C0 and C1 control characters (NUL, BEL, the ESC that starts an ANSI escape, ...) but the newline, which a short
# message may hold; DEL; the Unicode line and paragraph separators; a BOM.
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff]")
# Bidi embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069): they reorder how text is displayed.
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")


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


def character_problem(text: str, *, newline: bool = True) -> str | None:
    """Why `text` holds characters no generated text may (control characters, a newline unless `newline`, bidi
    controls), or None. Zero-width joiners, variation selectors and the like (emoji, Persian, Indic) pass."""
    if _CONTROL.search(text) or (not newline and "\n" in text):
        return "control character"
    if _BIDI.search(text):
        return "bidi control character"
    return None


def text_problem(text: str, *, language: str = "en", leak: tuple[str, ...] = ()) -> str | None:
    """Why a generated text must be regenerated, or None when it passes; by `language`'s rules
    (llm.engine.languages), `leak` being the words that name its emotion, which the text must not use (empty: no
    such check)."""
    rules = rules_for(language)
    if not text.strip():
        return "empty"
    if len(text) > MAX_TEXT_CHARS:
        return f"longer than {MAX_TEXT_CHARS} characters"
    if problem := character_problem(text):
        return problem
    if rules.sentences(text) > 2:
        return "more than 2 sentences"
    if rules.meta.search(text):
        return "meta text"
    if leak and rules.leaked(text, leak):
        return "emotion word leaked"
    return None
