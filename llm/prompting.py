"""What a command's prompts are made of: the prompt set (--prompts), the texts' language (--language, else the
profile's), and what the profile, domain and emotion set contribute in that language (attribute labels, text
format and setting, each emotion's definition and words). Used by `llm.generate` and `eval.judge`."""
from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass

from model.emotions import EmotionSet

from .engine.languages import has_rules
from .engine.promptset import PromptSet, available, load_prompts


def add_prompt_options(p, *, language: bool = True) -> None:
    p.add_argument("--prompts", metavar="NAME|PATH",
                   help=f"prompt set: a shipped one ({', '.join(available())}), a .toml file or a directory with "
                   "prompts.toml (default: the shipped set of the language; see llm/prompts/README.md)")
    if language:
        p.add_argument("--language", metavar="CODE", help="language of the texts, e.g. ja (default: the profile's "
                       "`language`, else en); the prompt set must write in it")


def choose_prompts(ref: str | None, language: str | None, default: str = "en") -> PromptSet:
    """The set `ref` checked against an explicit `language`; without `ref`, the shipped set of `language` or, when
    neither is given, of `default` (a profile's language)."""
    if ref is not None:
        return load_prompts(ref, language)
    return load_prompts(None, language or default)


def warn_without_rules(language: str) -> None:
    if not has_rules(language):
        print(f"warning: no post-check rules for language {language!r}: texts are checked with the generic rule "
              "(see llm/engine/languages.py)", file=sys.stderr)


@dataclass(frozen=True)
class Prompting:
    prompts: PromptSet
    labels: Mapping[str, str]
    definitions: Mapping[str, str]
    leak_words: Mapping[str, tuple[str, ...]]
    text_format: str
    context: str | None

    @property
    def language(self) -> str:
        return self.prompts.language


def prompting(args, profile, emotions: EmotionSet) -> Prompting:
    """Everything language-dependent of a generate run, from its options (`prompts`, `language`)."""
    prompts = choose_prompts(args.prompts, args.language, profile.language)
    language = prompts.language
    warn_without_rules(language)
    text_format, context = profile.domain.worded(language) if profile.domain else ("short message", None)
    return Prompting(
        prompts=prompts,
        labels=profile.labels_in(language),
        definitions={e.label: e.defined(language) for e in emotions.emotions},
        leak_words={e.label: e.words.get(language, ()) for e in emotions.emotions},
        text_format=text_format,
        context=context,
    )
