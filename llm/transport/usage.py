"""The `usage` of a response, believed only when it could be true.

A count that is not a non-negative integer (a negative one would let the limiter admit more than --tpm), or a total
beyond what the request could have used, is bad usage: counted in `ClientStats.bad_usage`, charged to no limit
(the request keeps the tokens it reserved), reported as no usage. What a request can use: at most one token per
byte of its body (a tokenizer makes at most one token of a byte: byte-level BPE, or byte fallback; the body holds
every byte of the prompt, and more), plus TEMPLATE_TOKENS a server's chat template may add (a default system prompt),
plus its `max_tokens`. So a server reporting absurd usage cannot stall a --tpm run.
"""
from __future__ import annotations

TEMPLATE_TOKENS = 256


def valid_usage(usage) -> dict[str, int] | None:
    """The token counts of a response's `usage` ({} when it has none); None when it is not an object or a count in
    it is not a non-negative integer (bool is not one)."""
    if usage is None:
        return {}
    if not isinstance(usage, dict):
        return None
    counts = {}
    for name in ("prompt_tokens", "completion_tokens", "total_tokens"):
        value = usage.get(name)
        if value is not None:
            if type(value) is not int or value < 0:
                return None
            counts[name] = value
    return counts


def most_tokens(body_bytes: int, max_tokens: int) -> int:
    """The most tokens a request whose body is `body_bytes` long can use."""
    return body_bytes + TEMPLATE_TOKENS + max_tokens


def believed(usage, body_bytes: int, max_tokens: int) -> dict[str, int] | None:
    """`valid_usage(usage)`, unless its total is beyond `most_tokens` (then None: bad usage)."""
    counts = valid_usage(usage)
    if counts:
        total = max(counts.get("total_tokens", 0), counts.get("prompt_tokens", 0) + counts.get("completion_tokens", 0))
        if total > most_tokens(body_bytes, max_tokens):
            return None
    return counts
