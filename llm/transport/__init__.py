"""Transport: talking to OpenAI-compatible endpoints.

`endpoint` (a base URL and its weight), `options` (how a client talks to an endpoint: limits, timeout, retries,
response cap, as one value), `factory` (the one builder of clients, the cache-scope rule, and a command's checked
connection), `client` (one aiohttp session: retries, the endpoint check, structured output), `limiter` (admission
control for one endpoint), `cache` (the durable request cache), `dialects` (how each backend asks for JSON), `pool`
(several endpoints as one client), `embedded` (the default SmolLM2 server), and `protocols` (the seams: what the
engine needs of a client and what a client needs of a limiter)."""
