"""One OpenAI-compatible base URL with its weight (`Endpoint`), as a value and as the text a flag or a config file
gives ("URL" or "URL=WEIGHT"), and the `Endpoints` option kind that reads it (common.fields)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from common.fields import Kind


@dataclass(frozen=True)
class Endpoint:
    """One OpenAI-compatible base URL and its weight: its share of the traffic, and the factor on its limits."""

    url: str
    weight: float = 1.0

    def scaled(self, limit: int | None) -> int | None:
        return None if limit is None else max(1, round(limit * self.weight))

    def __str__(self) -> str:
        """The text form: "URL", or "URL=WEIGHT" for a weight other than 1."""
        return self.url if self.weight == 1 else f"{self.url}={self.weight:g}"

    @property
    def public(self) -> str:
        """The text form without the credentials a URL may carry (`https://user:secret@host/v1`): what is saved."""
        parts = urlsplit(str(self))
        if "@" not in parts.netloc:
            return str(self)
        return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))

    @property
    def plain_url(self) -> str:
        """The URL without the credentials it may carry (llm.transport.credentials), and without a trailing slash:
        what names the endpoint in a cache scope or a saved limiter state."""
        parts = urlsplit(self.url.rstrip("/"))
        return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))

    @property
    def host(self) -> str:
        """host[:port] of the URL, without credentials ("?" when it has none)."""
        parts = urlsplit(self.url)
        return parts.hostname + (f":{parts.port}" if parts.port else "") if parts.hostname else "?"


def parse_endpoint(text: str) -> Endpoint:
    """'http://host:8000/v1' or 'http://host:8000/v1=2' (weight 2: twice the traffic and twice the limits);
    ValueError for a weight that is not a finite number > 0."""
    url, sep, weight = text.rpartition("=")
    if sep and url:
        try:
            w = float(weight)
        except ValueError:
            w = float("nan")
        if not (w > 0 and math.isfinite(w)):
            raise ValueError(f"expected URL or URL=WEIGHT with a weight > 0, got {text!r}")
        return Endpoint(url, w)
    return Endpoint(text)


class Endpoints(Kind):
    """A list of endpoints: each flag (repeatable) or list item one "URL[=WEIGHT]"."""

    types = (Endpoint,)
    action = "append"

    def check(self, value):
        """An Endpoint, or its text form."""
        return self.convert(value) if isinstance(value, str) else super().check(value)

    def convert(self, text: str) -> Endpoint:
        return parse_endpoint(text)
