"""The post-checks' rules per output language: how sentences end, what meta text looks like, how a leaked emotion
word is found.

- `en`: a sentence ends at a run of . ! ? ... followed by whitespace or the end, or at CJK terminators; meta text
  is "as an AI", "I'm an AI", "language model", "I cannot help/write", a leading "Sure,"/"Certainly!",
  "here is a ..."; a leak is the word as a whole word, any case.
- `ja`: a sentence ends at a run of 。．！？ (full-width), ｡ (half-width), ! ? (ASCII) or …, with or without space
  after it (closing brackets 」』）】 stay with their sentence); meta text is "AIとして", "私はAI", "AIなので",
  "AIです", "言語モデル", "アシスタントとして", a leading "はい、"/"もちろん"/"かしこまりました", "以下は/以下が",
  or any of the English rule's; a leak is the word anywhere (Japanese has no spaces between words).
- any other language: the GENERIC rule, with a warning from the command: a sentence ends at any of the terminators
  above (ASCII ones before whitespace or the end), meta text is the English and Japanese patterns, a leak is the
  word anywhere, any case. It never passes everything.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_EN_META = (r"\bas an ai\b|\blanguage model\b|\bi(?:'m| am) an ai\b|\bi (?:cannot|can't|can not) (?:help|assist|write)"
            r"|^(?:sure|certainly|of course)\b[,!.:]|\bhere(?:'s| is) (?:a|an|the|my|your) ")
_JA_META = (r"AIとして|私は\s*AI|AI(?:なので|です)|言語モデル|アシスタントとして|^(?:はい|もちろん|かしこまりました)[、。！!]"
            r"|^以下(?:は|が)")


@dataclass(frozen=True)
class Rules:
    language: str
    sentence_end: re.Pattern
    meta: re.Pattern
    whole_words: bool  # a leak must be a whole word (languages that put spaces between words)

    def sentences(self, text: str) -> int:
        return sum(1 for part in self.sentence_end.split(text) if re.search(r"\w", part))

    def leaked(self, text: str, words) -> bool:
        for word in words:
            pattern = rf"\b{re.escape(word)}\b" if self.whole_words else re.escape(word)
            if re.search(pattern, text, re.IGNORECASE):
                return True
        return False


RULES = {
    "en": Rules("en", re.compile(r"[.!?\u2026]+(?=\s|$)|[\u3002\uff01\uff1f]+"), re.compile(_EN_META, re.I), True),
    "ja": Rules("ja", re.compile(r"[\u3002\uff0e\uff61\uff01\uff1f!?\u2026]+[\u300d\u300f\uff09\u3011)]*"),
                re.compile(f"{_JA_META}|{_EN_META}", re.I), False),
}
GENERIC = Rules("*", re.compile(r"[.!?\u2026]+(?=\s|$)|[\u3002\uff0e\uff61\uff01\uff1f]+"),
                re.compile(f"{_EN_META}|{_JA_META}", re.I), False)


def rules_for(language: str) -> Rules:
    """The post-check rules of `language`; GENERIC for a language without its own (see `has_rules`)."""
    return RULES.get(language, GENERIC)


def has_rules(language: str) -> bool:
    return language in RULES
