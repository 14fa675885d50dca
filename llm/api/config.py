"""One run of `llm.generate` as a typed value: `RunConfig`, the schema of a run.

Every field carries its type, range and choices (common.fields) and is checked once, when the config is made,
together with the combinations that do not go together; the connection's fields are one `ClientOptions`
(llm.transport.options). The command line builds a RunConfig from its flags (llm.api.flags), a config file from
its keys (`load`), and the library takes one. A config file holds the options by name, flat (`n_dialogues` or
`n-dialogues`), e.g.

    mode = "text"
    n = 200
    out = "data.jsonl"
    endpoints = ["http://localhost:8000/v1=2", "http://other:8000/v1"]
    model = "qwen"
    rpm = 600

and `python -m llm.generate --config run.toml [flags]` runs it, flags overriding the file. An unknown key, a wrong
type or a refused value is one error naming the file, the key and the value. A run saves its resolved config beside
its output (OUT.config.toml, `save`), so `--config OUT.config.toml` runs it again."""
from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from common.duplicates import DedupSpec
from common.errors import UsageError
from common.fields import COUNT, Flag, Number, Text, Whole, check_fields, from_table, option, options
from common.files import write_text
from common.userfile import read_user_file
from common.formats import FORMATS, format_of
from model.baselines import METHODS
from model.emotions import DEFAULT as DEFAULT_EMOTIONS, PRESETS

from ..transport.endpoint import Endpoint, Endpoints
from ..transport.options import ENDPOINT, ClientOptions

WHAT, VALIDATION, PROMPTS, OUTPUT, PLANNING, SCALE, BATCH = ("what", "validation", "prompts", "output", "planning",
                                                               "scale", "batch")
GROUPS = {WHAT: "what to generate", ENDPOINT: "endpoint", "limits": "limits",
          VALIDATION: "validation and generation", PROMPTS: "prompts and language", OUTPUT: "output",
          PLANNING: "planning and cost", BATCH: "batch (half price, in rounds)", SCALE: "scale (Ray)"}
AUDIT = 0.05  # the share of trusted personas validated anyway, when `audit` is not given
FRACTION = Number(low=0, high=1)
PRICE = Number(low=0, finite=True)


class Dedup(Text):
    """`exact`, `near` or `near:THRESHOLD` (common.duplicates.DedupSpec), kept as written."""

    def in_range(self, value, shown: str | None = None):
        DedupSpec.parse(value)
        return value


@dataclass(frozen=True)
class RunConfig:
    """Everything a generate run depends on (the options of `python -m llm.generate`, one field per flag)."""

    out: str | None = option(None, Text(), "results JSONL (appended to, and resumed from, if it exists); in "
                             "dialogue mode a .csv gets MELD's columns and its JSONL beside it", group=OUTPUT)
    """The output file (JSONL, or .csv in dialogue mode); None in the library: results only, nothing kept."""
    mode: str = option("text", Text(("text", "dialogue")), "short texts, or dialogues", group=WHAT)
    n: int | None = option(None, COUNT, "number of texts (text mode; at most 2**32)", group=WHAT)
    n_dialogues: int | None = option(None, Whole(), "number of dialogues (dialogue mode)", group=WHAT)
    benchmark: str = option("meld", Text(), "dialogue mode: the ERC benchmark whose labels and fitted emotion "
                            "chain to use (a chain file is shipped for meld; others need --chain)", group=WHAT)
    chain: str | None = option(None, Text(), "dialogue mode: a chain file from `python -m model.dialogue fit`",
                               group=WHAT)
    labels: str = option("matched", Text(("matched", "balanced")), "dialogue mode: the benchmark's label "
                         "distribution, or uniform (Markov structure kept)", group=WHAT)
    profile: str = option("jp", Text(), "profile name (jp, us) or path to a profile JSON", group=WHAT)
    domain: str | None = option(None, Text(), "scenario domain name (sns, workplace) or path to a domain JSON",
                                group=WHAT)
    emotions: str | None = option(None, Text(), f"preset ({', '.join(PRESETS)}), an emotion file (.json, see "
                                  "model/emotion_sets/README.md) or comma-separated labels (default: "
                                  f"{DEFAULT_EMOTIONS}; in dialogue mode the --benchmark's, whose labels any other "
                                  "set must have)", group=WHAT)
    seed: int = option(0, Whole(low=None), "root seed of the persona model", group=WHAT)
    endpoints: tuple[Endpoint, ...] = option((), Endpoints(), "OpenAI-compatible endpoint, e.g. "
                                             "http://localhost:8000/v1 (default: start the embedded SmolLM2 server); "
                                             "repeatable (one process, or --ray), WEIGHT (default 1) scaling its "
                                             "share of requests and its --rpm/--tpm/--concurrency",
                                             group=ENDPOINT, flag="--base-url", metavar="URL[=WEIGHT]")
    """The endpoints; empty: the embedded SmolLM2 server."""
    model: str | None = option(None, Text(), "model name at --base-url (every endpoint serves it)", group=ENDPOINT)
    client: ClientOptions = field(default_factory=ClientOptions)
    """How requests are sent: limits, timeout, retries (flat in a config file: `rpm = 600`)."""
    method: str = option("personagen", Text(METHODS), "personagen, or a baseline of the paper's IV.D (see "
                         "model/baselines.py)", group=VALIDATION)
    threshold: int | None = option(None, Whole(choices=tuple(range(1, 6))), "priorwork: keep texts the LLM scores "
                                   "at least this for their emotion (default 3)", group=VALIDATION,
                                   metavar="{1..5}")
    max_draws: int = option(20, Whole(), "personas tried per text", group=VALIDATION)
    temperature: float = option(1.2, Number(low=0, finite=True), "generation temperature, finite and >= 0 "
                                "(paper: 1.2)", group=VALIDATION)
    no_validate: bool = option(False, Flag(), "skip the three LLM validation stages", group=VALIDATION)
    trust_below: float | None = option(None, Number(low=0, high=1, open_low=True, open_high=True),
                                       "skip validating personas whose attributable risk is below R (needs a "
                                       "profile with a 'plausibility' section, from `python -m model.priors learn`)",
                                       group=VALIDATION, metavar="R")
    audit: float | None = option(None, FRACTION, "with --trust-below: validate this fraction of the trusted "
                                 f"personas anyway (chosen by hash; default {AUDIT})", group=VALIDATION, metavar="A")
    no_label_leak: bool = option(False, Flag(), "regenerate texts that name their emotion (its label, or its words "
                                 "in the texts' language from the emotion file)", group=VALIDATION)
    prompts: str | None = option(None, Text(), "prompt set: a shipped one (en, ja), a .toml file or a directory "
                                 "with prompts.toml (default: the shipped set of the language; see "
                                 "llm/prompts/README.md)", group=PROMPTS, metavar="NAME|PATH")
    language: str | None = option(None, Text(), "language of the texts, e.g. ja (default: the profile's "
                                  "`language`, else en); the prompt set must write in it", group=PROMPTS,
                                  metavar="CODE")
    cache: str | None = option(None, Text(), "request cache (default: OUT.cache.sqlite)", group=OUTPUT)
    quiet: bool = option(False, Flag(), "no progress bar and no summary on stderr", group=OUTPUT)
    no_prompts: bool = option(False, Flag(), "leave each text's prompt out of its record (about 2 KB a text): the "
                              "record keeps the prompt set's hash, and `llm.api.modes.prompt_of(config, record)` "
                              "renders the prompt again from the run's saved config", group=OUTPUT)
    ray: str | None = option(None, Text(), "run shards as Ray tasks on the cluster at ADDRESS ('auto': the one "
                             "`ray start` made; none: a new local instance) and merge them into OUT", group=SCALE,
                             metavar="ADDRESS", const="")
    """Run shards on the Ray cluster at this address ("" a new local instance); None: one process."""
    shards: int | None = option(None, Whole(), "with --ray: id-range shards (default: max(CPUs, n/50000))",
                                group=SCALE)
    format: str | None = option(None, Text(FORMATS), "format of OUT (text mode; default: from OUT's extension, else "
                                "jsonl): jsonl (the resumable journal itself), csv or parquet (one column per "
                                "attribute, written in id order at the end from the journal OUT.journal.jsonl)",
                                group=OUTPUT)
    expected_rejection: float | None = option(None, Number(low=0, high=1, open_high=True), "share of personas "
                                              "validation rejects, for --plan (default: from a learned profile's "
                                              "plausibility section, else 0)", group=PLANNING, metavar="R")
    price_in: float | None = option(None, PRICE, "price of a million prompt tokens: the plan's cost, and the "
                                    "summary's `cost` and `plan` after a run", group=PLANNING, metavar="USD")
    price_out: float | None = option(None, PRICE, "price of a million completion tokens", group=PLANNING,
                                     metavar="USD")
    max_cost: float | None = option(None, PRICE, "stop before a request whose worst case (prompt estimate + "
                                    "max_tokens, at the prices) would take the output's spend over USD: exit 1, "
                                    "resumable with a larger budget (needs --price-in and --price-out)",
                                    group=PLANNING, metavar="USD")
    batch: bool = option(False, Flag(), "send the run through the endpoint's OpenAI Batch API (/v1/files, "
                         "/v1/batches): in rounds, each the next request of every open slot", group=BATCH)
    batch_dir: str | None = option(None, Text(), "batch mode without an API: write each round's input file to DIR "
                                   "and wait for DIR/<file>.out.jsonl (vLLM's run_batch, a provider's console); "
                                   "needs --model, any name", group=BATCH, metavar="DIR")
    no_wait: bool = option(False, Flag(), "with --batch-dir: exit (code 3) once a round's files are written; "
                           "rerun when their outputs are there", group=BATCH)
    batch_poll: float = option(30.0, Number(low=0, open_low=True, finite=True, unit=" of seconds"), "seconds "
                               "between looks at a batch or at --batch-dir (default 30)", group=BATCH,
                               metavar="SECONDS")
    batch_max_requests: int = option(50_000, Whole(), "requests per batch file at most (default 50000)", group=BATCH,
                                     metavar="N")
    batch_max_bytes: int = option(190_000_000, Whole(low=1024), "bytes per batch file at most (default 190 MB)",
                                  group=BATCH, metavar="BYTES")
    batch_discount: float = option(0.5, FRACTION, "price factor of batch requests, for --plan, the cost and "
                                   "--max-cost (default 0.5)", group=BATCH, metavar="F")

    dedup: str | None = option(None, Dedup(), "regenerate a text that duplicates an accepted one (with the slot's "
                               "next persona draw): exact (after NFKC, case folding and whitespace collapse) or near "
                               "(MinHash Jaccard of character 5-grams at least THRESHOLD, default 0.7)",
                               group=VALIDATION, metavar="exact|near[:THRESHOLD]")
    dedup_scope: str | None = option(None, Text(("emotion", "all")), "with --dedup: compare a text with the texts "
                                     "of its emotion (default) or with all texts", group=VALIDATION)

    def __post_init__(self):
        check_fields(self)
        if not isinstance(self.client, ClientOptions):
            raise UsageError(f"RunConfig: client = {self.client!r}: expected ClientOptions")
        self._check_combinations()

    def _check_combinations(self) -> None:
        """The options that do not go together, in the words of their flags."""
        if self.mode == "text" and (self.n is None or self.n_dialogues is not None):
            raise UsageError("text mode needs --n (and no --n-dialogues)")
        if self.mode == "dialogue" and (self.n_dialogues is None or self.n is not None or self.ray is not None
                                        or self.method != "personagen"):
            raise UsageError("dialogue mode needs --n-dialogues, and takes no --n, --ray or --method")
        if self.ray is None and self.shards:
            raise UsageError("--shards needs --ray (a local instance is fine)")
        if self.mode == "dialogue" and self.format is not None:
            raise UsageError("--format is text mode's (dialogue mode writes MELD's columns to an --out ending in "
                             ".csv)")
        if self.mode == "text":
            format_of(self.out, self.format)  # a --format that the extension of --out contradicts is refused
        if self.threshold is not None and self.method != "priorwork":
            raise UsageError("--threshold is priorwork's text filter: it needs --method priorwork")
        if self.audit is not None and self.trust_below is None:
            raise UsageError("--audit needs --trust-below")
        if self.trust_below is not None and (self.no_validate or self.method != "personagen" or self.mode != "text"):
            raise UsageError("--trust-below skips validation: it needs text mode, --method personagen and no "
                             "--no-validate")
        if self.dedup_scope is not None and self.dedup is None:
            raise UsageError("--dedup-scope needs --dedup")
        if self.dedup is not None and (self.mode != "text" or self.ray is not None):
            raise UsageError("--dedup is text mode's, in one process: with --ray a text's duplicate may sit in "
                             "another shard, and shards are not compared (run without --ray)")
        if self.batch_dir is None and (not self.endpoints) != (self.model is None):
            raise UsageError("--base-url and --model go together (without both, the embedded SmolLM2 server is "
                             "used)")
        self._check_batch()
        if self.max_cost is not None and (self.price_in is None or self.price_out is None):
            raise UsageError("--max-cost needs --price-in and --price-out (a request's worst case is priced by "
                             "both)")

    def _check_batch(self) -> None:
        if self.no_wait and self.batch_dir is None:
            raise UsageError("--no-wait is --batch-dir's: it exits once a round's files are written")
        if self.batching and self.ray is not None:
            raise UsageError("--batch and --batch-dir send a whole run as a few batches: they take no --ray")
        if self.batch_dir is not None and self.model is None:
            raise UsageError("--batch-dir needs --model: the model name written into the batch file")
        if self.batch and len(self.endpoints) > 1:
            raise UsageError("--batch takes one --base-url (its batches are answered there)")
        if self.batch and self.batch_dir is None and not self.endpoints:
            raise UsageError("--batch needs --base-url and --model: the embedded server has no Batch API "
                             "(--batch-dir DIR writes batch files for any server)")

    @property
    def embedded(self) -> bool:
        """The run's requests go to the embedded server, in this process: no endpoint, no --ray, no batch mode."""
        return not self.endpoints and self.ray is None and not self.batching

    @property
    def batching(self) -> bool:
        """Batch mode: the Batch API (--batch) or batch files (--batch-dir)."""
        return self.batch or self.batch_dir is not None

    @property
    def output_format(self) -> str:
        """The format of the output: --format, else OUT's extension's, else jsonl (text mode)."""
        return format_of(self.out, self.format)

    @property
    def dedup_spec(self) -> DedupSpec | None:
        """What --dedup counts as a duplicate (None: no dedup)."""
        return None if self.dedup is None else DedupSpec.parse(self.dedup)

    @property
    def total(self) -> int:
        """The slots of the run: texts, or dialogues."""
        return self.n_dialogues if self.mode == "dialogue" else self.n

    @classmethod
    def from_values(cls, values: dict) -> RunConfig:
        """The config of flat option values (field name -> value, the connection's among them)."""
        mine = {f.name for f in fields(cls)}
        client = {k: v for k, v in values.items() if k not in mine}
        return cls(**{k: v for k, v in values.items() if k in mine}, client=ClientOptions(**client))

    def saved(self) -> dict:
        """The options worth saving, flat, in field order: every one that is set (TOML has no null); files as
        absolute paths (the saved config runs the same from any directory); endpoints without the credentials a URL
        may carry (`https://user:secret@host/v1`): secrets are never stored."""
        values = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "client":
                values.update(_flat(value))
            elif f.name == "endpoints":
                if value:
                    values[f.name] = [e.public for e in value]
            elif f.name in _FILES and value is not None:
                values[f.name] = os.path.abspath(value)
            elif f.name in _NAMES_OR_FILES and value is not None and os.path.exists(value):
                values[f.name] = os.path.abspath(value)
            elif value is not None:
                values[f.name] = value
        return values


_FILES = ("out", "cache", "chain")  # always paths
_NAMES_OR_FILES = ("profile", "domain", "emotions", "prompts")  # a shipped name, or a path (made absolute)


def _flat(client: ClientOptions) -> dict:
    return {name: getattr(client, name) for name, _ in options(ClientOptions)
            if getattr(client, name) is not None}


def toml_text(values: dict) -> str:
    """Flat TOML of strings, numbers, booleans and lists of them (what a saved RunConfig holds)."""
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


def load(path: str | Path) -> dict:
    """The options of the config file `path` as flat field values, each checked by its field's kind (see
    `common.fields.from_table`): RunConfig.from_values takes them, or the command line's flags override them."""
    return from_table(read(path), [RunConfig, ClientOptions], str(path))
