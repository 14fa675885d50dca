"""Prompt sets: every message the engine and the judge send, as data (`llm/prompts/*.toml`, or a user's file).

A set is one TOML file (or a directory holding `prompts.toml`) with a `language` and one table per request kind
(`KINDS`), each with a `system` and a `user` template. Templates are Jinja2, rendered in a sandbox with
StrictUndefined and bounded in time and size (llm.engine.bounded: a template that loops too long, makes too long a
text or recurses too deep fails its first render, before any request, as one error naming it); at load every
template is parsed and may use only its kind's `FIELDS` (llm/prompts/README.md documents them), so a typo fails
before any request is sent. A set's `hash` is `content_hash` of its language and
templates: it is written into results and summaries, and keys the cache of every set but the shipped `en`.
"""
from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from jinja2 import TemplateError, TemplateSyntaxError, meta

from common.errors import UsageError
from common.hashing import content_hash
from common.userfile import read_user_file

from .bounded import BoundedEnvironment, render

SETS_DIR = Path(__file__).parents[1] / "prompts"
DEFAULT = "en"
ROLES = ("system", "user")
_COMMON = {"language"}
FIELDS: dict[str, frozenset[str]] = {kind: frozenset(_COMMON | set(names)) for kind, names in {
    **{f"validation_{k}": ("stage", "attributes", "described") for k in (1, 2, 3)},
    "generation": ("persona", "situation", "attributes", "context", "text_format", "emotion", "definition",
                   "forbid_label", "max_sentences"),
    "score": ("text", "emotion", "definition"),
    "judge": ("text", "emotion", "definition", "criteria"),
    "dialogue": ("speakers", "relationship", "setting", "setting_attributes", "turns", "n_turns",
                 "max_sentences"),
}.items()}
KINDS = tuple(FIELDS)
_ENV = BoundedEnvironment(trim_blocks=True, lstrip_blocks=True, autoescape=False)


@dataclass(frozen=True)
class PromptSet:
    name: str
    language: str
    templates: Mapping[str, Mapping[str, str]]  # kind -> role -> template source

    @property
    def hash(self) -> str:
        return content_hash({"language": self.language, "templates": self.templates})

    @property
    def cache_tag(self) -> str | None:
        """What enters the cache scope: nothing for the shipped `en` (whose requests were keyed before prompt sets
        existed, so its caches stay valid), the hash for any other set."""
        return None if self.hash == shipped(DEFAULT).hash else f"prompts:{self.hash}"

    def provenance(self) -> dict:
        return {"name": self.name, "hash": self.hash, "language": self.language}

    def render(self, kind: str, **fields) -> list[dict]:
        """The [system, user] messages of request `kind` with `fields` (plus the set's language)."""
        messages = []
        for role in ROLES:
            try:
                content = render(_compiled(self.templates[kind][role]), {"language": self.language, **fields})
            except TemplateError as exc:
                raise UsageError(f"prompt set {self.name!r}: [{kind}].{role}: {exc}") from None
            messages.append({"role": role, "content": content})
        return messages


@lru_cache(maxsize=256)
def _compiled(source: str):
    return _ENV.from_string(source)


def _check(name: str, kind: str, role: str, source) -> str:
    where = f"prompt set {name!r}: [{kind}].{role}"
    if not isinstance(source, str):
        raise UsageError(f"{where} must be a string")
    try:
        used = meta.find_undeclared_variables(_ENV.parse(source))
    except TemplateSyntaxError as exc:
        raise UsageError(f"{where}: template syntax error on line {exc.lineno}: {exc.message}") from None
    if unknown := sorted(used - FIELDS[kind]):
        raise UsageError(f"{where} uses unknown field {unknown[0]!r} (fields: {', '.join(sorted(FIELDS[kind]))})")
    return source


def parse_prompt_set(data: dict, name: str) -> PromptSet:
    """A prompt set's TOML data, checked: a language, every kind's system and user template, known fields only."""
    language = data.get("language")
    if not isinstance(language, str) or not language.strip():
        raise UsageError(f"prompt set {name!r} needs a 'language' (a code such as 'en' or 'ja')")
    if unknown := sorted(set(data) - {"language", "name", "description", *KINDS}):
        raise UsageError(f"prompt set {name!r}: unknown table {unknown[0]!r} (templates: {', '.join(KINDS)})")
    templates = {}
    for kind in KINDS:
        table = data.get(kind)
        if not isinstance(table, dict) or (missing := [r for r in ROLES if r not in table]):
            what = f"[{kind}].{missing[0]}" if isinstance(table, dict) else f"the [{kind}] template"
            raise UsageError(f"prompt set {name!r} is missing {what} (every set needs: {', '.join(KINDS)})")
        templates[kind] = {role: _check(name, kind, role, table[role]) for role in ROLES}
    return PromptSet(str(data.get("name", name)), language, templates)


def _read(path: Path, name: str) -> PromptSet:
    raw = read_user_file(path, "prompt set file")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"prompt set {path} is not valid TOML: {exc}") from None
    return parse_prompt_set(data, name)


@lru_cache(maxsize=None)
def shipped(name: str) -> PromptSet:
    return _read(SETS_DIR / f"{name}.toml", name)


def available() -> list[str]:
    return sorted(p.stem for p in SETS_DIR.glob("*.toml"))


def load_prompts(ref: str | None, language: str | None = None) -> PromptSet:
    """The prompt set `ref` (a shipped set's name, a .toml file, or a directory with prompts.toml); without one,
    the shipped set named like `language` (default en). A set whose language is not `language` is refused."""
    if ref is None:
        ref = language or DEFAULT
        if ref not in available():
            raise UsageError(f"no shipped prompt set for language {ref!r} (shipped: {', '.join(available())}); "
                             "give a prompt set with --prompts")
    path = Path(ref)
    if ref in available():
        prompts = shipped(ref)
    elif path.is_dir():
        prompts = _read(path / "prompts.toml", str(path))
    elif ref.endswith(".toml") or path.is_file():
        prompts = _read(path, str(path))
    else:
        raise UsageError(f"unknown prompt set {ref!r} (shipped: {', '.join(available())}, or a .toml path)")
    if language is not None and prompts.language != language:
        raise UsageError(f"prompt set {ref!r} has no templates for language {language!r} (it writes "
                         f"{prompts.language!r})")
    return prompts

