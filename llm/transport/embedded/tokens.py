"""The embedded model's tokenizer: a `tokenizers` BPE tokenizer (from the `tokenizer.json` kept by
llm.transport.embedded.weights) and the model's chat template, rendered with Jinja2 as transformers renders
chat templates (sandboxed, trim_blocks, lstrip_blocks)."""
from __future__ import annotations

import json
from pathlib import Path

from jinja2.sandbox import ImmutableSandboxedEnvironment


class ChatTokenizer:
    def __init__(self, tokenizer_json: Path):
        from tokenizers import Tokenizer

        self.json = tokenizer_json.read_text(encoding="utf-8")
        self.backend = Tokenizer.from_str(self.json)
        config = json.loads((tokenizer_json.parent / "tokenizer_config.json").read_text(encoding="utf-8"))
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        template = tokenizer_json.parent / "chat_template.jinja"  # where transformers 5 saves it
        self.template = env.from_string(template.read_text(encoding="utf-8") if template.is_file()
                                        else config["chat_template"])
        self.eos_token_id = self.backend.token_to_id(config["eos_token"])
        self.eos = {self.eos_token_id} | ({self.backend.token_to_id("<|endoftext|>")} - {None})

    def chat(self, messages: list[dict]) -> list[int]:
        """The token ids of `messages` rendered for the assistant's turn."""
        text = self.template.render(messages=messages, add_generation_prompt=True)
        return self.backend.encode(text, add_special_tokens=False).ids

    def decode(self, ids: list[int]) -> str:
        return self.backend.decode(ids, skip_special_tokens=True)
