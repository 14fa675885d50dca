"""Transport: talking to OpenAI-compatible endpoints.

`client` (one aiohttp session: retries, the endpoint check, structured output), `limiter` (admission control for
one endpoint), `cache` (the durable request cache), `dialects` (how each backend asks for JSON), `pool` (several
endpoints as one client), `embedded` (the default SmolLM2 llama.cpp server), `session` (a command line's
connection options and its checked client), and `protocols` (the seams: what the engine needs of a client and
what a client needs of a limiter)."""
