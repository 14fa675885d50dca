"""Credentials a base URL may carry (`https://user:password@host/v1`): they become the requests' Basic auth and
leave the URL, so no message, summary or cache scope holds them; with an API key too, they are refused."""
from __future__ import annotations

import base64

import yarl

from common.errors import UsageError


def url_credentials(base_url: str, api_key: str | None) -> tuple[str, str | None, str | None]:
    """(the base URL without the `user:password@` it may carry, the Basic Authorization header those credentials
    make, the password); UsageError when an API key is given too (one of them would be dropped silently)."""
    url = yarl.URL(base_url)
    if url.user is None and url.password is None:
        return base_url, None, None
    plain = str(url.with_user(None))
    if api_key:
        raise UsageError(f"{plain} is given with credentials in its URL (user:password@) and an API key is set too: "
                         "give one or the other")
    basic = base64.b64encode(f"{url.user or ''}:{url.password or ''}".encode()).decode()
    return plain, f"Basic {basic}", url.password
