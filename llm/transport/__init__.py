"""Transport: talking to OpenAI-compatible endpoints.

`endpoint` (a base URL and its weight), `options` (how a client talks to an endpoint: limits, timeout, retries,
response cap, as one value), `factory` (the one builder of clients, the cache-scope rule, and a command's checked
connection), `client` (chat completions: retries, the endpoint check, structured output), `http` (the seam under a client:
HTTP over aiohttp, or `MockTransport` answering in process), `body` (reading a
response within its cap), `redact` (keys out of what servers send), `limiter` with `bucket` and `levels` (smooth
admission for one endpoint, its leaky buckets, and their levels kept across restarts), `spend` (the --max-cost
budget), `cache` (the durable request cache), `dialects` (how each backend asks for JSON), `pool` (several
endpoints as one client), `batch` (the OpenAI Batch API and batch files), `embedded` (the default SmolLM2 server),
and `protocols` (the seams: what the engine needs of a client and what a client needs of a limiter)."""
