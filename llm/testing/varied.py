"""The varied texts of the test server's `--duplicate-rate` (llm.testing.faults), for the tests and the benchmark
of `llm.generate --dedup`: `varied(key, rate)` is a text of seven parts picked by hash of `key` (a request body:
millions of texts, two of which rarely share more than four parts), or, for `rate` of the keys (by hash), a repeat
of one of REPEATED texts, the way a degenerate model falls back on a few answers: as it was, in capitals, with
doubled spaces, or with a word added (an exact duplicate after normalisation for the first three, a near one for
the last)."""
from __future__ import annotations

from common.hashing import canonical, unit_interval

REPEATED = 4  # the texts the repeats are of
_PARTS = (
    ["Just got the news on my way home", "My coworker surprised me at lunch", "The train stopped again",
     "Finally finished the report", "Saw an old friend at the station", "The rain will not stop today"],
    ["this morning", "right after lunch", "late last night", "before the meeting", "on Sunday", "at dawn",
     "during the storm", "after class", "on my day off", "around midnight", "at rush hour", "over the holidays"],
    ["my neighbour", "the new intern", "an old classmate", "my landlord", "a tired nurse", "the bus driver",
     "my little brother", "a street musician", "the shop owner", "my team lead", "a lost tourist", "grandma"],
    ["dropped", "fixed", "painted", "returned", "hid", "sold", "found", "borrowed", "praised", "broke", "wrapped",
     "forgot"],
    ["the blue bicycle", "a stack of letters", "my favourite mug", "the spare key", "a jar of honey",
     "the broken clock", "two concert tickets", "a paper crane", "the garden hose", "an umbrella", "the family photo",
     "a bag of oranges"],
    ["by the river", "in the elevator", "at the station", "behind the bakery", "on the rooftop", "in the parking lot",
     "at the library", "near the harbour", "in the hallway", "at the market", "under the bridge", "in the lobby"],
    ["and I cannot stop smiling!", "which honestly ruined my mood.", "and now I am not sure what to do.",
     "so that was something.", "and my heart is still racing."],
)


def _share(*parts) -> float:
    return unit_interval(canonical(parts).decode())


def varied(key, rate: float) -> str:
    """The text of `key` (any JSON value; see the module docstring)."""
    if _share(key, "repeat") >= rate:
        return _composed(key)
    text = _composed(("repeated", int(_share(key, "which") * REPEATED)))
    return [text, text.upper(), text.replace(" ", "  "), f"{text} Really."][int(_share(key, "variant") * 4)]


def _composed(key) -> str:
    return "{}, {}: {} {} {} {}, {}".format(*(p[int(_share(key, k) * len(p))] for k, p in enumerate(_PARTS)))
