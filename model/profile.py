"""Load a profile file (see profiles/README.md) and compile it to arrays.

A profile or domain is named (`jp`, `us`; `sns`, `workplace`, `conversation`: the files shipped in `profiles/` and
`domains/`) or given as a path to a JSON file. `load_profile` returns the compiled `Profile` (`model.compiled`,
built by `model.compiler.compile_profile`); `load_with_data` also returns the file's raw data, which the tools that
rewrite a profile (`python -m model.priors calibrate`, `learn`) start from.
"""
from __future__ import annotations

import json
from pathlib import Path

import orjson

from common.errors import UsageError
from common.userfile import read_user_file
from model.compiled import Profile
from model.compiler import compile_profile
from model.parse import parse_domain

__all__ = ["DOMAINS_DIR", "PROFILES_DIR", "Profile", "available", "compile_profile", "load_profile",
           "load_with_data", "read_json_object", "read_named", "source_ref"]

PROFILES_DIR = Path(__file__).parent / "profiles"
DOMAINS_DIR = Path(__file__).parent / "domains"


def available(directory: Path) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.json"))


def _is_path(ref: str) -> bool:
    """Whether `ref` names a file rather than a shipped profile or domain (a name holds no "/")."""
    return ref.endswith(".json") or "/" in ref or Path(ref).is_file()


def source_ref(ref: str) -> str:
    """How provenance names the profile `ref`: its path when it is a file, else its name."""
    return str(Path(ref)) if _is_path(ref) else ref


def named_path(ref: str, directory: Path, kind: str) -> Path:
    """The file of `ref`: a shipped file's name (its stem in `directory`) or a path."""
    path = Path(ref)
    if not _is_path(ref):
        path = directory / f"{ref}.json"
        if not path.is_file():
            raise UsageError(f"unknown {kind} {ref!r} (available: {', '.join(available(directory))}, or a .json path)")
    return path


def read_named(ref: str, directory: Path, kind: str) -> dict:
    """The JSON object of `ref`: a shipped file's name (its stem in `directory`) or a path."""
    return read_json_object(named_path(ref, directory, kind), kind)


def read_json_object(path: Path, kind: str) -> dict:
    """The JSON object in the file `path` (read by `common.userfile`: a regular file of at most 16 MiB); UsageError
    (naming the `kind` of file) when it is missing or not one."""
    raw = read_user_file(path, f"{kind} file")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise UsageError(f"{kind} file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{kind} file {path} must hold a JSON object")
    json.loads(raw, object_pairs_hook=_refuse_repeats(f"{kind} file {path}"))
    return data


def _refuse_repeats(where: str):
    """A json object hook that refuses an object naming a key twice (JSON parsers keep the last silently)."""
    def pairs(items: list[tuple[str, object]]) -> dict:
        seen = set()
        for key, _ in items:
            if key in seen:
                raise UsageError(f"{where}: key {key!r} appears twice in one object")
            seen.add(key)
        return dict(items)

    return pairs


def load_with_data(ref: str = "jp", domain: str | None = None) -> tuple[dict, Profile]:
    """The raw JSON of the profile `ref` (a name or a JSON path) and its compiled form, optionally restricted by a
    domain (a name or a path); a UsageError about the file's content names the file first (`profile PATH: ...`)."""
    path = named_path(ref, PROFILES_DIR, "profile")
    data = read_json_object(path, "profile")
    dom = parse_domain(read_named(domain, DOMAINS_DIR, "domain"), domain) if domain else None
    try:
        return data, compile_profile(data, dom)
    except UsageError as exc:
        raise UsageError(f"profile {path}: {exc}") from None


def load_profile(ref: str = "jp", domain: str | None = None) -> Profile:
    """Load a profile by name (`jp`, `us`) or JSON path, optionally restricted by a domain (name or path)."""
    return load_with_data(ref, domain)[1]
