"""The bottom layer every package stands on: user errors, atomic file writes, JSONL reading and appending,
content hashes, markdown tables, command-line plumbing, and the record contract (`common.schema`).
It imports nothing from `model`, `llm` or `eval`."""
