"""What the tests and benchmarks run against: `faults`, a fault-injecting OpenAI-compatible chat server, with its
Batch API (`batches`) and varied texts (`varied`), and `command`, its command line (`python -m llm.testserver`)."""
