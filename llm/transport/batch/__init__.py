"""Batch transport: a round's requests as batch input files (`lines`), sent through an endpoint's OpenAI Batch API
(`batchapi`) or written to a directory for any server's offline runner (`offline`), with their state kept in the
request cache file (`ledger`) and driven to their answers by `jobs`. The rounds themselves are llm.engine.rounds."""
