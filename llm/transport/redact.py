"""Keeping secrets out of what we print and store. Server text (error bodies, model ids, exception text) passes
`redact` before it enters one of our messages; `Client` also removes its own key from every response body before
the body is parsed or cached."""
from __future__ import annotations

import re

REDACTED = "[redacted]"
# Shorter keys are placeholders (`EMPTY`, `ollama`, `x`): searching for them would garble ordinary text.
MIN_SECRET = 8
# Bearer tokens (RFC 6750's b64token characters) and OpenAI/Anthropic-style `sk-...` keys.
_BEARER = re.compile(r"\b(bearer\s+)[A-Za-z0-9._~+/=\-]+", re.IGNORECASE)
_SK = re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}")


def secret(api_key: str | None) -> str | None:
    """The key as `redact` looks for it: None when there is none or it is a placeholder (see MIN_SECRET)."""
    return api_key if api_key and len(api_key) >= MIN_SECRET else None


def redact(text: str, key: str | None = None) -> str:
    """`text` with `key` (when `secret` keeps it), bearer tokens and `sk-...` keys replaced by [redacted]
    ("Bearer [redacted]" for a bearer token)."""
    if (key := secret(key)) is not None:
        text = text.replace(key, REDACTED)
    return _SK.sub(REDACTED, _BEARER.sub(rf"\g<1>{REDACTED}", text))
