"""Prompt prefixes kept between requests, so that a prompt that starts like an earlier one (the same system
prompt and chat-template head, or the whole prompt asked again with another seed) is not read again.

What is kept is the keys and values of whole pieces of positions [k*CHUNK, (k+1)*CHUNK), under the tokens up to
the piece's end. Exact by construction: the model cuts every run of fed tokens into pieces at the same multiples
of CHUNK (llm.transport.embedded.llama), a piece's products are row-exact and its attention reads only its own
queries and the keys and values before its end, so a piece's keys and values are bitwise the same whether it was
computed in this request, beside others, or taken from here; a request's answer does not depend on what is kept.
The piece that holds a prompt's last token is always computed (its logits are the first answer's). The least
recently used pieces go first beyond `budget` bytes."""
from __future__ import annotations

from collections import OrderedDict

import torch

from .llama import CHUNK, Sequence

BUDGET = 512 * 2**20  # bytes of keys and values kept (float32: 46 KiB a position for SmolLM2-135M)


class Prefixes:
    def __init__(self, budget: int = BUDGET):
        self.budget, self.used = budget, 0
        self._kept: OrderedDict[tuple[int, ...], torch.Tensor] = OrderedDict()

    def reuse(self, tokens: list[int], sequence: Sequence) -> int:
        """Fill `sequence`'s cache with the longest kept prefix of `tokens` in whole pieces, short of the piece
        holding the last token; the number of positions filled."""
        keys = []
        for end in range(CHUNK, len(tokens), CHUNK):
            if tuple(tokens[:end]) not in self._kept:
                break
            keys.append(tuple(tokens[:end]))
        if keys:
            sequence.cache[:, :, :, :len(keys) * CHUNK] = torch.cat([self._kept[key] for key in keys], dim=3)
        self._touch(keys)
        return len(keys) * CHUNK

    def keep(self, tokens: list[int], sequence: Sequence) -> None:
        """Keep the whole pieces of `tokens`, which `sequence` has just been fed from its start."""
        keys = [tuple(tokens[:end]) for end in range(CHUNK, len(tokens) + 1, CHUNK)]
        for end, key in zip(range(CHUNK, len(tokens) + 1, CHUNK), keys):
            if key not in self._kept:
                self._kept[key] = sequence.cache[:, :, :, end - CHUNK:end].clone()
                self.used += self._kept[key].nbytes
        self._touch(keys)
        while self.used > self.budget:
            self.used -= self._kept.popitem(last=False)[1].nbytes

    def _touch(self, keys: list[tuple[int, ...]]) -> None:
        """Mark a prefix's pieces as just used, its first piece last: a piece outlives the longer ones."""
        for key in reversed(keys):
            self._kept.move_to_end(key)
