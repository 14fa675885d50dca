"""When two texts count as the same text: equal after Unicode NFKC, case folding and whitespace collapse."""
from __future__ import annotations

import unicodedata


def duplicate_key(text: str) -> str:
    """`text` in the form in which duplicates are equal: NFKC-normalised (full-width letters, ligatures and
    compatibility forms become their plain forms), case-folded, every run of whitespace one space, no space at
    either end."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())
