"""What the tests and benchmarks run against: `faults`, a fault-injecting OpenAI-compatible chat server, with its
Batch API (`batches`), varied texts (`varied`) and what it saw (`record`), reachable in process through its
`transport()`, and `command`, its command line (`python -m llm.testserver`)."""
