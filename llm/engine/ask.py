"""Asking the client one question: the request helpers of text mode, dialogue mode and the judge."""
from __future__ import annotations

from collections import Counter

from llm.transport.protocols import ChatClient


async def ask(client: ChatClient, messages, schema, parse, usage: Counter, *, temperature, max_tokens, seed):
    """One request; its token usage added to `usage`; the answer through `parse` (None when unreadable)."""
    completion = await client.chat(messages, schema=schema, temperature=temperature, max_tokens=max_tokens, seed=seed)
    usage["requests"] += 1
    for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
        usage[key] += int(completion.usage.get(key, 0))
    return parse(completion.content)


async def ask_parsed(client: ChatClient, messages, schema, parse, usage: Counter, *, tries: int, max_tokens: int):
    """A question with one right answer (a label, a score): asked again, warmer, while the answer is unreadable;
    None after `tries` requests."""
    for attempt in range(tries):
        answer = await ask(client, messages, schema, parse, usage, temperature=0.0 if attempt == 0 else 0.7,
                           max_tokens=max_tokens, seed=attempt)
        if answer is not None:
            return answer
    return None
