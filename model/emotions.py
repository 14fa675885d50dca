"""Emotion label sets as data (`model/emotion_sets/*.json`: the presets), and their exactly balanced assignment to
record ids.

An emotion file is `{"name", "source", "labels": [{"label", "definition", "names": {lang: name},
"definitions": {lang: text}, "words": {lang: [word, ...]}, "maps": {preset: label or null}}, ...]}`: each label
with a short definition (what the prompts tell the LLM), optional names (how prompts in a language name it; records
keep the label), definitions and leak-check words per language, and optional mappings to the labels of other presets
(null: no counterpart). The order of `labels` is the order of the assignment.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from common.errors import UsageError

SETS_DIR = Path(__file__).parent / "emotion_sets"
DEFAULT = "paper"
SHIPPED = ("paper", "carer", "meld", "emorynlp", "iemocap6")  # the presets, in the order --help lists them


@dataclass(frozen=True)
class Emotion:
    label: str
    definition: str
    names: Mapping[str, str] = field(default_factory=dict)  # language -> how prompts in that language name it
    definitions: Mapping[str, str] = field(default_factory=dict)  # language -> definition in that language
    words: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # language -> words that name it
    maps: Mapping[str, str | None] = field(default_factory=dict)  # preset -> its label (None: no counterpart)

    def named(self, language: str) -> str:
        """How prompts in `language` name the emotion: its name there, else its label."""
        return self.names.get(language, self.label)

    def defined(self, language: str) -> str:
        """The definition in `language`, else the default one."""
        return self.definitions.get(language, self.definition)

    def leak_words(self, language: str) -> tuple[str, ...]:
        """What `--no-label-leak` forbids in a text of `language`: the label itself, its name and its words there."""
        return tuple(dict.fromkeys((self.label, self.named(language), *self.words.get(language, ()))))


@dataclass(frozen=True)
class EmotionSet:
    name: str
    emotions: tuple[Emotion, ...]
    source: str = ""

    @property
    def labels(self) -> list[str]:
        return [e.label for e in self.emotions]

    def get(self, label: str) -> Emotion | None:
        """The emotion of `label` (None when the set has none)."""
        return next((e for e in self.emotions if e.label == label), None)

    def mapping(self, other: str) -> dict[str, str | None]:
        """Each label's counterpart in the preset `other` (None where there is none or no mapping is given)."""
        return {e.label: e.maps.get(other) for e in self.emotions}


def _strings(value, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(w, str) and w.strip() for w in value):
        raise UsageError(f"{where}: expected a list of non-empty strings")
    return tuple(value)


def _by_language(value, where: str, read) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UsageError(f"{where}: expected an object keyed by language")
    return {lang: read(v, f"{where}.{lang}") for lang, v in value.items()}


def _text(value, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"{where}: expected a non-empty string")
    return value


def _emotion(entry, where: str) -> Emotion:
    if not isinstance(entry, dict):
        raise UsageError(f"{where}: expected an object with a 'label'")
    label = entry.get("label")
    if not isinstance(label, str) or not label.strip():
        raise UsageError(f"{where}: empty or missing label")
    where = f"{where} ({label!r})"
    maps = entry.get("maps") or {}
    if not isinstance(maps, dict) or not all(v is None or isinstance(v, str) for v in maps.values()):
        raise UsageError(f"{where}.maps: expected an object of preset -> label or null")
    return Emotion(label, _text(entry.get("definition", label), f"{where}.definition"),
                   _by_language(entry.get("names"), f"{where}.names", _text),
                   _by_language(entry.get("definitions"), f"{where}.definitions", _text),
                   _by_language(entry.get("words"), f"{where}.words", _strings), maps)


def parse_emotion_set(data, where: str) -> EmotionSet:
    """An emotion file's data, checked: at least 2 labels, none empty or repeated, and no two named alike in a
    language."""
    entries = data.get("labels") if isinstance(data, dict) else None
    if not isinstance(entries, list) or len(entries) < 2:
        raise UsageError(f"{where}: needs a 'labels' list of at least 2 emotions")
    emotions = tuple(_emotion(e, f"{where}: labels[{i}]") for i, e in enumerate(entries))
    labels = [e.label for e in emotions]
    if dup := next((lab for lab in labels if labels.count(lab) > 1), None):
        raise UsageError(f"{where}: label {dup!r} appears twice")
    for language in dict.fromkeys(lang for e in emotions for lang in e.names):
        named = [e.named(language) for e in emotions]
        if dup := next((name for name in named if named.count(name) > 1), None):
            both = [e.label for e in emotions if e.named(language) == dup]
            raise UsageError(f"{where}: {both[0]!r} and {both[1]!r} are both named {dup!r} in {language!r}")
    return EmotionSet(str(data.get("name", Path(where).stem)), emotions, str(data.get("source", "")))


def check_mappings(emotions: EmotionSet, presets: Mapping[str, EmotionSet], where: str) -> None:
    """Every mapping names a preset and one of its labels (or null)."""
    for e in emotions.emotions:
        for other, label in e.maps.items():
            if other not in presets:
                raise UsageError(f"{where}: {e.label!r} maps to unknown label set {other!r} "
                                 f"(presets: {', '.join(presets)})")
            if label is not None and label not in presets[other].labels:
                raise UsageError(f"{where}: {e.label!r} maps to unknown label {label!r} of {other!r} "
                                 f"({', '.join(presets[other].labels)})")


def _read(path: Path) -> EmotionSet:
    from model.profile import read_json_object

    return parse_emotion_set(read_json_object(path, "emotion"), str(path))


def _presets() -> dict[str, EmotionSet]:
    presets = {name: _read(SETS_DIR / f"{name}.json") for name in SHIPPED}
    for name, emotions in presets.items():
        check_mappings(emotions, presets, name)
    return presets


PRESETS: dict[str, EmotionSet] = _presets()


def load_emotions(spec: str = DEFAULT) -> EmotionSet:
    """A preset name (paper, carer, meld, emorynlp, iemocap6), an emotion file (a .json path), or a
    comma-separated list of labels (each its own definition)."""
    if spec in PRESETS:
        return PRESETS[spec]
    if spec.endswith(".json") or Path(spec).is_file():
        emotions = _read(Path(spec))
        check_mappings(emotions, PRESETS, spec)
        return emotions
    labels = [s.strip() for s in spec.split(",")]
    if len(labels) < 2:
        raise UsageError(f"unknown emotion preset {spec!r} (presets: {', '.join(PRESETS)}; "
                         "or a .json emotion file, or a comma-separated list of at least 2 labels)")
    if any(not s for s in labels) or len(set(labels)) != len(labels):
        raise UsageError(f"emotion list {spec!r} has an empty or repeated label")
    if bad := [s for s in labels if not s.isprintable()]:
        raise UsageError(f"emotion label {bad[0]!r} holds a newline or another control character")
    return EmotionSet(spec, tuple(Emotion(s, s) for s in labels))


def resolve_emotions(spec: str = DEFAULT) -> list[str]:
    """The labels of `load_emotions(spec)`, in order."""
    return load_emotions(spec).labels


def assign(ids, emotions: list[str]) -> np.ndarray:
    """Record i gets emotions[i mod |E|]: ids 0..n-1 give each label n // |E| records, and the first n mod |E|
    labels one more. The assignment of id i never depends on n, so shards and resumed runs agree."""
    return np.asarray(ids, dtype=np.int64) % len(emotions)
