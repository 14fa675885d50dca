"""Conversation mode: one request per dialogue, structured output, checked turn by turn.

A dialogue from `model.dialogue.sample_dialogues` fixes the speakers (personas), their relationship, the setting
and the sequence of (speaker, emotion) turns; the LLM writes the utterances. An answer whose turn count, speakers
or emotions differ from the requested sequence, or that has an empty utterance, is regenerated (bounded); after
`max_texts` tries the dialogue is redrawn from the model (next attempt), after `max_draws` the slot fails.
Dialogues are slots of the same runner as text mode (llm.engine.runner); their CSV form is
`model.dialogue.corpus.meld_csv`.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass

from llm.transport.client import RequestFailed
from llm.transport.protocols import ChatClient
from model.dialogue.corpus import speaker_name

from .answers import character_problem, parse_object
from .ask import ask
from .prompts import persona_lines
from .runner import SlotFailed, run_slots
from .stats import RunStats

MATCHING = ("profile", "domain", "seed", "benchmark", "labels")  # what a resumed dialogue must share with its slot


@dataclass(frozen=True)
class DialogueSettings:
    labels: Mapping[str, str]  # attribute -> how prompts name it
    temperature: float = 1.0
    max_texts: int = 3  # generations per dialogue before it is redrawn
    max_draws: int = 5
    tokens_per_turn: int = 80


def schema(dialogue: dict, emotions: list[str]) -> dict:
    n = dialogue["n_turns"]
    turn = {
        "type": "object",
        "properties": {
            "speaker": {"type": "string", "enum": [speaker_name(s["speaker"]) for s in dialogue["speakers"]]},
            "utterance": {"type": "string"},
            "emotion": {"type": "string", "enum": emotions},
        },
        "required": ["speaker", "utterance", "emotion"],
    }
    return {"type": "object", "properties": {"turns": {"type": "array", "items": turn, "minItems": n, "maxItems": n}},
            "required": ["turns"]}


def messages(dialogue: dict, labels: Mapping[str, str]) -> list[dict]:
    people = "\n\n".join(f"{speaker_name(s['speaker'])}:\n{persona_lines(s, labels)}" for s in dialogue["speakers"])
    setting = "\n".join(f"- {labels.get(k, k)}: {v}" for k, v in dialogue["setting"].items())
    order = "\n".join(f"{i + 1}. {speaker_name(t['speaker'])}: {t['emotion']}" for i, t in enumerate(dialogue["turns"]))
    user = (
        f"The speakers:\n\n{people}\n\nTheir relationship: {dialogue['relationship']}\nThe setting:\n{setting}\n\n"
        f"Write their conversation as exactly {dialogue['n_turns']} turns, in this order, each turn one or two short "
        f"spoken sentences by that speaker clearly expressing the given emotion:\n{order}\n\n"
        "Keep every speaker and emotion exactly as listed."
    )
    system = ("You write realistic conversations between the people described. Answer only with a JSON object "
              '{"turns": [{"speaker": ..., "utterance": ..., "emotion": ...}, ...]}.')
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def check(content: str, dialogue: dict) -> tuple[list[dict] | None, str | None]:
    """(turns with text, None) when the answer follows the requested sequence, else (None, why)."""
    obj = parse_object(content)
    turns = obj.get("turns") if obj else None
    if not isinstance(turns, list):
        return None, "unparseable"
    if len(turns) != dialogue["n_turns"]:
        return None, "wrong turn count"
    out = []
    for want, got in zip(dialogue["turns"], turns):
        if not isinstance(got, dict) or not isinstance(got.get("utterance"), str) or not got["utterance"].strip():
            return None, "empty utterance"
        if got.get("speaker") != speaker_name(want["speaker"]):
            return None, "wrong speaker"
        if str(got.get("emotion", "")).strip().lower() != want["emotion"]:
            return None, "wrong emotion"
        if problem := character_problem(got["utterance"], newline=False):
            return None, problem
        out.append({**want, "text": got["utterance"].strip()})
    return out, None


def generate_dialogues(
    dialogues: Iterable[dict],
    client: ChatClient,
    *,
    settings: DialogueSettings,
    emotions: list[str],
    redraw: Callable[[dict, int], dict],
    stats: RunStats,
    workers: int | None = None,
) -> AsyncIterator[dict]:
    """Yield one finished dialogue per input, in completion order, through the slot runner (`workers` slots in
    flight, default 2 x the client's concurrency); failed slots are recorded in `stats`."""

    async def one(dialogue: dict) -> dict:
        first = dialogue["attempt"]
        for draw in range(settings.max_draws):
            if draw:
                stats.redraws += 1
                dialogue = redraw(dialogue, first + draw)
            msgs, usage = messages(dialogue, settings.labels), Counter()
            for attempt in range(settings.max_texts):
                try:
                    turns, problem = await ask(
                        client, msgs, schema(dialogue, emotions), lambda c, d=dialogue: check(c, d), usage,
                        temperature=settings.temperature, max_tokens=settings.tokens_per_turn * dialogue["n_turns"],
                        seed=attempt)
                except RequestFailed as exc:
                    raise SlotFailed(str(exc)) from None
                stats.texts[problem or "accepted"] += 1
                if turns is not None:
                    return {**dialogue, "turns": turns, "model": client.model, "usage": dict(usage),
                            "dialogue_draws": draw + 1, "text_attempts": attempt + 1}
        raise SlotFailed(f"no dialogue matching its sequence in {settings.max_draws} draws")

    return run_slots(dialogues, one, client, stats=stats, workers=workers)
