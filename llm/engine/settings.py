"""What the settings of every slot mode share (`SlotSettings`, the base of text mode's `Settings` and dialogue
mode's `DialogueSettings`): how the prompts name attributes and show their values, the prompt set, the emotion set
(one object: each emotion's name, definition and leak words are read from it in the prompt set's language), the
temperature, and the bounds on generations per draw and draws per slot.

Prompts show a record in the texts' language (`value`: a category's label there, `name`: an emotion's name there);
the results keep the canonical values and labels, with what the prompts showed beside them (`beside`)."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from common.schema import SHOWN, stage_groups
from model.emotions import Emotion, EmotionSet

from .promptset import PromptSet, shipped

View = Callable[[Mapping, Callable[[str, str], str], Callable[[str], str]], dict]
"""(record, value(attribute, category), name(emotion)) -> the part of a record that prompts show, shown so."""


def _as_is(attribute: str, category: str) -> str:
    return category


def _itself(emotion: str) -> str:
    return emotion


def show_groups(record: Mapping, value: Callable[[str, str], str]) -> dict[str, dict[str, str]]:
    """The record's stage groups, each category shown by `value(attribute, category)`."""
    return {key: {a: value(a, v) for a, v in group.items()} for key, group in stage_groups(record).items()}


@dataclass(frozen=True)
class SlotSettings:
    labels: Mapping[str, str] = field(default_factory=dict)
    """Attribute name -> how the prompts name it (the profile's labels in the texts' language); empty: raw keys."""
    values: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """Attribute -> category -> how the prompts show it (the profile's value labels in the texts' language); a
    category without one is shown as it is."""
    prompts: PromptSet = field(default_factory=lambda: shipped("en"))
    """The templates, and the texts' language."""
    emotions: EmotionSet | None = None
    """The emotion set: names, definitions and words per language (None: bare labels, each its own definition)."""
    temperature: float = 1.0
    """Generation temperature."""
    max_texts: int = 3
    """Generations per draw before it is replaced."""
    max_draws: int = 5
    """Draws (personas, dialogues) tried per slot."""

    @property
    def language(self) -> str:
        return self.prompts.language

    def _emotion(self, emotion: str) -> Emotion | None:
        return self.emotions.get(emotion) if self.emotions is not None else None

    def definition(self, emotion: str) -> str | None:
        """The emotion's definition in the texts' language (None where the set does not hold it)."""
        found = self._emotion(emotion)
        return found.defined(self.language) if found is not None else None

    def leak_words(self, emotion: str) -> tuple[str, ...]:
        """What naming the emotion means in the texts' language: its label, its name and its words there."""
        found = self._emotion(emotion)
        return found.leak_words(self.language) if found is not None else (emotion,)

    def name(self, emotion: str) -> str:
        """How the prompts name the emotion: its name in the texts' language, else its label."""
        found = self._emotion(emotion)
        return found.named(self.language) if found is not None else emotion

    def value(self, attribute: str, category: str) -> str:
        """How the prompts show a category of `attribute`: its label in the texts' language, else itself."""
        return self.values.get(attribute, {}).get(category, category)

    def beside(self, view: View, record: Mapping) -> dict:
        """`{"shown": {"language", ...}}`: the record's part that prompts show (`view`), as they showed it, where
        that differs from the record's own values; else nothing."""
        shown = view(record, self.value, self.name)
        return {} if shown == view(record, _as_is, _itself) else {SHOWN: {"language": self.language, **shown}}
