"""The shipped prompt sets (`en.toml`, `ja.toml`; their fields in README.md here), and `python -m llm.prompts`,
which writes one out to edit."""
