"""What the settings of every slot mode share (`SlotSettings`, the base of text mode's `Settings` and dialogue
mode's `DialogueSettings`): how the prompts name attributes, the prompt set, the emotion set (one object: each
emotion's definition and leak words are read from it in the prompt set's language), the temperature, and the
bounds on generations per draw and draws per slot."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from model.emotions import EmotionSet

from .promptset import PromptSet, shipped


@dataclass(frozen=True)
class SlotSettings:
    labels: Mapping[str, str] = field(default_factory=dict)
    """Attribute name -> how the prompts name it (the profile's labels in the texts' language); empty: raw keys."""
    prompts: PromptSet = field(default_factory=lambda: shipped("en"))
    """The templates, and the texts' language."""
    emotions: EmotionSet | None = None
    """The emotion set: definitions and words per language (None: bare labels, each its own definition)."""
    temperature: float = 1.0
    """Generation temperature."""
    max_texts: int = 3
    """Generations per draw before it is replaced."""
    max_draws: int = 5
    """Draws (personas, dialogues) tried per slot."""

    @property
    def language(self) -> str:
        return self.prompts.language

    def definition(self, emotion: str) -> str | None:
        """The emotion's definition in the texts' language (None where the set does not hold it)."""
        found = self.emotions.get(emotion) if self.emotions is not None else None
        return found.defined(self.language) if found is not None else None

    def leak_words(self, emotion: str) -> tuple[str, ...]:
        """What naming the emotion means in the texts' language: its label and its words there."""
        found = self.emotions.get(emotion) if self.emotions is not None else None
        return found.leak_words(self.language) if found is not None else (emotion,)
