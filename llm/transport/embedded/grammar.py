"""Constrained decoding for `response_format`: a JSON schema compiled by llguidance (a maintained grammar library
that ships wheels) into a matcher per request, which masks every token the schema does not allow next.

JSON is compiled without flexible whitespace (`{"a":1}`): a small model left free to add whitespace may spend
its whole `max_tokens` on it."""
from __future__ import annotations

import llguidance
import numpy as np

OPTIONS = {"whitespace_flexible": False}


class BadSchema(ValueError):
    """A response_format the grammar library cannot compile (the message says why)."""


def schema_of(response_format) -> dict | None:
    """The JSON schema a request's `response_format` asks for (None: free text); BadSchema for a malformed one.
    Takes OpenAI's `json_schema` form, llama.cpp's `json_object` + `schema`, and a bare `json_object` (any
    object)."""
    if response_format is None:
        return None
    if not isinstance(response_format, dict):
        raise BadSchema("response_format must be an object")
    kind = response_format.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        schema = response_format.get("schema", {"type": "object"})
    elif kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
    else:
        raise BadSchema(f"response_format type must be text, json_object or json_schema, not {kind!r}")
    if not isinstance(schema, dict):
        raise BadSchema("response_format has no JSON schema object")
    return schema


class Grammars:
    """Matchers for one tokenizer (llm.transport.embedded.tokens.ChatTokenizer, wrapped once)."""

    def __init__(self, tokenizer):
        self.tokenizer = llguidance.LLTokenizer(tokenizer.json, eos_token=tokenizer.eos_token_id)
        self.vocab = self.tokenizer.vocab_size

    def matcher(self, schema: dict) -> llguidance.LLMatcher:
        """A fresh matcher for `schema`; BadSchema when it cannot be compiled."""
        try:
            grammar = llguidance.LLMatcher.grammar_from_json_schema(schema, defaults=OPTIONS)
        except (ValueError, TypeError) as exc:
            raise BadSchema(f"the JSON schema cannot be compiled: {exc}") from None
        failed, messages = llguidance.LLMatcher.validate_grammar_with_warnings(grammar, self.tokenizer)
        if failed:
            raise BadSchema(f"the JSON schema cannot be compiled: {messages[0]}")
        return llguidance.LLMatcher(self.tokenizer, grammar, log_level=0)

    def allowed(self, matchers: list) -> np.ndarray:
        """[len(matchers), vocab] bool: the tokens each matcher allows next (every token for None). In numpy, on
        one thread: torch would share these vocabulary-wide rows between its threads, which wait on each other
        on a busy machine."""
        words = -(-self.vocab // 32)
        bits = np.full((len(matchers), words), -1, dtype=np.int32)  # all 32 bits set: all allowed
        for row, matcher in enumerate(matchers):
            if matcher is not None:
                matcher.unsafe_compute_mask_ptr(bits[row].ctypes.data, words * 4)
        unpacked = np.unpackbits(bits.view(np.uint8), axis=-1, bitorder="little")  # token 32w+b: bit b of word w
        return unpacked[:, :self.vocab].view(np.bool_)
