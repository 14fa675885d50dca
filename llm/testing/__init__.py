"""What the tests and benchmarks run against: `faults`, a fault-injecting OpenAI-compatible chat server, and
`command`, its command line (`python -m llm.testserver`)."""
