"""What the tests and benchmarks run against: `server`, a fault-injecting OpenAI-compatible chat server."""
