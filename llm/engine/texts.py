"""Text mode: validated personas flow into text generation, slot by slot, on the slot runner (llm.engine.slots).

Each slot (one output text) runs stage 1 -> 2 -> 3 validation then stage 4 generation; a persona
rejected anywhere (implausible, unparseable answers, or no acceptable text) is replaced by a fresh
draw for the same slot, so the emotion of every slot stays fixed. Different slots sit at different
stages at the same time; the client's limiter decides what goes out.

Trust policy (`Settings.trust_below` R, `Settings.audit` A): a persona whose record carries an attributable risk
(`risk`, from a learned profile's `plausibility` section) below R skips the three validation requests and goes
straight to generation, its `validation` then being `{"skipped": {"risk": r, "trust_below": R}}`; a deterministic
fraction A of those personas (`uniform(record, "audit") < A`, a hash of seed, id and attempt) is validated anyway.
A trusted persona is dropped unasked (redrawn, `"dropped": true` in its skip) at `Settings.trusted_drop` b, the
validator's baseline rejection rate as learnt (`Plausibility.baseline`): validation rejects every persona at
that rate whatever its attributes, so without the drop the trusted personas would be over-represented by 1/(1 - b)
against the validated ones. A record without a risk is always validated.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass

from common.hashing import digest, unit_interval
from common.schema import IMPLAUSIBLE, stage_groups, stage_key, stages
from llm.transport.client import RequestFailed
from llm.transport.protocols import ChatClient

from .answers import parse_label, parse_scores, parse_text, text_problem
from .ask import ask, ask_parsed
from .messages import (SCORE_SCHEMA, TEXT_SCHEMA, VALIDATION_SCHEMA, generation_messages, score_messages,
                      validation_messages)
from .settings import SlotSettings, show_groups
from .slots import SlotFailed, run_slots
from .stats import RunStats
from .unique import Unique

Redraw = Callable[[dict, int], dict]  # (record, attempt) -> a fresh record for the same slot


def text_view(record: dict, value: Callable[[str, str], str], name: Callable[[str], str]) -> dict:
    """What text mode's prompts show of a record: its emotion (`name`) and its stage groups (`value`)."""
    return {"emotion": name(record["emotion"]), **show_groups(record, value)}


@dataclass(frozen=True)
class Settings(SlotSettings):
    """How text mode validates personas and writes their texts (`llm.api.settings.text_settings` makes a run's)."""

    text_format: str = "short message"
    """What a text is, in the generation prompt (the domain's format)."""
    context: str | None = None
    """A domain description for the generation prompt."""
    temperature: float = 1.2
    method: str = "personagen"
    """Written into every result (see model.baselines)."""
    validate: bool = True
    """Ask the three validation stages about each persona."""
    trust_below: float | None = None
    """Skip validating personas whose record's `risk` is below this."""
    audit: float = 0.0
    """... except this fraction of them (by hash), validated anyway."""
    trusted_drop: float = 0.0
    """Share of trusted personas dropped unasked (the validator's baseline rejection rate)."""
    min_score: int | None = None
    """Keep only texts the LLM scores >= this for their emotion (1-5; priorwork)."""
    forbid_label: bool = False
    """Regenerate texts that name their emotion (`leak_words`)."""
    keep_prompts: bool = True
    """Write each text's generation prompt into its result (else the prompt set's hash alone identifies it)."""
    max_draws: int = 20
    max_texts: int = 4
    max_parse: int = 3
    """Requests per question before an unreadable answer counts as a failure."""
    validation_tokens: int = 128
    """max_tokens of a validation (or score) request."""
    text_tokens: int = 160
    """max_tokens of a generation request."""

    def shown(self, record: dict) -> dict:
        """The record as the prompts show it: its values and its emotion in the texts' language."""
        return {**record, **text_view(record, self.value, self.name)}

    def validation(self, record: dict, stage: int) -> list[dict]:
        """The stage-`stage` validation request's messages for `record`."""
        return validation_messages(self.prompts, self.shown(record), stage, self.labels)

    def generation(self, record: dict) -> list[dict]:
        """The generation request's messages for `record`."""
        return generation_messages(self.prompts, self.shown(record), self.labels, text_format=self.text_format,
                                   context=self.context, forbid_label=self.forbid_label,
                                   definition=self.definition(record["emotion"]))

    def score(self, text: str, emotion: str) -> list[dict]:
        """The score request's messages: how well `text` expresses `emotion`."""
        return score_messages(self.prompts, text, self.name(emotion), self.definition(emotion))


def preview(settings: Settings, record: dict) -> None:
    """Render every prompt a slot of `record` can send (raising the UsageError of a template that fails on it),
    so a bad template stops a run before its first request."""
    for stage in stages(record):
        settings.validation(record, stage)
    settings.generation(record)
    settings.score("", record["emotion"])


class _Rejected(Exception):
    """This persona will not do: draw another. `verdicts` holds the validation answers it got."""

    def __init__(self, why: str, verdicts: dict | None = None):
        super().__init__(why)
        self.verdicts = verdicts or {}


def _seed(*parts) -> int:
    """The server seed of a generation: 31 bits of the hash of `parts`."""
    return int.from_bytes(digest(repr(parts))[:4], "big") >> 1


def uniform(record: dict, purpose: str) -> float:
    """A uniform number in [0, 1) fixed by `purpose` and the record's seed, id and attempt (so independent of its
    attributes): the trust policy's audit and drop draws."""
    return unit_interval(f"{purpose}:{record.get('seed', 0)}:{record['id']}:{record.get('attempt', 0)}")


def generate_texts(
    records: Iterable[dict],
    client: ChatClient,
    *,
    settings: Settings = Settings(),
    redraw: Redraw | None = None,
    stats: RunStats | None = None,
    workers: int | None = None,
    unique: Unique | None = None,
) -> AsyncIterator[dict]:
    """One result per record, in completion order, through the slot runner (`workers` slots in flight, default
    2 x the client's concurrency). Failed slots are recorded in `stats`. With `unique`, a text that duplicates an
    accepted one is redrawn, the records settled in their order (llm.engine.unique)."""
    engine = _Engine(client, settings, redraw, stats if stats is not None else RunStats())
    if unique is not None:
        return unique.results(records, engine.run, redraw, client, settings.max_draws, engine.stats, workers)
    return run_slots(records, engine.run, client, stats=engine.stats, workers=workers)


class _Engine:
    def __init__(self, client: ChatClient, settings: Settings, redraw: Redraw | None, stats: RunStats):
        self.client, self.settings, self.redraw, self.stats = client, settings, redraw, stats

    async def run(self, record: dict) -> dict:
        first, why, rejected = record.get("attempt", 0), "", []
        for draw in range(self.settings.max_draws - first):  # a slot's draws are attempts 0 .. max_draws - 1
            if draw:
                if self.redraw is None:
                    raise SlotFailed(f"slot {record['id']}: persona rejected ({why}) and nothing to redraw from")
                self.stats.redraws += 1
                record = self.redraw(record, first + draw)
            usage, verdicts = Counter(), {}
            try:
                verdicts = await self._check(record, usage)
                text, messages, tries, score = await self._write(record, usage)
            except _Rejected as exc:
                why = str(exc)
                if exc.verdicts or verdicts:  # what `model.priors learn` fits plausibility from
                    rejected.append({"attempt": record.get("attempt", 0), **stage_groups(record),
                                     "validation": exc.verdicts or verdicts, "why": why})
                continue
            except RequestFailed as exc:
                raise SlotFailed(f"slot {record['id']}: {exc}") from None
            return {
                **record,
                "method": self.settings.method,
                "text": text,
                **({} if score is None else {"score": score}),
                **self.settings.beside(text_view, record),
                "validation": verdicts,
                **({"prompt": messages} if self.settings.keep_prompts else {}),
                "prompt_set": self.settings.prompts.hash,
                "model": self.client.model,
                "usage": dict(usage),
                "persona_draws": first + draw + 1,
                "rejected_draws": rejected,
                "text_attempts": tries,
            }
        raise SlotFailed(f"slot {record['id']}: no acceptable persona in {self.settings.max_draws} draws; last: {why}")

    async def _ask_parsed(self, messages, schema, parse, usage: Counter):
        return await ask_parsed(self.client, messages, schema, parse, usage, tries=self.settings.max_parse,
                                max_tokens=self.settings.validation_tokens)

    async def _check(self, record: dict, usage: Counter) -> dict:
        """The persona's validation verdicts: none without validation, a skip when the trust policy trusts it, else
        the three stages' answers."""
        s = self.settings
        if not s.validate:
            return {}
        if s.trust_below is not None and record.get("risk", 1.0) < s.trust_below:
            if uniform(record, "audit") < s.audit:
                self.stats.audited += 1
                return await self._validate(record, usage)
            self.stats.skipped += 1
            skip = {"risk": record["risk"], "trust_below": s.trust_below}
            if uniform(record, "drop") < s.trusted_drop:
                self.stats.dropped += 1
                raise _Rejected("trusted, dropped at the validator's baseline rate",
                                {"skipped": {**skip, "dropped": True}})
            return {"skipped": skip}
        return await self._validate(record, usage)

    async def _validate(self, record: dict, usage: Counter) -> dict:
        verdicts: dict = {}
        for stage in stages(record):
            messages = self.settings.validation(record, stage)
            verdict = await self._ask_parsed(messages, VALIDATION_SCHEMA, parse_label, usage)
            label = verdict["label"] if verdict else "unparseable"
            self.stats.verdicts[stage][label] += 1
            if verdict is None:
                raise _Rejected(f"stage {stage}: no parseable answer in {self.settings.max_parse} requests", verdicts)
            verdicts[stage_key(stage)] = verdict
            if label == IMPLAUSIBLE:
                raise _Rejected(f"stage {stage}: implausible ({verdict['reason']})", verdicts)
        return verdicts

    async def _write(self, record: dict, usage: Counter) -> tuple[str, list[dict], int, int | None]:
        """An acceptable text, its prompt, the generations it took, and its score when texts are filtered by one."""
        s = self.settings
        emotion = record["emotion"]
        messages = s.generation(record)
        problem = ""
        for attempt in range(s.max_texts):
            text = await ask(
                self.client, messages, TEXT_SCHEMA, parse_text, usage, temperature=s.temperature,
                max_tokens=s.text_tokens, seed=_seed(record["id"], record.get("attempt", 0), attempt),
            )
            problem = "unparseable" if text is None else text_problem(
                text, language=s.language, leak=s.leak_words(emotion) if s.forbid_label else ())
            score = None
            if problem is None and s.min_score is not None:
                scored = await self._ask_parsed(s.score(text, emotion), SCORE_SCHEMA,
                                                lambda content: parse_scores(content, ["score"]), usage)
                score = scored["score"] if scored else None
                problem = ("score unparseable" if score is None
                           else f"score below {s.min_score}" if score < s.min_score else None)
            self.stats.texts[problem or "accepted"] += 1
            if problem is None:
                return text, messages, attempt + 1, score
        raise _Rejected(f"no acceptable text in {s.max_texts} generations; last: {problem}")
