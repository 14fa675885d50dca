"""One run of `llm.generate` as a value: `RunConfig`, read from and written to TOML or JSON.

A config file holds the options of `python -m llm.generate` by name (`n_dialogues` or `n-dialogues`), e.g.

    mode = "text"
    n = 200
    out = "data.jsonl"
    endpoints = ["http://localhost:8000/v1=2", "http://other:8000/v1"]
    model = "qwen"
    rpm = 600

and `python -m llm.generate --config run.toml [flags]` runs it, flags overriding the file. Every value is checked
once, at load, by the flag's own rules (`load` takes the command's parser): an unknown key, a wrong type or a value
the flag would refuse is one error naming the file, the key and the value. A run saves its resolved config beside
its output (OUT.config.toml), so `--config OUT.config.toml` runs it again."""
from __future__ import annotations

import argparse
import json
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from common.errors import UsageError
from common.files import write_text
from common.userfile import read_user_file


@dataclass(frozen=True)
class RunConfig:
    """Everything a generate run depends on (the options of `python -m llm.generate`, one field per flag)."""

    out: str | None = None
    """The output file (JSONL, or .csv in dialogue mode); None in the library: results only, nothing kept."""
    mode: str = "text"
    """"text" (short texts) or "dialogue" (emotion-labelled dialogues)."""
    n: int | None = None
    """Number of texts (text mode)."""
    n_dialogues: int | None = None
    """Number of dialogues (dialogue mode)."""
    benchmark: str = "meld"
    """Dialogue mode: the ERC benchmark whose labels and fitted emotion chain are used."""
    chain: str | None = None
    """Dialogue mode: a chain file from `python -m model.dialogue fit` (default: the benchmark's shipped one)."""
    labels: str = "matched"
    """Dialogue mode: "matched" (the benchmark's label distribution) or "balanced" (uniform)."""
    profile: str = "jp"
    """Profile name (jp, us) or path to a profile JSON."""
    domain: str | None = None
    """Scenario domain name (sns, workplace) or path to a domain JSON."""
    emotions: str = "paper"
    """Emotion preset, emotion file (.json) or comma-separated labels."""
    seed: int = 0
    """Root seed of the persona model: the same config and seed give the same output."""
    endpoints: tuple[str, ...] = ()
    """OpenAI-compatible base URLs, each "URL" or "URL=WEIGHT" (its share of the traffic and factor on the
    limits); empty: the embedded SmolLM2 server."""
    model: str | None = None
    """Model name at the endpoints (needed with endpoints, none without)."""
    api_key_env: str = "OPENAI_API_KEY"
    """Environment variable holding the API key (the key itself is never stored)."""
    dialect: str = "auto"
    """How to ask for JSON output (auto, or one of llm.transport.dialects)."""
    rpm: int | None = None
    """Requests per minute (None: unlimited)."""
    tpm: int | None = None
    """Tokens per minute (None: unlimited)."""
    concurrency: int | None = None
    """Requests in flight (None: 16)."""
    timeout: float = 60.0
    """Seconds per request."""
    max_attempts: int = 6
    """Tries per request (429, 5xx, timeouts)."""
    max_response_bytes: int = 8 << 20
    """Longest response body accepted, after decompression."""
    max_wait: float = 120.0
    """Longest wait a server may ask for (Retry-After, x-ratelimit-reset-*), in seconds."""
    method: str = "personagen"
    """personagen, or a baseline of model.baselines."""
    threshold: int | None = None
    """priorwork: keep texts the LLM scores at least this (1-5; default 3)."""
    max_draws: int = 20
    """Personas tried per text."""
    temperature: float = 1.2
    """Generation temperature."""
    no_validate: bool = False
    """Skip the three LLM validation stages."""
    trust_below: float | None = None
    """Skip validating personas whose attributable risk is below this (a profile with a plausibility section)."""
    audit: float | None = None
    """With trust_below: the fraction of trusted personas validated anyway (default 0.05)."""
    no_label_leak: bool = False
    """Regenerate texts that name their emotion."""
    prompts: str | None = None
    """Prompt set: a shipped name, a .toml file or a directory (default: the shipped set of the language)."""
    language: str | None = None
    """Language of the texts (default: the profile's, else en)."""
    cache: str | None = None
    """Request cache (default: OUT.cache.sqlite)."""
    quiet: bool = False
    """No progress bar and no summary on stderr."""
    ray: str | None = None
    """Run shards on the Ray cluster at this address ("" a new local instance); None: one process."""
    shards: int | None = None
    """With ray: id-range shards."""
    format: str = "jsonl"
    """Format of the output file: jsonl (the resumable journal itself), csv or parquet (from OUT.journal.jsonl)."""
    expected_rejection: float | None = None
    """For the plan: the share of personas validation rejects (None: from the profile, else assumed 0)."""
    price_in: float | None = None
    """Price of a million prompt tokens (the plan's cost, and the summary's `cost` after a run)."""
    price_out: float | None = None
    """Price of a million completion tokens."""
    extra: dict = field(default_factory=dict, compare=False, repr=False)
    """Options of the command line that are not part of the run (not saved)."""

    @classmethod
    def from_namespace(cls, args: argparse.Namespace) -> RunConfig:
        """The config of parsed `llm.generate` options."""
        names = {f.name for f in fields(cls)} - {"extra"}
        values = {k: v for k, v in vars(args).items() if k in names}
        values["endpoints"] = tuple(_endpoint_text(e) for e in values.get("endpoints") or ())
        return cls(**values, extra={k: v for k, v in vars(args).items() if k not in names and k != "base_url"})

    def namespace(self) -> argparse.Namespace:
        """The options as `llm.generate`'s parser gives them (endpoints parsed, `base_url` the first one's)."""
        from .scale.shards import parse_endpoint

        values = {**self.extra, **{k: v for k, v in asdict(self).items() if k != "extra"}}
        values["endpoints"] = [parse_endpoint(e) for e in self.endpoints] or None
        values["base_url"] = values["endpoints"][0].url if values["endpoints"] else None
        return argparse.Namespace(**values)

    def saved(self) -> dict:
        """The fields worth saving: every one that is set (TOML has no null); endpoint URLs without the
        credentials some carry (`https://user:secret@host/v1`): secrets are never stored."""
        values = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()
                  if k != "extra" and v is not None and v != ()}
        if "endpoints" in values:
            values["endpoints"] = [_without_credentials(e) for e in values["endpoints"]]
        return values


def _without_credentials(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2])) if "@" in parts.netloc else endpoint


def _endpoint_text(endpoint) -> str:
    if isinstance(endpoint, str):
        return endpoint
    return endpoint.url if endpoint.weight == 1 else f"{endpoint.url}={endpoint.weight:g}"


def toml_text(values: dict) -> str:
    """Flat TOML of strings, numbers, booleans and lists of them (what a RunConfig holds)."""
    return "".join(f"{key} = {_toml_value(value)}\n" for key, value in values.items())


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # a TOML basic string: JSON's escapes are TOML's


def save(config: RunConfig, path: str | Path) -> None:
    """Write `config` to `path` (.json: JSON, else TOML), atomically."""
    values = config.saved()
    text = json.dumps(values, indent=2, ensure_ascii=False) + "\n" if str(path).endswith(".json") else toml_text(values)
    write_text(path, text)


def read(path: str | Path) -> dict:
    """The raw key/value table of a TOML or JSON config file."""
    path = Path(path)
    raw = read_user_file(path, "config")
    try:
        table = json.loads(raw) if path.suffix == ".json" else tomllib.loads(raw.decode())
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"config {path}: not valid {'JSON' if path.suffix == '.json' else 'TOML'}: {exc}") from None
    if not isinstance(table, dict):
        raise UsageError(f"config {path}: must hold a table of options")
    return table


_TYPES = {"bool": (bool,), "int": (int,), "float": (int, float), "tuple": (list,), "str": (str,)}


def _expected(annotation: str) -> tuple[type, ...]:
    return next(types for name, types in _TYPES.items() if name in annotation)


def load(path: str | Path, parser: argparse.ArgumentParser) -> dict:
    """The options of the config file `path`, keyed by their parser `dest`, converted and checked as the flags of
    `parser` would be: an unknown key, a wrong type or a refused value is a UsageError naming file, key and value."""
    kinds = {f.name: _expected(str(f.type)) for f in fields(RunConfig) if f.name != "extra"}
    actions = {a.dest: a for a in parser._actions}
    values = {}
    for key, value in read(path).items():
        dest = key.replace("-", "_")
        if dest not in kinds:
            raise UsageError(f"config {path}: unknown key {key!r} (keys: {', '.join(sorted(kinds))})")
        if not isinstance(value, kinds[dest]) or (isinstance(value, bool) and bool not in kinds[dest]):
            want = " or ".join(t.__name__ for t in kinds[dest]).replace("list", "list of strings")
            raise UsageError(f"config {path}: key {key!r} = {value!r}: expected {want}")
        values[dest] = checked(path, key, value, actions[dest])
    return values


def checked(path, key: str, value, action: argparse.Action):
    """`value` converted and checked by `action`'s type and choices."""
    items = value if isinstance(value, list) else [value]
    converted = []
    for item in items:
        try:
            item = action.type(str(item)) if action.type is not None and not isinstance(item, bool) else item
        except (argparse.ArgumentTypeError, ValueError, TypeError) as exc:
            raise UsageError(f"config {path}: key {key!r} = {value!r}: {exc}") from None
        if action.choices is not None and item not in action.choices:
            raise UsageError(f"config {path}: key {key!r} = {value!r}: not one of "
                             f"{', '.join(map(str, action.choices))}")
        converted.append(item)
    return converted if isinstance(value, list) else converted[0]
