"""How each backend wants structured output asked for: one small table, nothing else differs."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from common.errors import UsageError


@dataclass(frozen=True)
class Dialect:
    name: str
    response_format: Callable[[str, dict], dict]  # (schema name, JSON schema) -> request field
    owners: tuple[str, ...]  # `owned_by` values of GET /models that identify the backend


DIALECTS = {
    d.name: d
    for d in (
        Dialect(
            "openai",  # OpenAI, vLLM, and anything else that follows the reference API
            lambda name, schema: {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}},
            ("openai", "system", "vllm"),
        ),
        Dialect(
            "llamacpp",  # llama-cpp-python's server rejects json_schema; llama.cpp's llama-server takes this too
            lambda name, schema: {"type": "json_object", "schema": schema},
            ("me", "llamacpp"),
        ),
        Dialect(
            "ollama",  # Ollama >= 0.5 constrains decoding to the schema but ignores "strict"
            lambda name, schema: {"type": "json_schema", "json_schema": {"name": name, "schema": schema}},
            ("library", "ollama"),
        ),
    )
}


def find_dialect(name: str) -> Dialect:
    try:
        return DIALECTS[name]
    except KeyError:
        raise UsageError(f"unknown dialect {name!r}; choose auto, {', '.join(DIALECTS)}") from None


def detect(owners: set[str]) -> Dialect:
    """The dialect whose `owned_by` values match the server's model list; OpenAI's when none does."""
    for d in DIALECTS.values():
        if owners & set(d.owners):
            return d
    return DIALECTS["openai"]
