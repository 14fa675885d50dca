"""Conversation mode: one request per dialogue, structured output, checked turn by turn.

A dialogue from `model.dialogue.sample_dialogues` fixes the speakers (personas), their relationship, the setting
and the sequence of (speaker, emotion) turns; the LLM writes the utterances. An answer whose turn count, speakers
or emotions differ from the requested sequence, or that has an empty utterance, is regenerated (bounded); after
`max_texts` tries the dialogue is redrawn from the model (next attempt), after `max_draws` the slot fails.
Dialogues are slots of the same runner as text mode (llm.engine.slots); their CSV form is
`model.dialogue.corpus.meld_csv`.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass

from llm.transport.client import RequestFailed
from llm.transport.protocols import ChatClient
from model.dialogue.corpus import speaker_name

from .answers import character_problem, parse_object
from .ask import ask
from .settings import SlotSettings, show_groups
from .messages import MAX_SENTENCES, lines, persona_lines, record_rows
from .slots import SlotFailed, run_slots
from .stats import RunStats

MATCHING = ("profile", "domain", "seed", "benchmark", "labels")  # what a resumed dialogue must share with its slot
RELATIONSHIP = "relationship"  # the dialogue's key, and its key in the settings' `values` (how prompts show it)


@dataclass(frozen=True)
class DialogueSettings(SlotSettings):
    """How dialogue mode writes its dialogues (the shared fields in llm.engine.settings)."""

    tokens_per_turn: int = 80
    """max_tokens of a dialogue request, per turn."""


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


def dialogue_view(dialogue: dict, value: Callable[[str, str], str], name: Callable[[str], str]) -> dict:
    """What a dialogue's prompt shows of it: its speakers' stage groups and setting (`value`), its relationship
    (`value` of RELATIONSHIP) and its turns' emotions (`name`)."""
    return {"speakers": [show_groups(s, value) for s in dialogue["speakers"]],
            RELATIONSHIP: value(RELATIONSHIP, dialogue[RELATIONSHIP]),
            "setting": {k: value(k, v) for k, v in dialogue["setting"].items()},
            "turns": [{"emotion": name(t["emotion"])} for t in dialogue["turns"]]}


def messages(settings: SlotSettings, dialogue: dict) -> list[dict]:
    """The dialogue request of `dialogue` in the settings' `dialogue` template (fields: llm/prompts/README.md),
    showing it in the texts' language (`dialogue_view`)."""
    labels, shown = settings.labels, dialogue_view(dialogue, settings.value, settings.name)
    speakers = [{"name": speaker_name(s["speaker"]), "persona": persona_lines(groups, labels),
                 "attributes": record_rows(groups, labels, 2)} for s, groups in zip(dialogue["speakers"],
                                                                                   shown["speakers"])]
    setting = [{"name": k, "label": labels.get(k, k), "value": v, "stage": 3} for k, v in shown["setting"].items()]
    turns = [{"number": i + 1, "speaker": speaker_name(t["speaker"]), "emotion": s["emotion"],
              "definition": settings.definition(t["emotion"]) or s["emotion"]}
             for i, (t, s) in enumerate(zip(dialogue["turns"], shown["turns"]))]
    return settings.prompts.render("dialogue", speakers=speakers, relationship=shown[RELATIONSHIP],
                          setting=lines(setting), setting_attributes=setting, turns=turns,
                          n_turns=dialogue["n_turns"], max_sentences=MAX_SENTENCES)


def check(content: str, dialogue: dict, name: Callable[[str], str] = str) -> tuple[list[dict] | None, str | None]:
    """(turns with text, None) when the answer follows the requested sequence, each emotion written as `name`
    shows it in the prompt (the settings' `name`; default the label), else (None, why). The turns keep their
    labels."""
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
        if str(got.get("emotion", "")).strip().lower() != name(want["emotion"]).lower():
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
    flight, default 2 x the client's concurrency); failed slots are recorded in `stats`. The LLM answers each
    emotion as the prompt names it (`settings.name`); the results hold the labels."""
    shown = [settings.name(e) for e in emotions]

    async def one(dialogue: dict) -> dict:
        first = dialogue["attempt"]
        for draw in range(settings.max_draws):
            if draw:
                stats.redraws += 1
                dialogue = redraw(dialogue, first + draw)
            msgs, usage = messages(settings, dialogue), Counter()
            for attempt in range(settings.max_texts):
                try:
                    turns, problem = await ask(
                        client, msgs, schema(dialogue, shown), lambda c, d=dialogue: check(c, d, settings.name), usage,
                        temperature=settings.temperature, max_tokens=settings.tokens_per_turn * dialogue["n_turns"],
                        seed=attempt)
                except RequestFailed as exc:
                    raise SlotFailed(str(exc)) from None
                stats.texts[problem or "accepted"] += 1
                if turns is not None:
                    return {**dialogue, "turns": turns, **settings.beside(dialogue_view, dialogue),
                            "model": client.model, "usage": dict(usage),
                            "prompt_set": settings.prompts.hash,
                            "dialogue_draws": draw + 1, "text_attempts": attempt + 1}
        raise SlotFailed(f"no dialogue matching its sequence in {settings.max_draws} draws")

    return run_slots(dialogues, one, client, stats=stats, workers=workers)
