"""A run's engine settings from its config: the prompt set (--prompts; else the shipped set of --language, else of
the profile's language), the profile's attribute labels and value labels and the domain's text format in that
language (and, in dialogue mode, the relationships' labels), the emotion set, and the mode's own switches
(`text_settings`, `dialogue_settings`). `choose_prompts` serves `eval.judge` too."""
from __future__ import annotations

import sys

from model.emotions import EmotionSet

from ..engine.dialogue import RELATIONSHIP, DialogueSettings
from ..engine.languages import has_rules
from ..engine.promptset import PromptSet, load_prompts
from ..engine.texts import Settings
from .config import AUDIT, RunConfig


def choose_prompts(ref: str | None, language: str | None, default: str = "en") -> PromptSet:
    """The set `ref` checked against an explicit `language`; without `ref`, the shipped set of `language` or, when
    neither is given, of `default` (a profile's language)."""
    if ref is not None:
        return load_prompts(ref, language)
    return load_prompts(None, language or default)


def _shared(config: RunConfig, profile, emotions: EmotionSet) -> dict:
    """The fields every mode's settings take from the run: prompts, attribute labels and value labels, emotions,
    temperature."""
    prompts = choose_prompts(config.prompts, config.language, profile.language)
    if not has_rules(prompts.language):
        print(f"warning: no post-check rules for language {prompts.language!r}: texts are checked with the generic "
              "rule (see llm/engine/languages.py)", file=sys.stderr)
    return {"prompts": prompts, "labels": profile.labels_in(prompts.language),
            "values": profile.value_labels_in(prompts.language), "emotions": emotions,
            "temperature": config.temperature}


def text_settings(config: RunConfig, profile, emotions: EmotionSet) -> Settings:
    """Text mode's settings of `config` for the (method's) `profile`."""
    shared = _shared(config, profile, emotions)
    language = shared["prompts"].language
    text_format, context = profile.domain.worded(language) if profile.domain else ("short message", None)
    return Settings(
        **shared,
        text_format=text_format,
        context=context,
        method=config.method,
        validate=config.method == "personagen" and not config.no_validate,
        trust_below=config.trust_below,
        audit=AUDIT if config.audit is None else config.audit,
        trusted_drop=profile.plausibility.baseline if config.trust_below is not None else 0.0,
        min_score=(config.threshold or 3) if config.method == "priorwork" else None,
        forbid_label=config.no_label_leak,
        keep_prompts=not config.no_prompts,
        max_draws=config.max_draws,
    )


def dialogue_settings(config: RunConfig, profile, emotions: EmotionSet) -> DialogueSettings:
    """Dialogue mode's settings of `config` for the speakers' `profile`; its `values` show the relationships too."""
    from model.dialogue.sampler import relationship_labels

    shared = _shared(config, profile, emotions)
    values = {RELATIONSHIP: relationship_labels(shared["prompts"].language), **shared.pop("values")}
    return DialogueSettings(**shared, values=values)
