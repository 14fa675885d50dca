"""How a client talks to an endpoint, as one small value (`ClientOptions`, compare httpx's `Timeout` and `Limits`):
its limits, timeout, retries and response cap, with their defaults here and nowhere else. Each field is an option
field (common.fields): `llm.generate` and `eval.judge` make their connection flags from these fields, and a run
config file holds them by name."""
from __future__ import annotations

from dataclasses import dataclass, replace

from common.fields import Number, Text, Whole, check_fields, option

from .body import MAX_RESPONSE_BYTES
from .dialects import DIALECTS
from .endpoint import Endpoint
from .levels import Ledger
from .limiter import Limiter
from .waits import MAX_WAIT

ENDPOINT, LIMITS = "endpoint", "limits"  # the help groups of these flags


@dataclass(frozen=True)
class ClientOptions:
    """Everything about talking to one endpoint but its URL and model (`Endpoint`, a command's --model)."""

    api_key_env: str = option("OPENAI_API_KEY", Text(), "environment variable holding the API key", group=ENDPOINT)
    dialect: str = option("auto", Text(("auto", *DIALECTS)), "how to ask for JSON output", group=ENDPOINT)
    rpm: int | None = option(None, Whole(), "requests per minute (default: unlimited)", group=LIMITS)
    tpm: int | None = option(None, Whole(), "tokens per minute (default: unlimited)", group=LIMITS)
    burst: float | None = option(None, Number(low=0, finite=True), "seconds' worth of --rpm/--tpm that may go at "
                                 "once (default 1; see llm/transport/limiter.py)", group=LIMITS, metavar="SECONDS")
    concurrency: int = option(16, Whole(), "requests in flight (default 16; the embedded server batches them)",
                              group=LIMITS)
    timeout: float = option(60.0, Number(low=0, open_low=True, finite=True, unit=" of seconds"),
                            "seconds per request (finite, > 0)", group=LIMITS)
    max_attempts: int = option(6, Whole(), "tries per request (429, 5xx, timeouts)", group=LIMITS)
    max_response_bytes: int = option(MAX_RESPONSE_BYTES, Whole(), "longest response body accepted, after "
                                     "decompression (default 8 MiB)", group=LIMITS)
    max_wait: float = option(MAX_WAIT, Number(low=0, finite=True, unit=" of seconds"), "longest wait a server may "
                             "ask for (Retry-After, x-ratelimit-reset-*); a longer one is a fault, retried under the "
                             "backoff", group=LIMITS, metavar="SECONDS")
    backoff: tuple[float, float] = (0.5, 30.0)
    """First and longest wait between retries, in seconds (exponential, with jitter)."""

    def __post_init__(self):
        check_fields(self)

    def for_endpoint(self, endpoint: Endpoint) -> ClientOptions:
        """The options of one endpoint of a pool: its rpm, tpm and concurrency times its weight."""
        return replace(self, rpm=endpoint.scaled(self.rpm), tpm=endpoint.scaled(self.tpm),
                       concurrency=endpoint.scaled(self.concurrency))

    def limiter(self, ledger: Ledger | None = None) -> Limiter:
        """A local limiter at these limits, its levels kept in `ledger` (so a rerun keeps them) if given."""
        return Limiter(rpm=self.rpm, tpm=self.tpm, concurrency=self.concurrency, burst=self.burst, ledger=ledger)
