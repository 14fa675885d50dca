"""The one text normal form that duplicate checks compare: Unicode NFKC, case folding, whitespace collapsed."""
from __future__ import annotations

import unicodedata


def normalise(text: str) -> str:
    """`text` in NFKC, case-folded, its whitespace runs one space, no leading or trailing space: "Ｈｅｌｌｏ\u3000
    World " and "hello world" are one text."""
    return " ".join(unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold()).split())
